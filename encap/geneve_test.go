package encap

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/internal/packettest"
)

// The inner packets of these tests: the codecs look at nothing past the IP
// header, so a packet of a given size from one subnet to another will do.
var innerSrc4, innerDst4 = netip.MustParseAddr("10.244.1.0"), netip.MustParseAddr("10.244.2.0")

// ipv4 is packettest.IPv4Len: an IPv4 packet of total length n (n >= 20).
func ipv4(n int) []byte {
	return packettest.IPv4Len(innerSrc4, innerDst4, packettest.ProtoUDP, n, false)
}

// ipv6 is packettest.IPv6Len: an IPv6 packet with a payload of n bytes.
func ipv6(payload int) []byte {
	return packettest.IPv6Len(netip.IPv6Unspecified(), netip.IPv6Unspecified(), packettest.ProtoUDP, payload)
}

func seal(t testing.TB, c Codec, pkt []byte) []byte {
	t.Helper()
	buf := make([]byte, c.Headroom()+len(pkt)+c.Tailroom())
	copy(buf[c.Headroom():], pkt)
	d, err := c.Seal(buf, c.Headroom(), len(pkt))
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return d
}

func TestPlainRoundTrip(t *testing.T) {
	c, err := NewPlain(0x123456)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkt := range [][]byte{ipv4(20), ipv4(1400), ipv6(0), ipv6(1200)} {
		d := seal(t, c, pkt)
		if len(d) != len(pkt)+HeaderLen {
			t.Fatalf("datagram length %d, want %d", len(d), len(pkt)+HeaderLen)
		}
		h, err := ParseHeader(d)
		if err != nil {
			t.Fatal(err)
		}
		wantProto := uint16(ProtoIPv4)
		if pkt[0]>>4 == 6 {
			wantProto = ProtoIPv6
		}
		if h.VNI != 0x123456 || h.Protocol != wantProto || h.Version != 0 || h.OptLen != 0 || h.Control || h.Critical {
			t.Fatalf("header %+v", h)
		}
		inner, err := c.OpenFrom(nil, d, nil)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if !bytes.Equal(inner, pkt) {
			t.Fatal("inner packet differs")
		}
	}
}

func TestPlainOpenRejects(t *testing.T) {
	c, _ := NewPlain(7)
	good := seal(t, c, ipv4(100))
	mut := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"7 bytes", good[:7], ErrShort},
		{"options past end", mut(func(b []byte) []byte { b[0] = 0x3f; return b[:20] }), ErrShort},
		{"version 1", mut(func(b []byte) []byte { b[0] |= 0x40; return b }), ErrVersion},
		{"control", mut(func(b []byte) []byte { b[1] |= 0x80; return b }), ErrControl},
		{"critical", mut(func(b []byte) []byte { b[1] |= 0x40; return b }), ErrCritical},
		{"other vni", mut(func(b []byte) []byte { b[6]++; return b }), ErrNetwork},
		{"ethernet payload", mut(func(b []byte) []byte { b[2], b[3] = 0x65, 0x58; return b }), ErrProtocol},
		{"v6 label on v4", mut(func(b []byte) []byte { b[2], b[3] = 0x86, 0xdd; return b }), ErrInner},
		{"truncated inner", good[:60], ErrInner},
		{"inner ihl < 5", mut(func(b []byte) []byte { b[8] = 0x44; return b }), ErrInner},
		{"inner total < ihl", mut(func(b []byte) []byte { b[10], b[11] = 0, 10; return b }), ErrInner},
		{"no inner", good[:HeaderLen], ErrInner},
	}
	for _, tc := range cases {
		if _, err := c.OpenFrom(nil, tc.in, nil); err != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestPlainSkipsOptionsAndTrimsPadding(t *testing.T) {
	c, _ := NewPlain(7)
	pkt := ipv4(64)
	d := make([]byte, HeaderLen+8+len(pkt)+5) // one 8-byte option, 5 bytes of padding
	copy(d, seal(t, c, pkt)[:HeaderLen])
	d[0] = 2 // two 4-byte words of options
	copy(d[HeaderLen+8:], pkt)
	inner, err := c.OpenFrom(nil, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inner, pkt) {
		t.Fatal("inner packet differs")
	}
}

func TestSealRejects(t *testing.T) {
	c, _ := NewPlain(1)
	buf := make([]byte, 100)
	if _, err := c.Seal(buf, 4, 20); err != ErrNoRoom {
		t.Errorf("no headroom: %v", err)
	}
	if _, err := c.Seal(buf, 8, 200); err != ErrNoRoom {
		t.Errorf("past end: %v", err)
	}
	buf[8] = 0x20
	if _, err := c.Seal(buf, 8, 20); err != ErrInner {
		t.Errorf("not IP: %v", err)
	}
	if _, err := NewPlain(MaxVNI + 1); err == nil {
		t.Error("vni out of range accepted")
	}
}

func TestNoAllocs(t *testing.T) {
	c, _ := NewPlain(1)
	pkt := ipv4(1400)
	buf := make([]byte, HeaderLen+len(pkt))
	copy(buf[HeaderLen:], pkt)
	dst := make([]byte, len(buf))
	allocs := testing.AllocsPerRun(1000, func() {
		d, err := c.Seal(buf, HeaderLen, len(pkt))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.OpenFrom(dst, d, nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("seal+open allocate %.1f times per packet", allocs)
	}
}

func FuzzOpen(f *testing.F) {
	c, _ := NewPlain(7)
	f.Add(seal(f, c, ipv4(20)))
	f.Add(seal(f, c, ipv6(8)))
	f.Add([]byte{0x3f, 0xc0, 0x08, 0x00, 0, 0, 7, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		inner, err := c.OpenFrom(nil, b, nil)
		if err != nil {
			return
		}
		// Whatever Open accepts is a well-formed IP packet inside b that
		// seals back to a datagram Open accepts again.
		if len(inner) < 20 || (inner[0]>>4 != 4 && inner[0]>>4 != 6) {
			t.Fatalf("accepted inner packet % x", inner)
		}
		again, err := c.OpenFrom(nil, seal(t, c, inner), nil)
		if err != nil || !bytes.Equal(again, inner) {
			t.Fatalf("re-sealed packet: %v", err)
		}
	})
}

func BenchmarkPlain(b *testing.B) {
	c, _ := NewPlain(1)
	pkt := ipv4(1400)
	buf := make([]byte, HeaderLen+len(pkt))
	copy(buf[HeaderLen:], pkt)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		d, _ := c.Seal(buf, HeaderLen, len(pkt))
		if _, err := c.OpenFrom(nil, d, nil); err != nil {
			b.Fatal(err)
		}
	}
}
