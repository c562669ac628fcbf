package node

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/tunnel/tunneltest"
)

// fuzzNode is a dual-stack node with one peer (b, 10.244.2.0/24 and
// fd00:10:244:2::/64 at 192.0.2.2:6081) whose loops do not run: the fuzz
// target drives the receive path directly.
func fuzzNode(tb testing.TB) *Node {
	cfg := DefaultConfig()
	cfg.Insecure, cfg.Subnet = true, ownNet
	cfg.Network6, cfg.Subnet6 = testNet6, ownNet6
	codec, _ := encap.NewPlain(cfg.VNI)
	n, err := newNode(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Underlay{}, 1464, codec,
		[]tunnel.Device{tunneltest.New("weft0", 1464, 8)}, []Transport{(&simNet{}).listen("192.0.2.1:6081")})
	if err != nil {
		tb.Fatal(err)
	}
	n.setPeers([]peer.Info{testPeer6("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081")})
	return n
}

// ipv6Seeds are IPv6 packets from b to this node: plain, behind extension
// headers (hop-by-hop, routing, fragment, destination options: the data
// path reads only the fixed header), truncated, and spoofed.
func ipv6Seeds() [][]byte {
	src, dst := addr("fd00:10:244:2::5"), addr("fd00:10:244:1::6")
	udp := packettest.UDP6(netip.AddrPortFrom(src, 5000), netip.AddrPortFrom(dst, 53), []byte("query"))
	ext := func(next byte, hdr []byte) []byte {
		return packettest.IPv6(src, dst, next, append(hdr, udp[40:]...))
	}
	hopByHop := []byte{packettest.ProtoUDP, 0, 5, 2, 0, 0, 1, 0} // router alert, PadN
	d16 := dst.As16()
	routing := append([]byte{packettest.ProtoUDP, 2, 2, 1, 0, 0, 0, 0}, d16[:]...)     // type 2, one address
	frag := []byte{packettest.ProtoUDP, 0, 0, 1, 0, 0, 0, 42}                          // first fragment, more follow
	laterFrag := []byte{packettest.ProtoUDP, 0, 0x05, 0x00, 0, 0, 0, 42}               // offset 160, last
	destOpts := []byte{44, 0, 1, 4, 0, 0, 0, 0}                                        // PadN, then a fragment header
	chain := append(append([]byte{60}, hopByHop[1:]...), append(destOpts, frag...)...) // hop-by-hop → dest opts → fragment → UDP
	return [][]byte{
		udp,
		ext(0, hopByHop), ext(43, routing), ext(44, frag), ext(44, laterFrag), ext(0, chain),
		ext(0, []byte{packettest.ProtoUDP, 200}), // extension header longer than the packet
		packettest.IPv6(src, dst, 59, nil),       // no next header
		packettest.IPv6Len(src, dst, 58, 8),      // ICMPv6
		udp[:39],                                 // truncated fixed header
		packettest.UDP6(netip.AddrPortFrom(addr("fd00:10:244:3::5"), 1), netip.AddrPortFrom(dst, 2), nil), // spoofed
		packettest.UDP6(netip.AddrPortFrom(src, 1), netip.AddrPortFrom(addr("fd00:10:244:9::6"), 2), nil), // not ours
		packettest.UDP6(netip.AddrPortFrom(addr("::ffff:10.244.2.5"), 1), netip.AddrPortFrom(addr("::ffff:10.244.1.6"), 2), nil),
	}
}

// FuzzDatagram feeds arbitrary datagrams from a peer to the receive path:
// it must never panic, and whatever it delivers must be an IP packet from
// the peer's subnet to this node's.
func FuzzDatagram(f *testing.F) {
	codec, _ := encap.NewPlain(1)
	for _, pkt := range [][]byte{packettest.UDP4Len(addr("10.244.2.5"), addr("10.244.1.6"), 60, false), packettest.UDP4Len(addr("10.244.9.5"), addr("10.244.1.6"), 28, true), packettest.IPv6Len(addr("fd00::1"), addr("fd00::2"), packettest.ProtoUDP, 8)} {
		buf := append(make([]byte, encap.HeaderLen), pkt...)
		d, _ := codec.Seal(buf, encap.HeaderLen, len(pkt))
		f.Add(d)
	}
	for _, pkt := range ipv6Seeds() {
		buf := append(make([]byte, encap.HeaderLen), pkt...)
		d, _ := codec.Seal(buf, encap.HeaderLen, len(pkt))
		f.Add(d)
	}
	f.Add([]byte{0x00, 0x00, 0x08, 0x00, 0, 0, 1, 0, 0x45})
	n := fuzzNode(f)
	o := newOutside(n, n.queues[0])
	from := netip.MustParseAddrPort("192.0.2.2:6081")
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		o.out = o.out[:0]
		o.datagram(n.table.Load(), b, from)
		if !bytes.Equal(b, in) {
			t.Fatalf("the datagram was changed: % x", b[:min(len(b), 40)])
		}
		if len(o.out) == 0 {
			return
		}
		pkt := o.out[0][tunnel.WriteOffset:]
		ip, ok := parseIP(pkt)
		if !ok || !(netip.MustParsePrefix("10.244.2.0/24").Contains(ip.src) || netip.MustParsePrefix("fd00:10:244:2::/64").Contains(ip.src)) || !(ownNet.Contains(ip.dst) || ownNet6.Contains(ip.dst)) || ip.src.Is4() != ip.dst.Is4() {
			t.Fatalf("delivered % x", pkt[:min(len(pkt), 40)])
		}
	})
}

// BenchmarkPacketPath is the per-packet work of both loops (no syscalls):
// route, seal, open, check.
func BenchmarkPacketPath(b *testing.B) {
	a := fuzzNode(b)
	a.setPeers([]peer.Info{testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")})
	in := newInside(a, a.queues[0])
	cfg := DefaultConfig()
	cfg.Insecure, cfg.Subnet = true, netip.MustParsePrefix("10.244.2.0/24")
	codec, _ := encap.NewPlain(cfg.VNI)
	rx, _ := newNode(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Underlay{}, 1464, codec,
		[]tunnel.Device{tunneltest.New("weft0", 1464, 8)}, []Transport{(&simNet{}).listen("192.0.2.2:6081")})
	rx.setPeers([]peer.Info{testPeer("a", "10.244.1.0/24", "192.0.2.1:6081")})
	out := newOutside(rx, rx.queues[0])
	pkt := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 1400, true)
	off := a.codec.Headroom()
	from := netip.MustParseAddrPort("192.0.2.1:6081")
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		copy(in.bufs[0][off:], pkt[:20])
		in.dgrams, in.eps = in.dgrams[:0], in.eps[:0]
		in.packet(a.table.Load(), in.bufs[0], off, len(pkt))
		out.out = out.out[:0]
		out.datagram(rx.table.Load(), in.dgrams[0], from)
		if len(out.out) != 1 {
			b.Fatal("not delivered")
		}
	}
}

// FuzzTunPacket feeds arbitrary packets from the TUN to the send path,
// IPv6 with extension headers among the seeds: it must never panic, and a
// packet it queues for the wire must come from this node's subnets.
func FuzzTunPacket(f *testing.F) {
	for _, pkt := range ipv6Seeds() {
		out := bytes.Clone(pkt)
		if len(out) >= 40 { // from this node to b
			copy(out[8:24], pkt[24:40])
			copy(out[24:40], pkt[8:24])
		}
		f.Add(out)
		big := append(bytes.Clone(out), make([]byte, 1500)...) // too big: Packet Too Big
		f.Add(big)
	}
	f.Add(packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.9.6"), 60, true))
	n := fuzzNode(f)
	in := newInside(n, n.queues[0])
	off := n.codec.Headroom()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > 65535 {
			return
		}
		in.dgrams, in.eps, in.icmpOut = in.dgrams[:0], in.eps[:0], in.icmpOut[:0]
		copy(in.bufs[0][off:], pkt)
		in.packet(n.table.Load(), in.bufs[0], off, len(pkt))
		if len(in.dgrams) > 0 {
			ip, ok := parseIP(pkt)
			if !ok || !(ownNet.Contains(ip.src) || ownNet6.Contains(ip.src)) {
				t.Fatalf("sent % x", pkt[:min(len(pkt), 40)])
			}
		}
	})
}
