// Package node is weft's data plane: it opens the TUN device and the UDP
// socket, keeps the routing table fed from its peer sources, runs the
// forwarding loops (inside.go: TUN → wire, outside.go: wire → TUN) and the
// path probes, and reports status. Package agent wires it to gossip, the
// control socket and metrics.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/udp"
)

// Transport is the underlay socket the loops use; *udp.Conn is the real one.
// Read and Write may run concurrently with each other, not with themselves.
type Transport interface {
	// Read returns up to len(dgrams) datagrams, dgrams[i] from eps[i], as
	// slices of the transport's own buffers, valid until the next Read;
	// net.ErrClosed after Close.
	Read(dgrams [][]byte, eps []netip.AddrPort) (int, error)
	// Write sends bufs[i] to eps[i].
	Write(bufs [][]byte, eps []netip.AddrPort) error
	// WriteTo sends one datagram; unlike Write it may be called from any
	// goroutine at any time (path probes and their answers).
	WriteTo(b []byte, ep netip.AddrPort) error
	BatchSize() int
	Offloads() udp.Offloads
	Stats() udp.Stats
	Close() error
}

var _ Transport = (*udp.Conn)(nil)

// Node is a running weft agent.
type Node struct {
	cfg      Config
	log      *slog.Logger
	underlay Underlay
	host     netip.Addr // underlay.Addr as an inner source (hostAddr); read-only
	mtu      int
	codec    encap.Codec
	queues   []*queue      // the pipelines (queue.go)
	tun      tunnel.Device // queue 0's: the device's name and offloads
	conn     Transport     // queue 0's: control messages (path probes) leave from it
	started  time.Time

	table     atomic.Pointer[table]
	drops     drops
	trace     tracer
	icmpLimit *rate.Limiter

	sendWarn *rate.Limiter // one send-error log line per minute at most

	peerErrMu sync.Mutex
	peerErrs  map[string]bool // peer-set problems already logged

	answers chan probeAnswer // probe answers for answerProbes (probe.go)

	// What the peer sources report beyond peers; set by Run, which may
	// start after status is served.
	reporters atomic.Pointer[reporters]
	keyHook   KeyHook
	keyMu     sync.Mutex      // serialises key changes
	secrets   map[byte][]byte // the cluster secrets held, by key id; under keyMu
}

// reporters are the peer sources that also report when each peer was last
// heard (gossip) and the lease TTL in force.
type reporters struct {
	heard []peer.HeardReporter
	ttl   peer.TTLReporter // nil without gossip
}

// OpenTun creates the TUN device with Config.Queues queues, one Device
// each; tunnel.OpenQueues is the real one, tests pass in-memory devices.
type OpenTun func(tunnel.Config, *slog.Logger) ([]tunnel.Device, error)

// Listen binds the node's UDP sockets, one per queue, on --listen (the
// advertised address when --listen is the wildcard: dataListen). The agent
// binds them before it joins a cluster and hands them to New.
func Listen(cfg Config, under netip.Addr, log *slog.Logger) ([]Transport, error) {
	cfg.Listen = dataListen(cfg.Listen, under)
	return listenQueues(cfg, log, cfg.queues())
}

// New validates cfg and opens the TUN device's queues (with openTun; nil is
// tunnel.OpenQueues) on the underlay under, which FindUnderlay chose, to
// forward over conns, the sockets Listen bound (nil: New binds them). New
// closes conns if it fails; otherwise the caller must Run the node (which
// closes them) or Close it.
func New(cfg Config, under Underlay, log *slog.Logger, openTun OpenTun, conns []Transport) (_ *Node, err error) {
	defer func() {
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
		}
	}()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Subnet.IsValid() {
		return nil, errors.New("--subnet: no subnet for this node (give one, or let gossip lease one)")
	}
	if openTun == nil {
		openTun = tunnel.OpenQueues
	}
	codec, err := newCodec(cfg)
	if err != nil {
		return nil, err
	}
	mtu := under.MTU - overhead(under.Addr, codec.Headroom(), codec.Tailroom())
	log.Info("mtu chosen", "interface", under.Interface, "underlay_mtu", under.MTU, "tun_mtu", mtu)
	if mtu < 576 {
		return nil, fmt.Errorf("underlay %s has MTU %d, leaving %d for the overlay; at least 576 is needed", under.Interface, under.MTU, mtu)
	}
	cfg.Listen = dataListen(cfg.Listen, under.Addr)
	queues := cfg.queues()
	if cfg.TunDriver == tunnel.DriverWater {
		log.Info("the water TUN driver has one queue: one pipeline", "queues", queues)
	}
	if conns == nil {
		if conns, err = listenQueues(cfg, log, queues); err != nil {
			return nil, err
		}
	}
	if len(conns) != queues {
		return nil, fmt.Errorf("--listen %s: %d sockets for %d queues", cfg.Listen, len(conns), queues)
	}
	devs, err := openTun(tunnel.Config{
		Name:     cfg.TunName,
		Driver:   cfg.TunDriver,
		MTU:      mtu,
		Address:  netip.PrefixFrom(cfg.Address(), cfg.Address().BitLen()),
		Address6: tunAddress6(&cfg),
		Routes:   tunRoutes(&cfg),
		Queues:   queues,
	}, log)
	if err != nil {
		if errors.Is(err, tunnel.ErrRouteExists) {
			return nil, fmt.Errorf("--network %s: %w", cfg.Network, err)
		}
		return nil, fmt.Errorf("--tun %s: %w", cfg.TunName, err)
	}
	if len(devs) != queues {
		for _, d := range devs {
			d.Close()
		}
		return nil, fmt.Errorf("--tun %s: opened %d queues, want %d", cfg.TunName, len(devs), queues)
	}
	return newNode(cfg, log, under, mtu, codec, devs, conns)
}

// newCodec is the sealed codec keyed with cfg.Keys, or plaintext GENEVE
// with --insecure.
func newCodec(cfg Config) (encap.Codec, error) {
	if cfg.Insecure {
		return encap.NewPlain(cfg.VNI)
	}
	c, err := encap.NewSealed(encap.SealedConfig{VNI: cfg.VNI, Name: cfg.Name, Keys: cfg.Keys, RekeyAfterPackets: cfg.RekeyAfterPackets})
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	return c, nil
}

// newNode assembles a node from open parts, one TUN queue and one socket per
// pipeline (tests pass fakes).
func newNode(cfg Config, log *slog.Logger, under Underlay, mtu int, codec encap.Codec, devs []tunnel.Device, conns []Transport) (*Node, error) {
	if len(devs) == 0 || len(devs) != len(conns) {
		return nil, fmt.Errorf("%d TUN queues and %d sockets: want one each per pipeline", len(devs), len(conns))
	}
	n := &Node{
		cfg: cfg, log: log, underlay: under, host: hostAddr(under.Addr, cfg.overlay()), mtu: mtu, codec: codec, tun: devs[0], conn: conns[0],
		icmpLimit: rate.NewLimiter(100, 20),
		sendWarn:  rate.NewLimiter(rate.Every(time.Minute), 1),
		started:   time.Now(),
		answers:   make(chan probeAnswer, answerQueue),
		secrets:   make(map[byte][]byte),
	}
	for _, k := range cfg.Keys {
		n.secrets[encap.KeyID(k)] = k
	}
	for i := range devs {
		n.queues = append(n.queues, &queue{index: i, tun: devs[i], conn: conns[i]})
	}
	t, _ := buildTableIn(nil, cfg.overlay(), codec, nil)
	n.table.Store(t)
	return n, nil
}

// Close releases the TUN queues and the sockets; Run does this itself on
// return.
func (n *Node) Close() error {
	var errs []error
	for _, q := range n.queues {
		errs = append(errs, q.tun.Close(), q.conn.Close())
	}
	return errors.Join(errs...)
}

// Run forwards traffic until ctx ends or a loop or a peer source fails, then
// shuts down in order: loops, TUN, socket.
func (n *Node) Run(ctx context.Context, sources ...peer.Source) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	rs := &reporters{}
	for _, src := range sources {
		if r, ok := src.(peer.HeardReporter); ok {
			rs.heard = append(rs.heard, r)
		}
		if r, ok := src.(peer.TTLReporter); ok {
			rs.ttl = r
		}
	}
	n.reporters.Store(rs)
	var wg sync.WaitGroup
	fail := func(what string, err error) {
		if err != nil {
			cancel(fmt.Errorf("%s: %w", what, err))
		}
	}
	for _, q := range n.queues {
		wg.Go(func() { fail(fmt.Sprintf("tun → wire loop %d", q.index), newInside(n, q).run()) })
		wg.Go(func() { fail(fmt.Sprintf("wire → tun loop %d", q.index), newOutside(n, q).run()) })
	}
	wg.Go(func() { n.probe(ctx) })
	wg.Go(func() { n.rekey(ctx) })
	wg.Go(func() { n.answerProbes(ctx) })
	n.runSources(ctx, &wg, sources, fail)

	n.log.Info("node up", "name", n.cfg.Name, "address", n.cfg.Address(), "subnet", n.cfg.Subnet,
		"address6", n.cfg.Address6(), "subnet6", n.cfg.Subnet6, "listen", n.cfg.Listen, "tun", n.tun.Name(), "driver", n.cfg.TunDriver, "queues", len(n.queues), "mtu", n.mtu,
		"tun_offloads", n.tun.Offloads(), "udp_offloads", n.udpOffloads())

	<-ctx.Done()
	cause := context.Cause(ctx)
	closeErr := n.Close() // unblocks both loops
	wg.Wait()
	if errors.Is(cause, context.Canceled) {
		cause = nil
	}
	return errors.Join(cause, closeErr)
}

// runSources merges the peer sets of every source into one routing table.
func (n *Node) runSources(ctx context.Context, wg *sync.WaitGroup, sources []peer.Source, fail func(string, error)) {
	var mu sync.Mutex
	sets := make([][]peer.Info, len(sources))
	for i, src := range sources {
		wg.Go(func() {
			fail("peer source", src.Run(ctx, func(peers []peer.Info) {
				mu.Lock()
				defer mu.Unlock()
				sets[i] = peers
				var all []peer.Info
				for _, s := range sets {
					all = append(all, s...)
				}
				n.setPeers(all)
			}))
		})
	}
}

// setPeers swaps in a routing table for peers. Peers that do not check out
// are left out and logged once per distinct reason, not on every update.
func (n *Node) setPeers(peers []peer.Info) {
	t, errs := buildTableIn(peers, n.cfg.overlay(), n.codec, n.table.Load())
	n.table.Store(t)
	n.peerErrMu.Lock()
	seen := make(map[string]bool, len(errs))
	for _, err := range errs {
		msg := err.Error()
		seen[msg] = true
		if !n.peerErrs[msg] {
			n.log.Warn("peer left out of the routing table", "err", err)
		}
	}
	n.peerErrs = seen
	n.peerErrMu.Unlock()
	n.log.Debug("routes updated", "peers", len(t.peers), "routed", len(t.byEndpoint))
}

// warnLimited logs an I/O failure of the forwarding loops at most as often
// as l allows; the drop counters count every one.
func (n *Node) warnLimited(l *rate.Limiter, msg string, err error) {
	if l.Allow() {
		n.log.Warn(msg+" (further failures this minute are only counted)", "err", err)
	}
}

// MTU is the TUN's MTU: the underlay's less the encapsulation.
func (n *Node) MTU() int { return n.mtu }
