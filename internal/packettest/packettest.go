// Package packettest builds the inner IP packets weft's tests send through
// a node, and parses the UDP ones they read back: one builder for every
// package's tests. Every builder returns a fresh slice the caller owns.
package packettest

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers the builders use.
const (
	ProtoICMP = 1
	ProtoUDP  = 17
)

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
)

// IPv4 returns an IPv4 packet from src to dst carrying payload as protocol
// proto: a 20-byte header, TTL 64, a correct header checksum; df sets Don't
// Fragment. The payload is copied as is (no upper-layer header is added).
func IPv4(src, dst netip.Addr, proto byte, payload []byte, df bool) []byte {
	b := make([]byte, ipv4HeaderLen+len(payload))
	b[0] = 0x45 // version 4, 20-byte header
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if df {
		b[6] = 0x40
	}
	b[8], b[9] = 64, proto // TTL, protocol
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], Checksum(b[:ipv4HeaderLen]))
	copy(b[ipv4HeaderLen:], payload)
	return b
}

// IPv6 returns an IPv6 packet from src to dst carrying payload with next
// header next, hop limit 64. The payload is copied as is.
func IPv6(src, dst netip.Addr, next byte, payload []byte) []byte {
	b := make([]byte, ipv6HeaderLen+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(len(payload)))
	b[6], b[7] = next, 64 // next header, hop limit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	copy(b[ipv6HeaderLen:], payload)
	return b
}

// IPv4Len returns an IPv4 packet of total length total (at least 20) from
// src to dst carrying protocol proto, whose payload bytes count up (0, 1,
// 2, … wrapping at 256) so that a truncated or shifted copy shows.
func IPv4Len(src, dst netip.Addr, proto byte, total int, df bool) []byte {
	return IPv4(src, dst, proto, counting(total-ipv4HeaderLen), df)
}

// IPv6Len returns an IPv6 packet with a payload of n bytes (the payload
// length field) from src to dst with next header next, the payload counting
// up like IPv4Len's.
func IPv6Len(src, dst netip.Addr, next byte, n int) []byte {
	return IPv6(src, dst, next, counting(n))
}

func counting(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// udp returns a UDP header and payload from src to dst (checksum 0).
func udp(src, dst uint16, payload []byte) []byte {
	b := make([]byte, udpHeaderLen+len(payload))
	binary.BigEndian.PutUint16(b[0:2], src)
	binary.BigEndian.PutUint16(b[2:4], dst)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	copy(b[udpHeaderLen:], payload)
	return b
}

// UDP4 returns an IPv4/UDP packet from src to dst carrying payload, with a
// correct header checksum and no UDP checksum (0, which IPv4 allows); df
// sets Don't Fragment. WithUDPChecksum adds one.
func UDP4(src, dst netip.AddrPort, payload []byte, df bool) []byte {
	return IPv4(src.Addr(), dst.Addr(), ProtoUDP, udp(src.Port(), dst.Port(), payload), df)
}

// UDP4Len returns an IPv4/UDP packet of total length total (at least 28)
// from src to dst, ports 0, with a zero payload: a packet of a given size
// for the data path, which looks at nothing past the UDP header.
func UDP4Len(src, dst netip.Addr, total int, df bool) []byte {
	return UDP4(netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0), make([]byte, total-ipv4HeaderLen-udpHeaderLen), df)
}

// UDP6 returns an IPv6/UDP packet from src to dst carrying payload (UDP
// checksum left 0: the data path does not check it; WithUDPChecksum adds
// one).
func UDP6(src, dst netip.AddrPort, payload []byte) []byte {
	return IPv6(src.Addr(), dst.Addr(), ProtoUDP, udp(src.Port(), dst.Port(), payload))
}

// WithUDPChecksum fills in the UDP checksum (over the pseudo-header) of
// pkt, an IPv4 packet with a 20-byte header or an IPv6 packet without
// extension headers, built by UDP4 or UDP6, and returns pkt.
func WithUDPChecksum(pkt []byte) []byte {
	var seg, addrs []byte
	if pkt[0]>>4 == 4 {
		seg, addrs = pkt[ipv4HeaderLen:], pkt[12:20]
	} else {
		seg, addrs = pkt[ipv6HeaderLen:], pkt[8:40]
	}
	binary.BigEndian.PutUint16(seg[6:8], 0)
	c := ^fold(sum(seg, pseudoSum(addrs, len(seg))))
	if c == 0 {
		c = 0xffff // 0 means "no checksum" in UDP over IPv4
	}
	binary.BigEndian.PutUint16(seg[6:8], c)
	return pkt
}

// ICMP types of an IPv4 echo.
const (
	EchoReply   = 0
	EchoRequest = 8
)

// Echo4 returns an IPv4 ICMP echo request or reply (typ) from src to dst
// with identifier id, sequence seq and payload, checksums correct.
func Echo4(typ byte, src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	m := make([]byte, 8+len(payload))
	m[0] = typ
	binary.BigEndian.PutUint16(m[4:6], id)
	binary.BigEndian.PutUint16(m[6:8], seq)
	copy(m[8:], payload)
	binary.BigEndian.PutUint16(m[2:4], Checksum(m))
	return IPv4(src, dst, ProtoICMP, m, false)
}

// UDP is a parsed IPv4/UDP packet; Payload aliases the parsed packet.
type UDP struct {
	Src, Dst netip.AddrPort
	Payload  []byte
}

// ParseUDP4 parses pkt as an IPv4/UDP packet and verifies its lengths and
// checksums (a UDP checksum of 0 means none); ok is false for anything else
// (IPv6 router solicitations, mangled packets).
func ParseUDP4(pkt []byte) (u UDP, ok bool) {
	if len(pkt) < ipv4HeaderLen+udpHeaderLen || pkt[0]>>4 != 4 || pkt[9] != ProtoUDP {
		return u, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < ipv4HeaderLen || total != len(pkt) || total < ihl+udpHeaderLen || Checksum(pkt[:ihl]) != 0 {
		return u, false
	}
	seg := pkt[ihl:]
	if int(binary.BigEndian.Uint16(seg[4:])) != len(seg) {
		return u, false
	}
	if binary.BigEndian.Uint16(seg[6:]) != 0 && fold(sum(seg, pseudoSum(pkt[12:20], len(seg)))) != 0xffff {
		return u, false
	}
	src := netip.AddrFrom4([4]byte(pkt[12:16]))
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	return UDP{
		Src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(seg[0:])),
		Dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(seg[2:])),
		Payload: seg[udpHeaderLen:],
	}, true
}

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 { return ^fold(sum(b, 0)) }

// pseudoSum is the sum of a UDP pseudo-header: the addresses (8 bytes for
// IPv4, 32 for IPv6), the protocol and the UDP length.
func pseudoSum(addrs []byte, udpLen int) uint32 {
	return sum(addrs, 0) + ProtoUDP + uint32(udpLen)
}

// sum adds b as big-endian 16-bit words to initial.
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
