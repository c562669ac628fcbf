package node

// An in-process network: nodes joined by channel-based TUN devices and UDP
// sockets, so the forwarding loops run in every `go test` without root.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/tunnel/tunneltest"
	"github.com/weftnet/weft/udp"
)

type datagram struct {
	from netip.AddrPort
	b    []byte
}

// simNet delivers datagrams between simConns by endpoint.
type simNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*simConn
	tap   chan datagram // if set, gets a copy of datagrams delivered (never blocks)
	cut   atomic.Bool   // set: every datagram is lost (a broken underlay)
}

func (s *simNet) listen(ep string) *simConn {
	c := &simConn{net: s, ep: netip.MustParseAddrPort(ep), in: make(chan datagram, 1024), done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[netip.AddrPort]*simConn{}
	}
	s.conns[c.ep] = c
	return c
}

// send delivers b to ep as if from from; datagrams to nowhere are lost.
func (s *simNet) send(from, to netip.AddrPort, b []byte) {
	if s.cut.Load() {
		return
	}
	s.mu.Lock()
	c, tap := s.conns[to], s.tap
	s.mu.Unlock()
	if c != nil {
		select {
		case c.in <- datagram{from, append([]byte(nil), b...)}:
		case <-c.done:
		}
	}
	// After delivery: a datagram seen on the tap is already queued at its
	// receiver, ahead of anything sent later.
	if tap != nil {
		select {
		case tap <- datagram{from, append([]byte(nil), b...)}:
		default:
		}
	}
}

// setTap starts (with a buffer) or stops (nil) copying sent datagrams.
func (s *simNet) setTap(tap chan datagram) {
	s.mu.Lock()
	s.tap = tap
	s.mu.Unlock()
}

// sentData returns the next data datagram (not a path probe) from ep seen
// on the tap.
func (s *simNet) sentData(t *testing.T, tap chan datagram, ep netip.AddrPort) datagram {
	t.Helper()
	timeout := time.After(patience)
	for {
		select {
		case d := <-tap:
			if d.from == ep && !encap.IsControl(d.b) {
				return d
			}
		case <-timeout:
			t.Fatalf("no data datagram from %s", ep)
		}
	}
}

type simConn struct {
	net       *simNet
	ep        netip.AddrPort
	in        chan datagram
	done      chan struct{}
	closeOnce sync.Once
}

var _ Transport = (*simConn)(nil)

func (c *simConn) Read(dgrams [][]byte, eps []netip.AddrPort) (int, error) {
	var d datagram
	select {
	case d = <-c.in:
	case <-c.done:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		dgrams[n] = d.b // a copy made by send, the loop's until the next Read
		eps[n] = d.from
		n++
		if n == len(dgrams) {
			return n, nil
		}
		select {
		case d = <-c.in:
		default:
			return n, nil
		}
	}
}

func (c *simConn) Write(bufs [][]byte, eps []netip.AddrPort) error {
	for i, b := range bufs {
		c.net.send(c.ep, eps[i], b)
	}
	return nil
}

func (c *simConn) WriteTo(b []byte, ep netip.AddrPort) error {
	c.net.send(c.ep, ep, b)
	return nil
}

func (c *simConn) Stats() udp.Stats       { return udp.Stats{} }
func (c *simConn) BatchSize() int         { return 16 }
func (c *simConn) Offloads() udp.Offloads { return udp.Offloads{Reason: "simulated"} }
func (c *simConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return nil
}

type simNode struct {
	*Node
	tun  *tunneltest.Device
	conn *simConn
	done chan error
}

// startSim runs a node named name with subnet and endpoint ep on net, peered
// statically with peers. It stops when the test ends.
func startSim(t *testing.T, sn *simNet, name, subnet, ep string, peers ...peer.Info) *simNode {
	t.Helper()
	codec, _ := encap.NewPlain(1)
	return startSimCodec(t, sn, name, subnet, ep, codec, peers...)
}

// startSimCodec is startSim with a given codec (sealed, other keys…).
func startSimCodec(t *testing.T, sn *simNet, name, subnet, ep string, codec encap.Codec, peers ...peer.Info) *simNode {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Subnet = netip.MustParsePrefix(subnet)
	return startSimConfig(t, sn, cfg, name, ep, codec, peers...)
}

// startSimConfig is startSimCodec with a given configuration (dual-stack…).
func startSimConfig(t *testing.T, sn *simNet, cfg Config, name, ep string, codec encap.Codec, peers ...peer.Info) *simNode {
	t.Helper()
	cfg.Name, cfg.Insecure = name, true
	cfg.ProbeInterval = 100 * time.Millisecond
	mtu := 1500 - 28 - codec.Headroom() - codec.Tailroom()
	dev := tunneltest.New("weft0", mtu, 8)
	conn := sn.listen(ep)
	under := Underlay{Interface: "sim0", Addr: conn.ep.Addr(), MTU: 1500, Why: "simulated"}
	n, err := newNode(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), under, mtu, codec, []tunnel.Device{dev}, []Transport{conn})
	if err != nil {
		t.Fatal(err)
	}
	s := &simNode{Node: n, tun: dev, conn: conn, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- n.Run(ctx, peer.StaticSet(peers)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	})
	testenv.WaitFor(t, patience, "routes of "+name, func() bool { return len(n.table.Load().peers) == len(peers) })
	return s
}

// patience bounds every wait; only a hang or a lost packet reaches it.
const patience = 10 * time.Second

func recv(t *testing.T, d *tunneltest.Device) []byte {
	t.Helper()
	p, err := d.Next(patience)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// nextIs checks that the next packet d writes is marker, which the test
// sent after packets that must not arrive: the data path keeps order, so
// any of them delivered would come out first.
func nextIs(t *testing.T, d *tunneltest.Device, marker []byte) {
	t.Helper()
	if p := recv(t, d); !bytes.Equal(p, marker) {
		t.Fatalf("unexpected packet on the TUN before the marker: % x", p[:min(len(p), 40)])
	}
}

// pair starts a and b, peered with each other.
func pair(t *testing.T) (*simNet, *simNode, *simNode) {
	sn := &simNet{}
	a := startSim(t, sn, "a", "10.244.1.0/24", "192.0.2.1:6081", testPeer("b", "10.244.2.0/24", "192.0.2.2:6081"))
	b := startSim(t, sn, "b", "10.244.2.0/24", "192.0.2.2:6081", testPeer("a", "10.244.1.0/24", "192.0.2.1:6081"))
	return sn, a, b
}

func drop(n *simNode, reason string) uint64 { return n.drops.snapshot()[reason] }

func TestSimForwarding(t *testing.T) {
	_, a, b := pair(t)
	for _, size := range []int{28, 1000, 1464} {
		pkt := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), size, true)
		a.tun.Inject(pkt)
		if got := recv(t, b.tun); !bytes.Equal(got, pkt) {
			t.Fatalf("size %d: b's TUN got a different packet", size)
		}
	}
	reply := packettest.UDP4Len(addr("10.244.2.6"), addr("10.244.1.0"), 100, false)
	b.tun.Inject(reply)
	if got := recv(t, a.tun); !bytes.Equal(got, reply) {
		t.Fatal("reply differs")
	}
	st := a.Status()
	if len(st.Peers) != 1 || st.Peers[0].TxPackets != 3 || st.Peers[0].RxPackets != 1 || st.Peers[0].State != "static" {
		t.Fatalf("a's peers: %+v", st.Peers)
	}
	if st.Address != netip.MustParseAddr("10.244.1.0") || st.MTU != 1464 {
		t.Fatalf("status %+v", st)
	}
}

func TestSimSenderRefuses(t *testing.T) {
	_, a, _ := pair(t)
	cases := []struct {
		pkt    []byte
		reason string
		icmp   bool
	}{
		{packettest.UDP4Len(addr("10.244.7.5"), addr("10.244.2.6"), 60, false), "foreign_source", false},
		// Another host's underlay address: only a's own may leave a.
		{packettest.UDP4Len(addr("192.0.2.2"), addr("10.244.2.6"), 60, false), "foreign_source", false},
		{packettest.UDP4Len(addr("192.0.2.7"), addr("10.244.2.6"), 60, false), "foreign_source", false},
		{packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.9.6"), 60, false), "no_route", true},
		{packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.1.6"), 60, false), "local_destination", false},
		{packettest.UDP4Len(addr("10.244.1.5"), addr("8.8.8.8"), 60, false), "not_overlay", false},
		{packettest.UDP4Len(addr("10.244.1.5"), addr("224.0.0.251"), 60, false), "multicast", false}, // mDNS
		{packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 1465, true), "too_big", true},
		{[]byte{0x45, 0, 0}, "tun_malformed", false},
	}
	for _, tc := range cases {
		before := drop(a, tc.reason)
		a.tun.Inject(tc.pkt)
		testenv.WaitFor(t, patience, tc.reason, func() bool { return drop(a, tc.reason) == before+1 })
		if !tc.icmp {
			continue
		}
		reply := recv(t, a.tun)
		ip, ok := parseIP(reply)
		if !ok || ip.proto != 1 || ip.dst != netip.MustParseAddr("10.244.1.5") || ip.src != netip.AddrFrom4([4]byte(tc.pkt[16:20])) {
			t.Fatalf("%s: ICMP reply %+v", tc.reason, ip)
		}
	}
}

func TestSimReceiverDrops(t *testing.T) {
	sn, a, b := pair(t)
	codec, _ := encap.NewPlain(1)
	sealed := func(pkt []byte) []byte {
		buf := append(make([]byte, encap.HeaderLen), pkt...)
		d, err := codec.Seal(buf, encap.HeaderLen, len(pkt))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	other, _ := encap.NewPlain(2)
	wrongNet := append(make([]byte, encap.HeaderLen), packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 60, false)...)
	wrongNet, _ = other.Seal(wrongNet, encap.HeaderLen, 60)
	aEP, stranger := a.conn.ep, netip.MustParseAddrPort("192.0.2.99:6081")
	cases := []struct {
		from   netip.AddrPort
		b      []byte
		reason string
	}{
		{aEP, sealed(packettest.UDP4Len(addr("10.244.3.5"), addr("10.244.2.6"), 60, false)), "spoofed_source"},
		// Host addresses other than a's own: b's, and a stranger's.
		{aEP, sealed(packettest.UDP4Len(addr("192.0.2.2"), addr("10.244.2.6"), 60, false)), "spoofed_source"},
		{aEP, sealed(packettest.UDP4Len(addr("192.0.2.99"), addr("10.244.2.6"), 60, false)), "spoofed_source"},
		{aEP, sealed(packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.3.6"), 60, false)), "not_our_subnet"},
		{stranger, sealed(packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 60, false)), "unknown_peer"},
		{aEP, []byte{0, 0, 8}, "short"},
		{aEP, wrongNet, "wrong_network"},
		{aEP, sealed(packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 60, false))[:40], "bad_inner"},
	}
	for _, tc := range cases {
		before := drop(b, tc.reason)
		sn.send(tc.from, b.conn.ep, tc.b)
		testenv.WaitFor(t, patience, tc.reason, func() bool { return drop(b, tc.reason) == before+1 })
	}
	// A good packet still flows after all that, and is the first to reach
	// the TUN: none of the refused ones, sent before it, did.
	pkt := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 60, false)
	sn.send(aEP, b.conn.ep, sealed(pkt))
	nextIs(t, b.tun, pkt)
}

// A host's replies to a remote container, sourced from its underlay
// address (the container connected to it through the underlay), reach the
// container; the peer's endpoint is the one host address accepted from it.
func TestSimHostSource(t *testing.T) {
	_, a, b := pair(t)
	reply := packettest.UDP4Len(addr("192.0.2.1"), addr("10.244.2.6"), 100, false)
	a.tun.Inject(reply)
	if got := recv(t, b.tun); !bytes.Equal(got, reply) {
		t.Fatal("b's TUN got a different packet")
	}
	if d := drop(a, "foreign_source") + drop(b, "spoofed_source"); d != 0 {
		t.Fatalf("%d drops of a host's reply", d)
	}
}

// A peer whose endpoint lies inside the overlay gets no host address: it
// would stand for another node's overlay address.
func TestHostAddrOutsideOverlay(t *testing.T) {
	network := netip.MustParsePrefix("10.244.0.0/16")
	for ep, want := range map[string]netip.Addr{
		"192.0.2.1:6081":       addr("192.0.2.1"),
		"[::ffff:192.0.2.1]:1": addr("192.0.2.1"),
		"10.244.3.9:6081":      {},
		"[2001:db8::1]:6081":   addr("2001:db8::1"),
	} {
		p := testPeer("p", "10.244.1.0/24", ep)
		tb, errs := buildTable([]peer.Info{p}, network, netip.MustParsePrefix("10.244.2.0/24"), &encap.Plain{}, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if got := tb.peers[0].host; got != want {
			t.Errorf("endpoint %s: host address %v, want %v", ep, got, want)
		}
		if tb.peers[0].sourceOK(addr("10.244.3.9")) {
			t.Errorf("endpoint %s: an overlay address outside the subnet passes", ep)
		}
	}
}

// The per-packet work of both loops allocates nothing.
func TestPacketPathAllocs(t *testing.T) {
	for _, src := range []string{"10.244.1.5", "192.0.2.1"} { // a container, a's host
		t.Run(src, func(t *testing.T) { packetPathAllocs(t, addr(src)) })
	}
}

func packetPathAllocs(t *testing.T, src netip.Addr) {
	_, a, b := pair(t)
	in := newInside(a.Node, a.queues[0])
	pkt := packettest.UDP4Len(src, addr("10.244.2.6"), 1400, true)
	off := a.codec.Headroom()
	tb := a.table.Load()
	allocs := testing.AllocsPerRun(1000, func() {
		copy(in.bufs[0][off:], pkt)
		in.dgrams, in.eps = in.dgrams[:0], in.eps[:0]
		in.packet(tb, in.bufs[0], off, len(pkt))
		if len(in.dgrams) != 1 {
			t.Fatal("not queued")
		}
	})
	if allocs != 0 {
		t.Errorf("inside: %.1f allocs per packet", allocs)
	}
	out := newOutside(b.Node, b.queues[0])
	dgram := append([]byte(nil), in.dgrams[0]...)
	tb = b.table.Load()
	allocs = testing.AllocsPerRun(1000, func() {
		out.out = out.out[:0]
		out.datagram(tb, dgram, a.conn.ep)
		if len(out.out) != 1 {
			t.Fatal("not delivered")
		}
	})
	if allocs != 0 {
		t.Errorf("outside: %.1f allocs per packet", allocs)
	}
}

func sealed(t *testing.T, name string, keys ...[]byte) *encap.Sealed {
	t.Helper()
	c, err := encap.NewSealed(encap.SealedConfig{VNI: 1, Name: name, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSimSealed(t *testing.T) {
	key, _ := encap.GenerateKey()
	other, _ := encap.GenerateKey()
	sn := &simNet{}
	pa, pb := testPeer("a", "10.244.1.0/24", "192.0.2.1:6081"), testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")
	a := startSimCodec(t, sn, "a", "10.244.1.0/24", "192.0.2.1:6081", sealed(t, "a", key), pb, testPeer("c", "10.244.3.0/24", "192.0.2.3:6081"))
	b := startSimCodec(t, sn, "b", "10.244.2.0/24", "192.0.2.2:6081", sealed(t, "b", key), pa, testPeer("c", "10.244.3.0/24", "192.0.2.3:6081"))
	// c holds another cluster's key.
	c := startSimCodec(t, sn, "c", "10.244.3.0/24", "192.0.2.3:6081", sealed(t, "c", other), pa, pb)
	if a.mtu != 1424 {
		t.Fatalf("sealed MTU %d, want 1424", a.mtu)
	}
	pkt := packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 1424, true)
	a.tun.Inject(pkt)
	if got := recv(t, b.tun); !bytes.Equal(got, pkt) {
		t.Fatal("b got a different packet")
	}

	// Capture what a sends and replay it: delivered once, then dropped.
	tap := make(chan datagram, 64)
	sn.setTap(tap)
	a.tun.Inject(pkt)
	recv(t, b.tun)
	d := sn.sentData(t, tap, a.conn.ep) // path probes travel too
	sn.setTap(nil)
	sn.send(d.from, b.conn.ep, d.b)
	testenv.WaitFor(t, patience, "replay dropped", func() bool { return drop(b, "replay") == 1 })
	marker := packettest.UDP4Len(addr("10.244.1.7"), addr("10.244.2.6"), 80, false)
	a.tun.Inject(marker)
	nextIs(t, b.tun, marker)

	// c's packets do not open at b. Once the tap shows c's datagram it
	// is queued at b, ahead of the next marker from a.
	tap = make(chan datagram, 64)
	sn.setTap(tap)
	c.tun.Inject(packettest.UDP4Len(addr("10.244.3.5"), addr("10.244.2.6"), 100, false))
	sn.sentData(t, tap, c.conn.ep)
	sn.setTap(nil)
	// (c's path probes are refused the same way, so count at least one.)
	testenv.WaitFor(t, patience, "b refusing c's key", func() bool { return drop(b, "unknown_key")+drop(b, "auth_failed") >= 1 })
	a.tun.Inject(marker)
	nextIs(t, b.tun, marker)
	if rx := b.Status().Peers[1].RxPackets; rx != 0 {
		t.Fatalf("b delivered %d packets from c", rx)
	}
}
