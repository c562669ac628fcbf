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

// fuzzNode is a node with one peer (b, 10.244.2.0/24 at 192.0.2.2:6081) whose
// loops do not run: the fuzz target drives the receive path directly.
func fuzzNode(tb testing.TB) *Node {
	cfg := DefaultConfig()
	cfg.Insecure, cfg.Subnet = true, ownNet
	codec, _ := encap.NewPlain(cfg.VNI)
	n, err := newNode(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Underlay{}, 1464, codec,
		[]tunnel.Device{tunneltest.New("weft0", 1464, 8)}, []Transport{(&simNet{}).listen("192.0.2.1:6081")})
	if err != nil {
		tb.Fatal(err)
	}
	n.setPeers([]peer.Info{testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")})
	return n
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
		if !ok || !netip.MustParsePrefix("10.244.2.0/24").Contains(ip.src) || !ownNet.Contains(ip.dst) {
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
