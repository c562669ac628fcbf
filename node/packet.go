package node

import (
	"encoding/binary"
	"net/netip"
)

// ipInfo is what the forwarding loops need from an inner packet's IP header.
type ipInfo struct {
	src, dst  netip.Addr
	proto     uint8 // IPv4 protocol / IPv6 next header
	df        bool  // IPv4 don't-fragment (IPv6 never fragments in flight)
	firstFrag bool  // false for IPv4 fragments after the first
}

// parseIP reads the addresses of an IPv4 or IPv6 packet without allocating.
// ok is false for anything too short to hold its header.
func parseIP(b []byte) (ipInfo, bool) {
	if len(b) < 1 {
		return ipInfo{}, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return ipInfo{}, false
		}
		frag := binary.BigEndian.Uint16(b[6:8])
		return ipInfo{
			src:       netip.AddrFrom4([4]byte(b[12:16])),
			dst:       netip.AddrFrom4([4]byte(b[16:20])),
			proto:     b[9],
			df:        frag&0x4000 != 0,
			firstFrag: frag&0x1fff == 0,
		}, true
	case 6:
		if len(b) < 40 {
			return ipInfo{}, false
		}
		return ipInfo{
			src:       netip.AddrFrom16([16]byte(b[8:24])),
			dst:       netip.AddrFrom16([16]byte(b[24:40])),
			proto:     b[6],
			df:        true,
			firstFrag: true,
		}, true
	}
	return ipInfo{}, false
}

// checksum is the Internet checksum (RFC 1071) of b, folded, seeded with sum.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// ICMP messages weft sends back into the TUN.
type icmpKind int

const (
	icmpNoRoute icmpKind = iota // destination (network) unreachable
	icmpTooBig                  // fragmentation needed / packet too big
)

// icmpMaxLen bounds an ICMP error (RFC 1812 §4.3.2.3: at most 576 bytes for
// IPv4; IPv6 allows up to the minimum MTU, 1280).
const (
	icmp4MaxLen = 576
	icmp6MaxLen = 1280
)

// needsICMPError reports whether an ICMP error may be sent about pkt: never
// about ICMP errors, non-first fragments or non-unicast sources.
func needsICMPError(pkt []byte, ip ipInfo) bool {
	if !ip.firstFrag || !ip.src.IsGlobalUnicast() { // includes private ranges
		return false
	}
	switch {
	case ip.src.Is4() && ip.proto == 1:
		ihl := int(pkt[0]&0x0f) * 4
		// Only echo request/reply may be answered with an error.
		return len(pkt) > ihl && (pkt[ihl] == 0 || pkt[ihl] == 8)
	case ip.src.Is6():
		next, off, ok := skipExtensions6(pkt)
		if !ok {
			return false // a later fragment, or headers that do not parse
		}
		if next == 58 {
			return len(pkt) > off && pkt[off] >= 128 // informational messages only
		}
	}
	return true
}

// skipExtensions6 walks an IPv6 packet's extension headers (hop-by-hop,
// routing, fragment, destination options) and returns the upper-layer
// protocol and its offset. ok is false for a fragment other than the first
// and for headers that run past the packet. Only the error path uses it:
// forwarding reads the fixed header alone.
func skipExtensions6(pkt []byte) (next byte, off int, ok bool) {
	next, off = pkt[6], 40
	for range 8 { // more is no packet worth an ICMP error
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(pkt) < off+2 {
				return next, off, false
			}
			next, off = pkt[off], off+(int(pkt[off+1])+1)*8
		case 44: // fragment: 8 bytes; offset in the upper 13 bits of bytes 2-3
			if len(pkt) < off+8 || binary.BigEndian.Uint16(pkt[off+2:off+4])&0xfff8 != 0 {
				return next, off, false
			}
			next, off = pkt[off], off+8
		default:
			return next, off, off <= len(pkt)
		}
	}
	return next, off, false
}

// buildICMP writes into out an ICMP error about pkt and returns its length
// (0 if out is too small). mtu is reported for icmpTooBig. The error comes
// from the packet's destination: the node's own overlay address would be a
// local source arriving on the TUN, which the kernel drops as martian.
func buildICMP(out []byte, kind icmpKind, pkt []byte, ip ipInfo, mtu int) int {
	src := ip.dst
	if ip.src.Is4() {
		quote := min(len(pkt), icmp4MaxLen-28)
		n := 28 + quote
		if len(out) < n {
			return 0
		}
		h := out[:20]
		clear(out[:28])
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:4], uint16(n))
		h[8] = 64 // TTL
		h[9] = 1  // ICMP
		s4, d4 := src.As4(), ip.src.As4()
		copy(h[12:16], s4[:])
		copy(h[16:20], d4[:])
		binary.BigEndian.PutUint16(h[10:12], checksum(h, 0))
		m := out[20:n]
		m[0] = 3 // destination unreachable
		if kind == icmpTooBig {
			m[1] = 4 // fragmentation needed and DF set
			binary.BigEndian.PutUint16(m[6:8], uint16(mtu))
		}
		copy(m[8:], pkt[:quote])
		binary.BigEndian.PutUint16(m[2:4], checksum(m, 0))
		return n
	}
	quote := min(len(pkt), icmp6MaxLen-48)
	n := 48 + quote
	if len(out) < n {
		return 0
	}
	clear(out[:48])
	h := out[:40]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(8+quote))
	h[6] = 58 // ICMPv6
	h[7] = 64 // hop limit
	s16, d16 := src.As16(), ip.src.As16()
	copy(h[8:24], s16[:])
	copy(h[24:40], d16[:])
	m := out[40:n]
	if kind == icmpTooBig {
		m[0] = 2 // packet too big
		binary.BigEndian.PutUint32(m[4:8], uint32(mtu))
	} else {
		m[0] = 1 // destination unreachable, no route
	}
	copy(m[8:], pkt[:quote])
	// Pseudo-header: addresses, upper-layer length, next header.
	var sum uint32
	for i := 8; i < 40; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	sum += uint32(len(m)) + 58
	binary.BigEndian.PutUint16(m[2:4], checksum(m, sum))
	return n
}
