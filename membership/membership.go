package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// ErrEndpointInUse: joining, a live node of another name announces
	// this node's data endpoint or gossip address. Two hosts advertise one
	// address (a NAT interface every VM has): each would send to itself.
	ErrEndpointInUse = errors.New("another live node advertises this node's address")
	// ErrLeaseInUse: Release of a lease whose owner is alive.
	ErrLeaseInUse = errors.New("lease held by a live node")
	// ErrNoLease: Release of a name that holds no lease.
	ErrNoLease = errors.New("no lease for this name")
	// ErrSubnetLost: after Start, a claim that ranks before ours took our
	// subnet (a healed partition that handed it out twice, or gossip so
	// slow that two claims settled apart). Run returns it; the caller
	// either leases another subnet in process (Reclaim) or closes.
	ErrSubnetLost = errors.New("subnet lost to another node")
)

// Membership is one node's view of the cluster and its subnet lease. Create it
// with New, then Start, then Run; Close (or the end of Run's context) leaves.
// Its methods may be called concurrently.
//
// It is the driver of the lease state machine (state.go): it feeds st what
// memberlist's callbacks report and the wall clock's time, and carries out
// what st decides (gossip, logs, the lease file, the peer set for Run).
type Membership struct {
	cfg        Config
	log        *slog.Logger
	seeds      []string // --join, as host:port
	known      []string // gossip addresses of other nodes in the lease file: extra seeds
	file       string
	learnFirst bool // the lease file was corrupt: learn the cluster's table before claiming

	ml             *memberlist.Memberlist
	keyring        *memberlist.Keyring // nil: gossip in clear
	queue          *memberlist.TransmitLimitedQueue
	probeInterval  time.Duration
	gossipInterval time.Duration
	retransmitMult int
	gossip         netip.AddrPort
	liveOthers     atomic.Int64 // st.live, for memberlist's queue, which must not take mu
	stats          [numReasons]atomic.Uint64

	wake      chan struct{} // cap 1: something changed; the maintain goroutine looks
	published chan struct{} // cap 1: a new peer set is ready for Run
	lost      chan struct{} // closed when our subnet is lost after Start
	stop      chan struct{}
	wg        sync.WaitGroup
	startOnce atomic.Bool
	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	rounds    int // claim rounds Start needed (1 without a contest)

	mu           sync.Mutex  // a leaf lock: never held while calling memberlist or doing I/O
	st           *leaseState // the lease state machine
	leaving      bool
	joinSt       JoinStatus
	nameConflict netip.AddrPort  // gossip address of another node announcing our name
	notes        []note          // log lines for the maintain goroutine
	warned       map[string]bool // reason+name already logged
	lostErr      error
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
		cfg:       cfg,
		log:       cfg.Log.With("subsystem", "membership"),
		file:      filepath.Join(cfg.StateDir, LeaseFile),
		wake:      make(chan struct{}, 1),
		published: make(chan struct{}, 1),
		lost:      make(chan struct{}),
		stop:      make(chan struct{}),
		st:        newLeaseState(cfg),
		warned:    map[string]bool{},
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
	for _, err := range m.st.load(ls, now) {
		m.log.Warn("ignoring a record of the lease file", "err", err)
	}
	m.known = knownMembers(ls, cfg.Name)
	m.joinSt.Seeds = slices.Clone(m.seeds)
	return m, nil
}

// Start joins the cluster and leases this node's subnet, which it returns:
// it creates the memberlist, joins a seed — retrying until one answers, with
// no subnet claimed meanwhile (join.go; JoinStatus says how it goes) — which
// merges the cluster's lease table into ours, claims a subnet (the requested
// one, else its old one, else a free one), and waits SettleWindow for
// competing claims, re-picking if one beats it. Without seeds the node is
// the first of its cluster and claims at once. ctx bounds the whole start
// (a SIGTERM while joining ends it). On error nothing is left running.
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
		return netip.Prefix{}, fmt.Errorf("start gossip on %s: %w", netip.AddrPortFrom(m.cfg.bindAddr(), uint16(m.cfg.GossipPort)), err)
	}
	m.ml = ml
	self := ml.LocalNode()
	a, _ := netip.AddrFromSlice(self.Addr)
	m.gossip = netip.AddrPortFrom(a.Unmap(), self.Port)
	m.seeds, m.known = m.dropSelf(m.seeds), m.dropSelf(m.known)
	m.mu.Lock()
	m.st.gossip = m.gossip
	m.joinSt.Seeds, m.joinSt.Known, m.joinSt.Since = slices.Clone(m.seeds), slices.Clone(m.known), time.Now()
	m.mu.Unlock()
	defer func() {
		if err == nil {
			return
		}
		if errors.Is(err, ErrNameInUse) || errors.Is(err, ErrEndpointInUse) {
			// No goodbye: memberlist would announce the other node's
			// departure, or send it to our own address.
			m.closeOnce.Do(func() { m.closeErr = m.shutdown(false) })
		}
		m.Close()
	}()
	m.wg.Go(m.maintain)

	if err := m.join(ctx); err != nil {
		return netip.Prefix{}, err
	}
	m.wg.Go(m.rejoin)
	return m.lease(ctx)
}

// lease claims and settles our subnet and marks it started: from now on a
// claim that ranks first ends Run with ErrSubnetLost.
func (m *Membership) lease(ctx context.Context) (netip.Prefix, error) {
	subnet, err := m.claim(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	m.mu.Lock()
	table := m.st.start(time.Now())
	m.mu.Unlock()
	if err := saveLeases(m.file, table); err != nil {
		return netip.Prefix{}, err
	}
	m.log.Info("subnet leased", "subnet", subnet, "gossip", m.gossip, "endpoint", m.cfg.DataEndpoint)
	return subnet, nil
}

// Reclaim leases another subnet after Run returned ErrSubnetLost, staying
// in the cluster meanwhile; Run may then be called again. Only a node that
// has handed out no address from the lost subnet may do so (the caller
// knows); one that has must Close and stop instead, since its pods keep
// addresses that now belong to another node. The pick is Start's: the lost
// subnet counts as taken, and the new claim settles as Start's does.
func (m *Membership) Reclaim(ctx context.Context) (netip.Prefix, error) {
	m.mu.Lock()
	if m.lostErr == nil || m.running.Load() {
		m.mu.Unlock()
		return netip.Prefix{}, errors.New("membership: Reclaim without a lost subnet, or while Run runs")
	}
	m.st.reopen()
	m.lostErr, m.lost = nil, make(chan struct{})
	m.mu.Unlock()
	return m.lease(ctx)
}

// settleWindow is SettleWindow, but at least as long as memberlist takes to
// finish sending a broadcast in a cluster of this size (RetransmitMult ×
// ⌈log10(n+1)⌉ gossip intervals), by when a claim has reached every node.
func (m *Membership) settleWindow() time.Duration {
	n := float64(m.liveOthers.Load() + 2)
	spread := time.Duration(m.retransmitMult) * time.Duration(math.Ceil(math.Log10(n))) * m.gossipInterval
	return max(m.cfg.SettleWindow, spread)
}

// claim leases a subnet and settles it against concurrent claims (claim.go
// decides; this waits and gossips).
func (m *Membership) claim(ctx context.Context) (netip.Prefix, error) {
	crowd, err := m.awaitJoins(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	// Rounds are not bounded: each settles at least the winner of every
	// contested subnet, and a node that has served no address yet never
	// gives up its start over a lost contest (only ctx ends it).
	for round := 1; ; round++ {
		m.rounds = round
		m.mu.Lock()
		subnet, fx, err := m.st.pick(crowd, round == 1, time.Now())
		m.mu.Unlock()
		for _, n := range fx.notes {
			m.emit(n)
		}
		if err != nil {
			return netip.Prefix{}, err
		}
		m.apply(effects{broadcast: fx.broadcast})
		// Queue the announcement; settle waits for it to spread.
		m.ml.UpdateNode(time.Millisecond)
		if len(m.seeds) == 0 && m.liveOthers.Load() == 0 {
			return subnet, nil // the first node: nobody to contend with
		}
		if err := m.settle(ctx); err != nil {
			return netip.Prefix{}, fmt.Errorf("settling subnet %s: %w", subnet, err)
		}
		m.mu.Lock()
		w, lost, losers := m.st.contest(time.Now())
		m.mu.Unlock()
		if !lost {
			return subnet, nil
		}
		// Every loser of this round's contests picks again; they rank
		// themselves among each other as the crowd did.
		crowd = losers
		m.log.Info("another node's claim ranks first; picking another subnet", "subnet", subnet, "peer", w.name, "round", round)
	}
}

// awaitJoins waits, while other members have no subnet yet, until no member
// has appeared for half a settle window (at most two windows), and returns
// those members: the crowd that starts with us, true for those that had no
// lease (contestants).
func (m *Membership) awaitJoins(ctx context.Context) (map[string]bool, error) {
	crowd := map[string]bool{}
	window := m.settleWindow()
	deadline := time.Now().Add(2 * window)
	for {
		m.mu.Lock()
		wait := m.st.awaitJoins(crowd, window, deadline, time.Now())
		m.mu.Unlock()
		if wait <= 0 {
			return crowd, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for other nodes to join: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

// settle waits for competing claims to our claim to arrive (settleWait).
func (m *Membership) settle(ctx context.Context) error {
	m.mu.Lock()
	st := m.st.beginSettle(m.settleWindow(), time.Now())
	m.mu.Unlock()
	for {
		m.mu.Lock()
		wait := m.st.settleWait(st, time.Now())
		silent := m.st.stillSilent(st, time.Now())
		m.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		if len(silent) > 0 {
			n, err := m.ml.Join(silent) // a push/pull with each
			m.log.Debug("asked members that announce no subnet yet directly", "members", silent, "answered", n, "err", oneLine(err))
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// GossipAddr is the address and port gossip listens on (known after Start).
func (m *Membership) GossipAddr() netip.AddrPort { return m.gossip }

// resolveNameConflict handles the cluster knowing our name at another
// address: a copy of this node, or this node's previous run, which may have
// died moments ago and not yet been declared failed. Only the first answers
// a ping addressed to our name, so ask it directly until NameConflictWait.
// It takes over only after takeOverMisses pings in a row went unanswered: a
// live copy on a busy host may miss one, and taking its name would make two
// nodes answer for it.
func (m *Membership) resolveNameConflict(ctx context.Context) error {
	const takeOverMisses = 3
	deadline := time.Now().Add(m.cfg.NameConflictWait)
	for logged, misses := false, 0; ; {
		m.mu.Lock()
		other := m.nameConflict
		if !other.IsValid() {
			other = m.st.previousRun()
		}
		m.mu.Unlock()
		if !other.IsValid() {
			return nil
		}
		if _, err := m.ml.Ping(m.cfg.Name, net.UDPAddrFromAddrPort(other)); err == nil {
			misses = 0
		} else if misses++; misses >= takeOverMisses {
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

// Run feeds the routing table: it calls update with the complete peer set
// (alive members with a subnet that checks out, and gone ones still holding
// a lease, for status) now and whenever it changes, until ctx ends; then it
// leaves the cluster (Close). The slices passed to update are never modified
// afterwards. Run returns ErrSubnetLost (wrapped) if another node takes our
// subnet, still a member: the caller then calls Reclaim or Close.
func (m *Membership) Run(ctx context.Context, update func([]peer.Info)) error {
	if m.ml == nil {
		return errors.New("membership: Run before Start")
	}
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("membership: Run called twice")
	}
	defer m.running.Store(false)
	m.mu.Lock()
	lostCh := m.lost // Reclaim replaces it, never while Run runs
	m.mu.Unlock()
	var last []peer.Info
	for first := true; ; first = false {
		m.mu.Lock()
		ps := m.st.peers
		m.mu.Unlock()
		if first || !samePeers(ps, last) {
			update(ps)
			last = ps
		}
		select {
		case <-ctx.Done():
			return m.Close()
		case <-lostCh:
			m.mu.Lock()
			err := m.lostErr
			m.mu.Unlock()
			return err
		case <-m.published:
		}
	}
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
		table := m.st.table(time.Now())
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
	return m.st.started
}
