package tunnel_test

// Minimal IPv4/UDP building and parsing for the device tests, checksums
// included, so a test can tell a well-formed packet from a mangled one.

import (
	"encoding/binary"
	"net/netip"
)

const (
	ipv4HeaderLen = 20
	udpHeaderLen  = 8
	protoUDP      = 17
)

// buildUDP4 returns an IPv4/UDP packet with valid IP and UDP checksums.
func buildUDP4(src, dst netip.AddrPort, payload []byte) []byte {
	pkt := make([]byte, ipv4HeaderLen+udpHeaderLen+len(payload))
	ip := pkt[:ipv4HeaderLen]
	ip[0] = 0x45 // version 4, 5 words
	binary.BigEndian.PutUint16(ip[2:], uint16(len(pkt)))
	ip[6] = 0x40 // don't fragment
	ip[8] = 64   // TTL
	ip[9] = protoUDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip, 0)))

	udp := pkt[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[udpHeaderLen:], payload)
	c := ^fold(sum(udp, pseudoHeaderSum(ip, len(udp))))
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(udp[6:], c)
	return pkt
}

// udp4 is a parsed IPv4/UDP packet.
type udp4 struct {
	src, dst netip.AddrPort
	payload  []byte
}

// parseUDP4 parses pkt and verifies its lengths and checksums; ok is false
// for anything else (IPv6 router solicitations, mangled packets).
func parseUDP4(pkt []byte) (u udp4, ok bool) {
	if len(pkt) < ipv4HeaderLen+udpHeaderLen || pkt[0]>>4 != 4 || pkt[9] != protoUDP {
		return u, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < ipv4HeaderLen || total != len(pkt) || total < ihl+udpHeaderLen || fold(sum(pkt[:ihl], 0)) != 0xffff {
		return u, false
	}
	udp := pkt[ihl:]
	if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		return u, false
	}
	if binary.BigEndian.Uint16(udp[6:]) != 0 && fold(sum(udp, pseudoHeaderSum(pkt, len(udp)))) != 0xffff {
		return u, false
	}
	src := netip.AddrFrom4([4]byte(pkt[12:16]))
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	return udp4{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp[0:])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:])),
		payload: udp[udpHeaderLen:],
	}, true
}

func pseudoHeaderSum(ip []byte, udpLen int) uint32 {
	s := sum(ip[12:20], 0) // source and destination addresses
	return s + protoUDP + uint32(udpLen)
}

// sum adds b as big-endian 16-bit words to initial (RFC 1071).
func sum(b []byte, initial uint32) uint32 {
	s := initial
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
