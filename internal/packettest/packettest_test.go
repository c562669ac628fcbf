package packettest_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/weftnet/weft/internal/packettest"
)

var (
	a = netip.MustParseAddrPort("10.244.1.5:4000")
	b = netip.MustParseAddrPort("10.244.2.6:7000")
)

func TestUDP4(t *testing.T) {
	for _, df := range []bool{false, true} {
		pkt := packettest.UDP4(a, b, []byte("hello"), df)
		h, err := ipv4.ParseHeader(pkt)
		if err != nil || h.TotalLen != len(pkt) || h.Protocol != packettest.ProtoUDP || h.TTL != 64 ||
			h.Src.String() != "10.244.1.5" || h.Dst.String() != "10.244.2.6" || (h.Flags&ipv4.DontFragment != 0) != df {
			t.Fatalf("df %v: header %+v, %v", df, h, err)
		}
		if packettest.Checksum(pkt[:20]) != 0 {
			t.Fatal("bad header checksum")
		}
		u, ok := packettest.ParseUDP4(pkt)
		if !ok || u.Src != a || u.Dst != b || string(u.Payload) != "hello" {
			t.Fatalf("ParseUDP4: %+v %v", u, ok)
		}
		if binary.BigEndian.Uint16(pkt[26:28]) != 0 {
			t.Fatal("UDP checksum set without WithUDPChecksum")
		}
		packettest.WithUDPChecksum(pkt)
		if _, ok := packettest.ParseUDP4(pkt); !ok || binary.BigEndian.Uint16(pkt[26:28]) == 0 {
			t.Fatal("WithUDPChecksum: no valid checksum")
		}
		pkt[30] ^= 1
		if _, ok := packettest.ParseUDP4(pkt); ok {
			t.Fatal("ParseUDP4 accepted a mangled payload")
		}
	}
}

func TestSized(t *testing.T) {
	for _, n := range []int{28, 60, 1500} {
		if pkt := packettest.UDP4Len(a.Addr(), b.Addr(), n, true); len(pkt) != n || int(binary.BigEndian.Uint16(pkt[2:4])) != n {
			t.Errorf("UDP4Len(%d): %d bytes", n, len(pkt))
		} else if _, ok := packettest.ParseUDP4(pkt); !ok {
			t.Errorf("UDP4Len(%d): not a valid UDP packet", n)
		}
	}
	if pkt := packettest.IPv4Len(a.Addr(), b.Addr(), packettest.ProtoUDP, 20, false); len(pkt) != 20 || packettest.Checksum(pkt) != 0 {
		t.Errorf("IPv4Len(20): % x", pkt)
	}
	pkt := packettest.IPv6Len(netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), packettest.ProtoUDP, 100)
	if len(pkt) != 140 || binary.BigEndian.Uint16(pkt[4:6]) != 100 || pkt[6] != packettest.ProtoUDP || pkt[0]>>4 != 6 {
		t.Errorf("IPv6Len(100): % x", pkt[:40])
	}
}

func TestEcho4(t *testing.T) {
	pkt := packettest.Echo4(packettest.EchoRequest, a.Addr(), b.Addr(), 7, 1, []byte("weft"))
	if packettest.Checksum(pkt[:20]) != 0 || packettest.Checksum(pkt[20:]) != 0 {
		t.Fatal("bad checksum")
	}
	m, err := icmp.ParseMessage(1, pkt[20:])
	if err != nil || m.Type != ipv4.ICMPTypeEcho {
		t.Fatalf("%+v %v", m, err)
	}
	if e := m.Body.(*icmp.Echo); e.ID != 7 || e.Seq != 1 || string(e.Data) != "weft" {
		t.Fatalf("echo %+v", e)
	}
}
