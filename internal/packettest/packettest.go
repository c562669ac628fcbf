// Package packettest builds the inner IP packets weft's tests send through
// a node: one builder for every package's tests.
package packettest

import (
	"encoding/binary"
	"net/netip"
)

// UDP4 returns an IPv4/UDP packet from src to dst carrying payload, with a
// correct header checksum and no UDP checksum (0, which IPv4 allows); df
// sets Don't Fragment.
func UDP4(src, dst netip.AddrPort, payload []byte, df bool) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45 // version 4, 20-byte header
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if df {
		b[6] = 0x40
	}
	b[8], b[9] = 64, 17 // TTL, UDP
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], Checksum(b[:20]))
	binary.BigEndian.PutUint16(b[20:22], src.Port())
	binary.BigEndian.PutUint16(b[22:24], dst.Port())
	binary.BigEndian.PutUint16(b[24:26], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// UDP6 returns an IPv6/UDP packet from src to dst carrying payload (UDP
// checksum left 0: the data path does not check it).
func UDP6(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 48+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(8+len(payload)))
	b[6], b[7] = 17, 64 // next header UDP, hop limit
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	binary.BigEndian.PutUint16(b[40:42], src.Port())
	binary.BigEndian.PutUint16(b[42:44], dst.Port())
	binary.BigEndian.PutUint16(b[44:46], uint16(8+len(payload)))
	copy(b[48:], payload)
	return b
}

// ICMP types of an IPv4 echo.
const (
	EchoReply   = 0
	EchoRequest = 8
)

// Echo4 returns an IPv4 ICMP echo request or reply (typ) from src to dst
// with identifier id, sequence seq and payload, checksums correct.
func Echo4(typ byte, src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	b[8], b[9] = 64, 1 // TTL, ICMP
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], Checksum(b[:20]))
	b[20] = typ
	binary.BigEndian.PutUint16(b[24:26], id)
	binary.BigEndian.PutUint16(b[26:28], seq)
	copy(b[28:], payload)
	binary.BigEndian.PutUint16(b[22:24], Checksum(b[20:]))
	return b
}

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
