package node

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/weftnet/weft/internal/packettest"
)

// addr is shorthand for the addresses of the test packets.
func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseIP(t *testing.T) {
	ip, ok := parseIP(packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 60, true))
	if !ok || ip.src != netip.MustParseAddr("10.244.1.5") || ip.dst != netip.MustParseAddr("10.244.2.6") || !ip.df || ip.proto != 17 || !ip.firstFrag {
		t.Fatalf("v4: %+v %v", ip, ok)
	}
	ip, ok = parseIP(packettest.IPv6Len(addr("fd00::1"), addr("fd00::2"), packettest.ProtoUDP, 8))
	if !ok || ip.src != netip.MustParseAddr("fd00::1") || ip.dst != netip.MustParseAddr("fd00::2") {
		t.Fatalf("v6: %+v %v", ip, ok)
	}
	for _, b := range [][]byte{nil, {0x45}, make([]byte, 19), {0x60, 0, 0}, {0x20, 1, 2, 3}} {
		if _, ok := parseIP(b); ok {
			t.Errorf("parseIP(% x) accepted", b)
		}
	}
}

func TestICMPv4(t *testing.T) {
	orig := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 1500, true)
	ip, _ := parseIP(orig)
	for _, kind := range []icmpKind{icmpTooBig, icmpNoRoute} {
		out := make([]byte, icmp6MaxLen)
		n := buildICMP(out, kind, orig, ip, 1464)
		if n == 0 || n > icmp4MaxLen {
			t.Fatalf("length %d", n)
		}
		h, err := ipv4.ParseHeader(out[:n])
		if err != nil || h.Src.String() != "10.244.2.6" || h.Dst.String() != "10.244.1.5" || h.TotalLen != n {
			t.Fatalf("header %+v %v", h, err)
		}
		if checksum(out[:20], 0) != 0 || checksum(out[20:n], 0) != 0 {
			t.Fatal("bad checksum")
		}
		m, err := icmp.ParseMessage(1, out[20:n])
		if err != nil {
			t.Fatal(err)
		}
		du, ok := m.Body.(*icmp.DstUnreach)
		if m.Type != ipv4.ICMPTypeDestinationUnreachable || !ok {
			t.Fatalf("message %+v", m)
		}
		wantCode, wantMTU := 0, 0
		if kind == icmpTooBig {
			wantCode, wantMTU = 4, 1464
		}
		if m.Code != wantCode || int(binary.BigEndian.Uint16(out[26:28])) != wantMTU {
			t.Fatalf("code %d mtu %d", m.Code, binary.BigEndian.Uint16(out[26:28]))
		}
		if string(du.Data[:28]) != string(orig[:28]) {
			t.Fatal("quoted packet differs")
		}
	}
}

func TestICMPv6(t *testing.T) {
	orig := packettest.IPv6Len(addr("fd00:1::5"), addr("fd00:2::6"), packettest.ProtoUDP, 1400)
	ip, _ := parseIP(orig)
	out := make([]byte, icmp6MaxLen)
	n := buildICMP(out, icmpTooBig, orig, ip, 1400)
	if n != icmp6MaxLen {
		t.Fatalf("length %d, want %d", n, icmp6MaxLen)
	}
	m, err := icmp.ParseMessage(58, out[40:n])
	if err != nil || m.Type != ipv6.ICMPTypePacketTooBig {
		t.Fatalf("%+v %v", m, err)
	}
	if ptb := m.Body.(*icmp.PacketTooBig); ptb.MTU != 1400 {
		t.Fatalf("mtu %d", ptb.MTU)
	}
	// The checksum covers the pseudo-header; recomputing over it gives 0.
	var sum uint32
	for i := 8; i < 40; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(out[i:]))
	}
	if checksum(out[40:n], sum+uint32(n-40)+58) != 0 {
		t.Fatal("bad ICMPv6 checksum")
	}
	if src := netip.AddrFrom16([16]byte(out[8:24])); src != ip.dst {
		t.Fatalf("ICMPv6 source %s, want the packet's destination %s", src, ip.dst)
	}
}

func TestNoICMPAboutICMPErrors(t *testing.T) {
	orig := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 60, true)
	orig[9] = 1
	orig[20] = 3 // destination unreachable
	ip, _ := parseIP(orig)
	if needsICMPError(orig, ip) {
		t.Fatal("would answer an ICMP error with an ICMP error")
	}
	orig[20] = 8 // echo request
	if !needsICMPError(orig, ip) {
		t.Fatal("would not answer an echo request")
	}
	orig[6], orig[7] = 0, 10 // a later fragment
	ip, _ = parseIP(orig)
	if needsICMPError(orig, ip) {
		t.Fatal("would answer a non-first fragment")
	}
}

// An ICMPv6 error behind extension headers is never answered, nor is a
// later fragment; an echo request behind them is.
func TestNoICMPv6AboutErrorsBehindExtensions(t *testing.T) {
	src, dst := addr("fd00:10:244:1::5"), addr("fd00:10:244:2::6")
	icmp := func(typ byte) []byte { return []byte{typ, 0, 0, 0, 0, 0, 0, 0} }
	hop := func(next byte) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} }
	frag := func(next byte, offset uint16) []byte {
		return []byte{next, 0, byte(offset >> 8), byte(offset), 0, 0, 0, 1}
	}
	for _, tc := range []struct {
		name string
		next byte
		body []byte
		want bool
	}{
		{"error", 58, icmp(1), false},
		{"echo", 58, icmp(128), true},
		{"error behind hop-by-hop", 0, append(hop(58), icmp(2)...), false},
		{"echo behind hop-by-hop", 0, append(hop(58), icmp(128)...), true},
		{"error behind dest opts and first fragment", 60, append(hop(44), append(frag(58, 0), icmp(3)...)...), false},
		{"UDP in a first fragment", 44, append(frag(17, 1), 0, 0, 0, 0, 0, 0, 0, 0), true},
		{"later fragment", 44, append(frag(17, 0x50), 0, 0, 0, 0), false},
		{"header past the end", 0, []byte{58, 9}, false},
	} {
		pkt := packettest.IPv6(src, dst, tc.next, tc.body)
		ip, _ := parseIP(pkt)
		if got := needsICMPError(pkt, ip); got != tc.want {
			t.Errorf("%s: needsICMPError = %v", tc.name, got)
		}
	}
}
