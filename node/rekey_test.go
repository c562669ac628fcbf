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

// Sessions rotate on volume (a low limit injected through the codec's
// config) while packets flow: every packet arrives, none is refused as
// old_session or replay, and the status counts the rotations. (Few
// rotations: each costs the receiver a key derivation, of which a peer gets
// a burst of 8 and then 20 a second.)
func TestSimRekey(t *testing.T) {
	key, _ := encap.GenerateKey()
	sn := &simNet{}
	pa, pb := testPeer("a", "10.244.1.0/24", "192.0.2.1:6081"), testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")
	ca, err := encap.NewSealed(encap.SealedConfig{VNI: 1, Name: "a", Keys: [][]byte{key}, RekeyAfterPackets: 15})
	if err != nil {
		t.Fatal(err)
	}
	a := startSimCodec(t, sn, "a", "10.244.1.0/24", "192.0.2.1:6081", ca, pb)
	b := startSimCodec(t, sn, "b", "10.244.2.0/24", "192.0.2.2:6081", sealed(t, "b", key), pa)
	const count = 60
	for i := range count {
		pkt := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 100+i, false)
		a.tun.Inject(pkt)
		if got := recv(t, b.tun); !bytes.Equal(got, pkt) {
			t.Fatalf("packet %d: b got another packet", i)
		}
	}
	if n := a.Status().Encryption.Rotations; n < 3 {
		t.Fatalf("%d rotations for %d packets (and probes) at 15 a session", n, count)
	}
	for _, r := range []string{"old_session", "replay", "auth_failed", "session_limit"} {
		if d := drop(b, r); d != 0 {
			t.Errorf("%d %s drops across the rotations", d, r)
		}
	}
}

// The per-packet work of both loops allocates nothing with the sealed codec
// either (a rotation allocates, once per session, not per packet).
func TestSealedPacketPathAllocs(t *testing.T) {
	key, _ := encap.GenerateKey()
	node := func(name, subnet string, p peer.Info) *Node {
		cfg := DefaultConfig()
		cfg.Name, cfg.Keys, cfg.Subnet = name, [][]byte{key}, netip.MustParsePrefix(subnet)
		codec := sealed(t, name, key)
		n, err := newNode(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Underlay{}, 1424, codec,
			[]tunnel.Device{tunneltest.New("weft0", 1424, 8)}, []Transport{(&simNet{}).listen(p.Endpoint.String())})
		if err != nil {
			t.Fatal(err)
		}
		n.setPeers([]peer.Info{p})
		return n
	}
	a := node("a", "10.244.1.0/24", testPeer("b", "10.244.2.0/24", "192.0.2.2:6081"))
	b := node("b", "10.244.2.0/24", testPeer("a", "10.244.1.0/24", "192.0.2.1:6081"))
	in := newInside(a, a.queues[0])
	pkt := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 1400, true)
	off := a.codec.Headroom()
	const runs = 1000
	allocs := testing.AllocsPerRun(runs, func() {
		copy(in.bufs[0][off:], pkt)
		in.dgrams, in.eps = in.dgrams[:0], in.eps[:0]
		in.packet(a.table.Load(), in.bufs[0], off, len(pkt))
		if len(in.dgrams) != 1 {
			t.Fatal("not queued")
		}
	})
	if allocs != 0 {
		t.Errorf("inside, sealed: %.1f allocs per packet", allocs)
	}
	// What a seals, for b to open: each datagram once, or it is a replay.
	dgrams := make([][]byte, 0, runs+1)
	for range runs + 1 {
		copy(in.bufs[0][off:], pkt)
		in.dgrams, in.eps = in.dgrams[:0], in.eps[:0]
		in.packet(a.table.Load(), in.bufs[0], off, len(pkt))
		dgrams = append(dgrams, bytes.Clone(in.dgrams[0]))
	}
	out := newOutside(b, b.queues[0])
	from := netip.MustParseAddrPort("192.0.2.1:6081")
	i := 0
	allocs = testing.AllocsPerRun(runs, func() {
		out.out = out.out[:0]
		out.datagram(b.table.Load(), dgrams[i], from)
		i++
		if len(out.out) != 1 {
			t.Fatalf("datagram %d not delivered: %v", i, b.drops.snapshot())
		}
	})
	if allocs != 0 {
		t.Errorf("outside, sealed: %.1f allocs per packet", allocs)
	}
}

// A packet sealed before a rotation that arrives after the new session's
// first packet (a slower queue, a reordering underlay) is still delivered:
// the receiver keeps the previous session.
func TestSimRekeyInFlight(t *testing.T) {
	key, _ := encap.GenerateKey()
	sn := &simNet{}
	pa, pb := testPeer("a", "10.244.1.0/24", "192.0.2.1:6081"), testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")
	ca := sealed(t, "a", key)
	a := startSimCodec(t, sn, "a", "10.244.1.0/24", "192.0.2.1:6081", ca, pb)
	b := startSimCodec(t, sn, "b", "10.244.2.0/24", "192.0.2.2:6081", sealed(t, "b", key), pa)
	first := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 70, false)
	a.tun.Inject(first)
	nextIs(t, b.tun, first) // b knows a's first session

	late := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 90, false)
	buf := make([]byte, ca.Headroom()+len(late)+ca.Tailroom())
	copy(buf[ca.Headroom():], late)
	inFlight, err := ca.Seal(buf, ca.Headroom(), len(late))
	if err != nil {
		t.Fatal(err)
	}
	ca.Rekey()
	next := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 80, false)
	a.tun.Inject(next)
	nextIs(t, b.tun, next) // b has moved to the new session
	sn.send(a.conn.ep, b.conn.ep, inFlight)
	nextIs(t, b.tun, late)
	if d := drop(b, "old_session"); d != 0 {
		t.Fatalf("%d old_session drops", d)
	}
}
