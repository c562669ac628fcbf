package membership

// A cluster of leaseStates on a virtual clock, no memberlist: every node runs
// Start's claim procedure (awaitJoins, pick, settle, contest, pick again) as
// Membership.claim does, and gossip reaches each other node after its own
// random delay, member events and lease records separately, as memberlist's
// alive messages and our broadcasts travel. Nodes are independent between
// deliveries, so each tick runs them on all cores; the order of messages
// stays that of one random source, so a run is repeatable.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/peer"
)

// simMaxRounds bounds claim rounds in the simulation (Start has no bound):
// more would mean the crowd does not converge.
const simMaxRounds = 32

type simCluster struct {
	rng      *rand.Rand
	step     time.Duration // one tick of the virtual clock
	maxDelay int           // ticks a message may take to reach a node
	window   time.Duration // the settle window, as settleWindow gives it for this size
	tick     int
	nodes    []*simMember
	msgs     []simMsg
	due      map[int][]delivery // by tick
	inc      []uint32           // [to*len(nodes)+from]: the latest member event of from that to has
}

type simMsg struct {
	lease Lease
	ev    memberEvent // when lease.Name is empty
	from  int32
	inc   uint32 // of a member event: memberlist drops an older one that arrives late
}

type delivery struct{ msg, to int32 }

// simMember is one node and where it is in its claim.
type simMember struct {
	s      *leaseState
	wakeAt int // tick
	phase  int // 0 not started, 1 awaiting joins, 2 settling, 3 started
	crowd  map[string]bool
	until  time.Time // of awaiting joins
	settle *settling
	rounds int
	inc    uint32   // memberlist's incarnation of our alive messages
	outbox []simMsg // sent this tick
	err    error
}

func (c *simCluster) now() time.Time { return t0.Add(time.Duration(c.tick) * c.step) }

func (c *simCluster) ticks(d time.Duration) int { return int((d + c.step - 1) / c.step) }

// parallel calls f on runtime.GOMAXPROCS shares of [0, n), split where cut allows.
func parallel(n int, cut func(i int) bool, f func(lo, hi int)) {
	var wg sync.WaitGroup
	w := runtime.GOMAXPROCS(0)
	for lo := 0; lo < n; {
		hi := min(n, lo+(n+w-1)/w)
		for hi < n && !cut(hi) {
			hi++
		}
		from := lo
		wg.Go(func() { f(from, hi) })
		lo = hi
	}
	wg.Wait()
}

// flush sends what the nodes sent this tick, each message to every other
// node after a random delay.
func (c *simCluster) flush() {
	for from, n := range c.nodes {
		for _, m := range n.outbox {
			m.from = int32(from)
			c.msgs = append(c.msgs, m)
			id := int32(len(c.msgs) - 1)
			for to := range c.nodes {
				if to != from {
					at := c.tick + 1 + c.rng.IntN(c.maxDelay)
					c.due[at] = append(c.due[at], delivery{id, int32(to)})
				}
			}
		}
		n.outbox = n.outbox[:0]
	}
}

func (c *simCluster) deliver() {
	now := c.now()
	ds := c.byReceiver(c.due[c.tick])
	delete(c.due, c.tick)
	parallel(len(ds), func(i int) bool { return ds[i].to != ds[i-1].to }, func(lo, hi int) {
		for _, d := range ds[lo:hi] {
			m, s := &c.msgs[d.msg], c.nodes[d.to].s
			if m.lease.Name != "" {
				s.merge([]Lease{m.lease}, now)
				continue
			}
			if inc := &c.inc[int(d.to)*len(c.nodes)+int(m.from)]; m.inc > *inc {
				*inc = m.inc
				s.member(m.ev, now)
			}
		}
	})
}

// byReceiver sorts ds by receiver, stably (a counting sort), so each node's
// maps stay in the cache while it takes its messages.
func (c *simCluster) byReceiver(ds []delivery) []delivery {
	start := make([]int, len(c.nodes)+1)
	for _, d := range ds {
		start[d.to+1]++
	}
	for i := range c.nodes {
		start[i+1] += start[i]
	}
	out := make([]delivery, len(ds))
	for _, d := range ds {
		out[start[d.to]] = d
		start[d.to]++
	}
	return out
}

// announce has memberlist tell everyone (us included) our metadata.
func (n *simMember) announce(now time.Time) {
	n.inc++
	ev := n.s.event(peer.Alive)
	n.s.member(ev, now)
	n.outbox = append(n.outbox, simMsg{ev: ev, inc: n.inc})
}

// run advances the node's claim as far as it goes at this tick.
func (n *simMember) run(c *simCluster) {
	now := c.now()
	if n.phase == 0 {
		n.announce(now) // joined, no subnet yet
		n.phase, n.crowd, n.until = 1, map[string]bool{}, now.Add(2*c.window)
	}
	if n.phase == 1 {
		if wait := n.s.awaitJoins(n.crowd, c.window, n.until, now); wait > 0 {
			n.wakeAt = c.tick + c.ticks(wait)
			return
		}
		n.pick(c.window, now)
	}
	for n.phase == 2 && n.err == nil {
		if wait := n.s.settleWait(n.settle, now); wait > 0 {
			n.wakeAt = c.tick + c.ticks(wait)
			return
		}
		if _, lost, losers := n.s.contest(now); lost {
			n.crowd = losers
			n.pick(c.window, now)
			continue
		}
		n.s.start(now)
		n.phase = 3
	}
}

func (n *simMember) pick(window time.Duration, now time.Time) {
	if n.rounds++; n.rounds > simMaxRounds {
		n.err = fmt.Errorf("%s: no subnet settled after %d rounds", n.s.cfg.Name, simMaxRounds)
		return
	}
	_, fx, err := n.s.pick(n.crowd, n.rounds == 1, now)
	if err != nil {
		n.err = fmt.Errorf("%s: pick: %w", n.s.cfg.Name, err)
		return
	}
	for _, l := range fx.broadcast {
		n.outbox = append(n.outbox, simMsg{lease: l})
	}
	n.announce(now)
	n.settle = n.s.beginSettle(window, now)
	n.phase = 2
}

// TestThousandMembers starts 1,000 nodes within two seconds, all leasing a
// subnet at once, and checks that they settle on distinct subnets, none is
// told later that it lost its subnet, and every node routes every other to
// its owner.
func TestThousandMembers(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 200 // the race detector costs ~10× time and memory, and the nodes share nothing to race on
	}
	// The heap is the n² member views, nearly all live: collecting at every
	// doubling only rescans them (a third of the time at the default GOGC of 100).
	defer debug.SetGCPercent(debug.SetGCPercent(200))
	c := &simCluster{
		rng: rand.New(rand.NewPCG(1, 2)), step: 10 * time.Millisecond, maxDelay: 50,
		window: 2400 * time.Millisecond, // settleWindow with memberlist's LAN timing at 1,000 members
		due:    map[int][]delivery{},
		inc:    make([]uint32, n*n),
	}
	for i := range n {
		s := simNode(fmt.Sprintf("node-%04d", i), i, func(cfg *Config) { cfg.Network = netip.MustParsePrefix("10.0.0.0/8") })
		c.nodes = append(c.nodes, &simMember{s: s, wakeAt: c.rng.IntN(200)})
	}
	var due []*simMember
	for started := 0; started < n; c.tick++ {
		if c.tick > 100000 {
			t.Fatalf("only %d of %d nodes started after %v", started, n, c.now().Sub(t0))
		}
		c.deliver()
		due = due[:0]
		for _, m := range c.nodes {
			if m.phase < 3 && m.wakeAt == c.tick {
				due = append(due, m)
			}
		}
		parallel(len(due), func(int) bool { return true }, func(lo, hi int) {
			for _, m := range due[lo:hi] {
				m.run(c)
			}
		})
		for _, m := range due {
			if m.err != nil {
				t.Fatal(m.err)
			}
			if m.phase == 3 {
				started++
			}
		}
		c.flush()
	}
	took := c.now().Sub(t0)
	for ; len(c.due) > 0; c.tick++ { // the last claims still travelling
		c.deliver()
	}

	owner := map[netip.Prefix]string{}
	repicked := 0
	for _, m := range c.nodes {
		if o, dup := owner[m.s.own.Subnet]; dup {
			t.Errorf("%s and %s both hold %s", o, m.s.cfg.Name, m.s.own.Subnet)
		}
		owner[m.s.own.Subnet] = m.s.cfg.Name
		if m.rounds > 1 {
			repicked++
		}
	}
	// Every node's table holds the winners' records alone; every tenth
	// node's view is checked in full (a tick costs O(n log n)).
	now := c.now()
	errs := make([]error, n)
	parallel(n, func(int) bool { return true }, func(lo, hi int) {
		for i, m := range c.nodes[lo:hi] {
			errs[lo+i] = m.check(now, owner, (lo+i)%10 == 0)
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d members started in %v of virtual time; %d picked again after losing a contest", n, took, repicked)
}

// check compares the node's table with the owners of the subnets and, in
// full, has it tick: no rival took its subnet, and it routes every other
// node, alive, to the subnet it holds.
func (n *simMember) check(now time.Time, owner map[netip.Prefix]string, full bool) error {
	for name, l := range n.s.leases {
		if l.Released || owner[l.Subnet] != name {
			return fmt.Errorf("%s has %s's lease of %s (released %v), whose owner is %s", n.s.cfg.Name, name, l.Subnet, l.Released, owner[l.Subnet])
		}
	}
	if len(n.s.leases) != len(owner) {
		return fmt.Errorf("%s has %d leases, want %d", n.s.cfg.Name, len(n.s.leases), len(owner))
	}
	if !full {
		return nil
	}
	if fx := n.s.tick(now); fx.lost != nil {
		return fmt.Errorf("%s after start: %w", n.s.cfg.Name, fx.lost)
	}
	if len(n.s.peers) != len(owner)-1 {
		return fmt.Errorf("%s routes %d peers, want %d", n.s.cfg.Name, len(n.s.peers), len(owner)-1)
	}
	for _, p := range n.s.peers {
		if owner[p.Subnet] != p.Name || p.State != peer.Alive {
			return fmt.Errorf("%s routes %s to %s (%s); its owner is %s", n.s.cfg.Name, p.Subnet, p.Name, p.State, owner[p.Subnet])
		}
	}
	return nil
}
