package membership

// Lease safety on the pure state machine: skewed clocks, a cluster-wide
// TTL, and subnets reserved for static peers.

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/peer"
)

// skewed is a node whose clock is off by off from the true time.
type skewed struct {
	s   *leaseState
	off time.Duration
}

func (n skewed) at(t time.Time) time.Time { return t.Add(n.off) }

// exchange has every node merge every other's table, each table sent and
// received at the true time t on the nodes' own clocks.
func exchange(t time.Time, ns ...skewed) {
	for _, to := range ns {
		for _, from := range ns {
			if from.s != to.s {
				to.s.merge(from.s.table(from.at(t)), to.at(t))
			}
		}
	}
}

// Clocks five minutes either side of the true time: no node forgets a gone
// node's lease before LeaseTTL has passed in true time, nor keeps it much
// longer, and a node that joins later with a fast clock and learns the
// lease from a slow one holds it just as long.
func TestClockSkew(t *testing.T) {
	const ttl = time.Hour
	g := simNode("g", 0, func(c *Config) { c.LeaseTTL = ttl })
	var ns []skewed
	for i, off := range []time.Duration{-5 * time.Minute, 0, 5 * time.Minute} {
		ns = append(ns, skewed{simNode(fmt.Sprintf("n%d", i), i+1, func(c *Config) { c.LeaseTTL = ttl }), off})
	}
	slow := ns[0]
	mustPick(t, g, nil, t0)
	for _, n := range ns {
		n.s.member(g.event(peer.Alive), n.at(t0))
		n.s.merge(g.table(t0), n.at(t0))
	}
	exchange(t0, ns...)
	goneAt := t0.Add(10 * time.Minute)
	for _, n := range ns {
		n.s.member(g.event(peer.Dead), n.at(goneAt))
	}
	late := skewed{simNode("late", 9, func(c *Config) { c.LeaseTTL = ttl }), 5 * time.Minute}
	for at := goneAt; !at.After(goneAt.Add(ttl + 2*time.Minute)); at = at.Add(time.Minute) {
		exchange(at, ns...)
		if at.Equal(goneAt.Add(30 * time.Minute)) { // the late node joins: it learns from the slow one
			late.s.merge(slow.s.table(slow.at(at)), late.at(at))
		}
		all := ns
		if at.After(goneAt.Add(30 * time.Minute)) {
			all = append([]skewed{late}, ns...)
		}
		for _, n := range all {
			n.s.tick(n.at(at))
			held := hasLease(n.s, "g")
			switch {
			case at.Before(goneAt.Add(ttl)) && !held:
				t.Fatalf("%s (clock %+v) forgot g's lease %v after g went, before the TTL of %v", n.s.cfg.Name, n.off, at.Sub(goneAt), ttl)
			case at.After(goneAt.Add(ttl+time.Minute)) && held:
				t.Fatalf("%s (clock %+v) still holds g's lease %v after g went", n.s.cfg.Name, n.off, at.Sub(goneAt))
			}
		}
	}
}

// The lease TTL is the cluster's: a node configured otherwise adopts the TTL
// of the member whose claim ranks first, before it claims, and announces
// it; two halves configured differently agree once they meet.
func TestTTLMismatch(t *testing.T) {
	withTTL := func(ttl time.Duration) func(*Config) { return func(c *Config) { c.LeaseTTL = ttl } }
	seed := simNode("seed", 1, withTTL(time.Hour))
	mustPick(t, seed, nil, t0)
	n := simNode("n", 2, withTTL(3*time.Hour))
	connect(t0, seed, n)
	_, fx, err := n.pick(nil, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if n.ttl != time.Hour || !hasNote(fx, "ttl", "seed") || n.event(peer.Alive).meta.LeaseTTL != time.Hour {
		t.Fatalf("n's TTL %v (notes %+v), want the seed's 1h", n.ttl, fx.notes)
	}
	connect(t0, seed, n)
	if fx := seed.tick(t0); seed.ttl != time.Hour || fx.reannounce {
		t.Fatalf("the seed changed its TTL to %v", seed.ttl)
	}
	// n's own setting does not come back when the seed is gone.
	seed.start(t0)
	n.member(seed.event(peer.Dead), t0)
	if n.tick(t0); n.ttl != time.Hour {
		t.Fatalf("n went back to %v when the seed died", n.ttl)
	}

	// Two halves, 2h and 30m: the older claim's TTL wins everywhere.
	a, b := simNode("a", 3, withTTL(2*time.Hour)), simNode("b", 4, withTTL(30*time.Minute))
	mustPick(t, a, nil, t0) // seq 1
	c := simNode("c", 5, withTTL(30*time.Minute))
	connect(t0, b, c)
	mustPick(t, b, nil, t0)
	connect(t0, b, c)
	mustPick(t, c, nil, t0) // seq 2 in b's half
	connect(t0, a, b, c)
	for _, s := range []*leaseState{a, b, c} {
		s.tick(t0)
	}
	for _, s := range []*leaseState{a, b, c} {
		if s.ttl != 2*time.Hour {
			t.Errorf("%s uses %v after the halves met, want a's 2h (its claim ranks first)", s.cfg.Name, s.ttl)
		}
	}
}

// Subnets of static peers are never leased nor routed to a member that
// announces them.
func TestReservedSubnets(t *testing.T) {
	reserved := []netip.Prefix{netip.MustParsePrefix("10.244.1.0/24"), netip.MustParsePrefix("10.244.2.0/23")}
	res := func(c *Config) { c.Reserved = reserved }
	s := simNode("s", 1, res)
	if p := mustPick(t, s, nil, t0); p != netip.MustParsePrefix("10.244.4.0/24") {
		t.Fatalf("picked %s next to reserved %v", p, reserved)
	}
	r := simNode("r", 2, func(c *Config) { res(c); c.Subnet = netip.MustParsePrefix("10.244.3.0/24") })
	connect(t0, s, r)
	_, fx, err := r.pick(nil, true, t0)
	if err != nil || r.own.Subnet == netip.MustParsePrefix("10.244.3.0/24") || !hasNote(fx, "requested taken", reservedName(reserved[1])) {
		t.Fatalf("requested a reserved subnet: got %s (%v), notes %+v", r.own.Subnet, err, fx.notes)
	}
	// A member without the reservation that announces a reserved subnet is
	// rejected as an overlap, not routed.
	o := simNode("o", 3, func(c *Config) { c.Subnet = reserved[0] })
	mustPick(t, o, nil, t0)
	connect(t0, s, o)
	fx = s.tick(t0)
	if _, routed := owners(s)[reserved[0]]; routed || !hasNote(fx, "rejected", "o") {
		t.Fatalf("s routes a reserved subnet: %v, notes %+v", owners(s), fx.notes)
	}
}

// A crowd larger than the network's free subnets over crowdSpread still
// spreads: one subnet per rank, then the first free one.
func TestCrowdSmallNetwork(t *testing.T) {
	small := func(c *Config) { c.Network = netip.MustParsePrefix("10.9.0.0/22") }
	s := simNode("c", 1, small)
	crowd := map[string]bool{"a": true, "b": true}
	if p := mustPick(t, s, crowd, t0); p != netip.MustParsePrefix("10.9.3.0/24") {
		t.Fatalf("rank 2 of a crowd of 3 in a /22 of /24s picked %s, want the third free, 10.9.3.0/24", p)
	}
}
