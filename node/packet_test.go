package node

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udp4 builds an IPv4/UDP packet of total length n from src to dst.
func udp4(src, dst string, n int, df bool) []byte {
	b := make([]byte, n)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	if df {
		b[6] = 0x40
	}
	b[8], b[9] = 64, 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], checksum(b[:20], 0))
	binary.BigEndian.PutUint16(b[24:26], uint16(n-20))
	return b
}

func udp6(src, dst string, payload int) []byte {
	b := make([]byte, 40+payload)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(payload))
	b[6], b[7] = 17, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return b
}

func TestParseIP(t *testing.T) {
	ip, ok := parseIP(udp4("10.244.1.5", "10.244.2.6", 60, true))
	if !ok || ip.src != netip.MustParseAddr("10.244.1.5") || ip.dst != netip.MustParseAddr("10.244.2.6") || !ip.df || ip.proto != 17 || !ip.firstFrag {
		t.Fatalf("v4: %+v %v", ip, ok)
	}
	ip, ok = parseIP(udp6("fd00::1", "fd00::2", 8))
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
	orig := udp4("10.244.1.5", "10.244.2.6", 1500, true)
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
	orig := udp6("fd00:1::5", "fd00:2::6", 1400)
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
	orig := udp4("10.244.1.5", "10.244.2.6", 60, true)
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
