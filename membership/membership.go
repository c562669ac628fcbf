package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/weftnet/weft/peer"
)

// Errors callers act on.
var (
	// ErrNameInUse: a live node at another address has this node's name.
	ErrNameInUse = errors.New("node name in use by another live node")
	// ErrLeaseInUse: Release of a lease whose owner is alive.
	ErrLeaseInUse = errors.New("lease held by a live node")
	// ErrNoLease: Release of a name that holds no lease.
	ErrNoLease = errors.New("no lease for this name")
	// ErrSubnetLost: after Start, a claim that ranks before ours took our
	// subnet (a healed partition that handed it out twice). Run returns it;
	// the node must restart, and then gets a free subnet.
	ErrSubnetLost = errors.New("subnet lost to another node")
)

// Membership is one node's view of the cluster and its subnet lease. Create it
// with New, then Start, then Run; Close (or the end of Run's context) leaves.
// Its methods may be called concurrently.
type Membership struct {
	cfg        Config
	log        *slog.Logger
	seeds      []string
	file       string
	learnFirst bool // the lease file was corrupt: learn the cluster's table before claiming

	ml             *memberlist.Memberlist
	keyring        *memberlist.Keyring // nil: gossip in clear
	queue          *memberlist.TransmitLimitedQueue
	probeInterval  time.Duration
	gossipInterval time.Duration
	retransmitMult int
	gossip         netip.AddrPort
	liveOthers     atomic.Int64
	stats          [numReasons]atomic.Uint64

	wake      chan struct{} // cap 1: something changed; the maintain goroutine looks
	published chan struct{} // cap 1: a new peer set is ready for Run
	joined    chan struct{} // closed at the first successful join
	lost      chan struct{} // closed when our subnet is lost after Start
	stop      chan struct{}
	wg        sync.WaitGroup
	startOnce atomic.Bool
	running   atomic.Bool
	joinOnce  sync.Once
	lostOnce  sync.Once
	closeOnce sync.Once
	closeErr  error
	rounds    int // claim rounds Start needed (1 without a contest)

	mu             sync.Mutex // a leaf lock: never held while calling memberlist or doing I/O
	leases         map[string]Lease
	own            Lease // our record; zero Subnet until Start claims
	started        bool  // Start returned: a lost contest now ends Run
	leaving        bool
	reassert       uint64 // a record of our name at this version contradicts ours
	members        map[string]*member
	nameConflict   netip.AddrPort // gossip address of another node announcing our name
	rebuild        bool           // the peer set must be recomputed
	tableDirty     bool           // the table changed since the last save
	lastSave       time.Time
	claimsChanged  time.Time       // when a claim anywhere last appeared or changed
	membersChanged time.Time       // when a member last appeared
	peers          []peer.Info     // published; never modified once published
	notes          []note          // log lines for the maintain goroutine
	warned         map[string]bool // reason+name already logged
	overlapping    map[string]netip.Prefix
	lostErr        error
}

type member struct {
	name    string
	gossip  netip.AddrPort
	meta    meta
	state   peer.State // alive, dead or left; suspect is derived from heard
	since   time.Time  // of the last state change
	heard   time.Time  // last direct contact: an event about it or an answered probe
	suspect bool       // as last published
}

// New validates cfg and loads the lease file; it touches no network.
func New(cfg Config) (*Membership, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("membership: %w", err)
	}
	m := &Membership{
		cfg:         cfg,
		log:         cfg.Log.With("subsystem", "membership"),
		file:        filepath.Join(cfg.StateDir, LeaseFile),
		wake:        make(chan struct{}, 1),
		published:   make(chan struct{}, 1),
		joined:      make(chan struct{}),
		lost:        make(chan struct{}),
		stop:        make(chan struct{}),
		leases:      map[string]Lease{},
		members:     map[string]*member{},
		warned:      map[string]bool{},
		overlapping: map[string]netip.Prefix{},
	}
	for _, s := range cfg.Join {
		a, _ := seedAddr(s, cfg.GossipPort) // validated
		m.seeds = append(m.seeds, a)
	}
	now := time.Now()
	ls, aside, err := loadLeases(m.file, now)
	switch {
	case aside != "":
		m.learnFirst = true
		m.log.Error("lease file is corrupt; moved it aside and will learn the leases from the cluster before claiming a subnet",
			"file", aside, "err", err)
	case err != nil:
		return nil, fmt.Errorf("membership: %w", err)
	}
	for _, l := range ls {
		if err := checkLease(l, cfg.Network); err != nil {
			m.log.Warn("ignoring a record of the lease file", "err", err)
			continue
		}
		if l.LastSeen.After(now) {
			l.LastSeen = now
		}
		if l.Name != cfg.Name && expired(l, now, cfg.LeaseTTL) {
			continue
		}
		cur, have := m.leases[l.Name]
		m.leases[l.Name], _ = mergeLease(cur, have, l)
	}
	return m, nil
}

// Start joins the cluster and leases this node's subnet, which it returns:
// it creates the memberlist, joins a seed (or, if none answers, keeps trying
// in the background), merges the cluster's lease table that the join brings,
// claims a subnet (the requested one, else its old one, else the first free
// one), and waits SettleWindow for competing claims, re-picking if one beats
// it. ctx bounds the whole start. On error nothing is left running.
func (m *Membership) Start(ctx context.Context) (_ netip.Prefix, err error) {
	if !m.startOnce.CompareAndSwap(false, true) {
		return netip.Prefix{}, errors.New("membership: Start called twice")
	}
	m.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(m.liveOthers.Load()) + 1 },
		RetransmitMult: memberlist.DefaultLANConfig().RetransmitMult,
	}
	mc := m.cfg.memberlistConfig(&delegate{m}, m.log)
	m.queue.RetransmitMult = mc.RetransmitMult
	m.probeInterval, m.gossipInterval, m.retransmitMult = mc.ProbeInterval, mc.GossipInterval, mc.RetransmitMult
	m.keyring = mc.Keyring
	ml, err := memberlist.Create(mc)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("start gossip on %s: %w", netip.AddrPortFrom(m.cfg.Advertise, uint16(m.cfg.GossipPort)), err)
	}
	m.ml = ml
	self := ml.LocalNode()
	a, _ := netip.AddrFromSlice(self.Addr)
	m.gossip = netip.AddrPortFrom(a.Unmap(), self.Port)
	m.seeds = slices.DeleteFunc(m.seeds, func(s string) bool { // a shared seed list may name us
		ap, err := netip.ParseAddrPort(s)
		return err == nil && netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) == m.gossip
	})
	defer func() {
		if err == nil {
			return
		}
		if errors.Is(err, ErrNameInUse) {
			// No goodbye: memberlist would announce the other node's departure.
			m.closeOnce.Do(func() { m.closeErr = m.shutdown(false) })
		}
		m.Close()
	}()
	m.wg.Go(m.maintain)

	if err := m.join(ctx); err != nil {
		return netip.Prefix{}, err
	}
	m.wg.Go(m.rejoin)
	subnet, err := m.claim(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	m.mu.Lock()
	m.started = true
	table := m.tableLocked(time.Now())
	m.tableDirty, m.lastSave = false, time.Now()
	m.mu.Unlock()
	if err := saveLeases(m.file, table); err != nil {
		return netip.Prefix{}, err
	}
	m.log.Info("subnet leased", "subnet", subnet, "gossip", m.gossip, "endpoint", m.cfg.DataEndpoint)
	return subnet, nil
}

// GossipAddr is the address and port gossip listens on (known after Start).
func (m *Membership) GossipAddr() netip.AddrPort { return m.gossip }

// join contacts the seeds once. If none answers, the rejoin goroutine keeps
// trying; Start waits for it only when the lease file was lost, since then it
// must learn the leases before it may claim.
func (m *Membership) join(ctx context.Context) error {
	if len(m.seeds) == 0 {
		if m.learnFirst {
			m.log.Warn("no seeds to learn leases from: this node is the first of its cluster, claiming from an empty table")
		}
		return nil
	}
	if n, err := m.ml.Join(m.seeds); n == 0 {
		m.log.Warn("no seed answered; retrying in the background", "seeds", m.seeds, "err", oneLine(err))
		if !m.learnFirst {
			return nil
		}
		select {
		case <-m.joined:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a seed to learn the leases from (the lease file was corrupt): %w", ctx.Err())
		}
	} else {
		m.markJoined()
	}
	return m.resolveNameConflict(ctx)
}

func (m *Membership) markJoined() { m.joinOnce.Do(func() { close(m.joined) }) }

// resolveNameConflict handles the cluster knowing our name at another
// address: a copy of this node, or this node's previous run, which may have
// died moments ago and not yet been declared failed. Only the first answers
// a ping addressed to our name, so ask it directly until NameConflictWait.
func (m *Membership) resolveNameConflict(ctx context.Context) error {
	deadline := time.Now().Add(m.cfg.NameConflictWait)
	for logged := false; ; {
		m.mu.Lock()
		other := m.nameConflict
		if l, ok := m.leases[m.cfg.Name]; !other.IsValid() && ok && !l.Released && l.Gossip.IsValid() && l.Gossip != m.gossip {
			other = l.Gossip
		}
		m.mu.Unlock()
		if !other.IsValid() {
			return nil
		}
		if _, err := m.ml.Ping(m.cfg.Name, net.UDPAddrFromAddrPort(other)); err != nil {
			m.mu.Lock()
			m.nameConflict = netip.AddrPort{}
			m.mu.Unlock()
			m.log.Info("taking over this name from a previous run that no longer answers", "endpoint", other)
			m.wg.Go(m.takeOver)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %q answers at %s", ErrNameInUse, m.cfg.Name, other)
		}
		if !logged {
			m.log.Warn("a node with this name answers at another address; waiting for it to stop", "peer", m.cfg.Name, "endpoint", other, "wait", m.cfg.NameConflictWait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to give up our name: %w", other, ctx.Err())
		case <-time.After(m.probeInterval):
		}
	}
}

// takeOver re-announces us for a while after taking over our name: the
// cluster refuses our address until it declares the old one failed, and
// nothing else would resend our announcement before the next push/pull.
func (m *Membership) takeOver() {
	every := 5 * m.probeInterval
	until := time.Now().Add(m.cfg.NameConflictWait + 30*m.probeInterval)
	for time.Now().Before(until) {
		select {
		case <-m.stop:
			return
		case <-time.After(every):
		}
		m.ml.UpdateNode(every)
	}
}

// Run feeds the routing table: it calls update with the complete set of live
// peers (alive or suspect, with a subnet that checks out) now and whenever
// it changes, until ctx ends; then it leaves the cluster (Close). The slices
// passed to update are never modified afterwards. Run returns ErrSubnetLost
// (wrapped) if another node takes our subnet; the caller should restart.
func (m *Membership) Run(ctx context.Context, update func([]peer.Info)) error {
	if m.ml == nil {
		return errors.New("membership: Run before Start")
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("membership: Run called twice")
	}
	var last []peer.Info
	for first := true; ; first = false {
		m.mu.Lock()
		ps := m.peers
		m.mu.Unlock()
		if first || !samePeers(ps, last) {
			update(ps)
			last = ps
		}
		select {
		case <-ctx.Done():
			return m.Close()
		case <-m.lost:
			m.mu.Lock()
			err := m.lostErr
			m.mu.Unlock()
			return errors.Join(err, m.Close())
		case <-m.published:
		}
	}
}

func samePeers(a, b []peer.Info) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Close leaves the cluster gracefully, so other nodes see this node "left" at
// once rather than failed after probing, and stops everything. It saves the
// lease table. Safe to call more than once and without Start.
func (m *Membership) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.shutdown(true) })
	return m.closeErr
}

// shutdown stops the node; without leave it is a crash as others see it.
func (m *Membership) shutdown(leave bool) error {
	if m.ml == nil {
		return nil
	}
	close(m.stop)
	if leave {
		m.mu.Lock()
		m.leaving = true
		m.mu.Unlock()
		half := m.cfg.LeaveTimeout / 2
		// First tell the cluster we are leaving (metadata flag), then leave.
		if err := m.ml.UpdateNode(half); err != nil {
			m.log.Debug("announcing the leave is slow", "err", err)
		}
		if err := m.ml.Leave(half); err != nil {
			m.log.Warn("leave broadcast not confirmed; others will detect the failure instead", "err", err)
		}
	}
	var errs []error
	if err := m.ml.Shutdown(); err != nil {
		errs = append(errs, fmt.Errorf("stop gossip: %w", err))
	}
	m.wg.Wait()
	if leave && m.isStarted() {
		m.mu.Lock()
		table := m.tableLocked(time.Now())
		m.mu.Unlock()
		if err := saveLeases(m.file, table); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Membership) isStarted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}
