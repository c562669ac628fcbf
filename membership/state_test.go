package membership

// Tests of the pure lease state machine: no memberlist, no goroutines, an
// injected clock. Nodes are leaseStates; a test delivers member events and
// gossiped records between them by hand (simnet) or with random delays
// (TestThousandMembers).

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/peer"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// simNode builds the state of node name, the i-th of its test, with distinct
// gossip and data endpoints.
func simNode(name string, i int, mod func(*Config)) *leaseState {
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.LeaseTTL = time.Hour
	cfg.DataEndpoint = netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 6081)
	if mod != nil {
		mod(&cfg)
	}
	s := newLeaseState(cfg)
	s.gossip = netip.AddrPortFrom(cfg.DataEndpoint.Addr(), 7946)
	return s
}

// event is what memberlist at another node reports about s in state st.
func (s *leaseState) event(st peer.State) memberEvent {
	md := meta{Version: metaVersion, Name: s.cfg.Name, Network: s.cfg.Network, Endpoint: s.cfg.DataEndpoint,
		Subnet: s.own.Subnet, Seq: s.own.Seq, LeaseTTL: s.ttl}
	if md.Subnet.IsValid() {
		md.Address = md.Subnet.Addr()
	}
	return memberEvent{name: s.cfg.Name, gossip: s.gossip, meta: md, metaOK: true, state: st}
}

// connect has every node of ns learn every other alive (a join, or a
// metadata update) and merge its whole table (a push/pull), at now.
func connect(now time.Time, ns ...*leaseState) {
	for _, to := range ns {
		to.member(to.event(peer.Alive), now) // memberlist lists us too
		for _, from := range ns {
			if from != to {
				to.member(from.event(peer.Alive), now)
			}
		}
	}
	for _, to := range ns {
		for _, from := range ns {
			if from != to {
				to.merge(from.table(now), now)
			}
		}
	}
}

// mustPick claims for s as Start does on its first round.
func mustPick(t *testing.T, s *leaseState, crowd map[string]bool, now time.Time) netip.Prefix {
	t.Helper()
	p, _, err := s.pick(crowd, true, now)
	if err != nil {
		t.Fatalf("%s: pick: %v", s.cfg.Name, err)
	}
	return p
}

// owners maps each subnet to the nodes that s routes to it or holds it.
func owners(s *leaseState) map[netip.Prefix][]string {
	o := map[netip.Prefix][]string{s.own.Subnet: {s.cfg.Name}}
	for _, p := range s.peers {
		if p.State.Routable() {
			o[p.Subnet] = append(o[p.Subnet], p.Name)
		}
	}
	return o
}

// Two claims on one subnet: the lower (Seq, Name) keeps it, on both nodes
// and on a bystander, and the other is told it lost.
func TestContestedSubnet(t *testing.T) {
	want := netip.MustParsePrefix("10.244.9.0/24")
	for _, tc := range []struct {
		name       string
		aSeq, bSeq uint64 // 0: a fresh claim of the requested subnet
		winner     string
	}{
		{"fresh claims tie on seq, the name decides", 0, 0, "a"},
		{"old leases of one seq, the name decides", 4, 4, "a"},
		{"the older lease wins over the name", 5, 3, "b"},
		{"a fresh claim (seq 1) beats an old lease of a later seq", 7, 0, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := func(c *Config) { c.Subnet = want }
			a, b, by := simNode("a", 1, req), simNode("b", 2, req), simNode("by", 3, nil)
			for _, x := range []struct {
				s   *leaseState
				seq uint64
			}{{a, tc.aSeq}, {b, tc.bSeq}} {
				if x.seq != 0 { // restarting with this lease in its file
					x.s.load([]Lease{{Name: x.s.cfg.Name, Subnet: want, Seq: x.seq, Version: 1, LastSeen: t0}}, t0)
				}
			}
			connect(t0, a, b, by)
			mustPick(t, by, nil, t0)
			// a and b claim from the same view: neither sees the other's claim.
			if pa, pb := mustPick(t, a, nil, t0), mustPick(t, b, nil, t0); pa != want || pb != want {
				t.Fatalf("a picked %s, b %s; both should claim %s", pa, pb, want)
			}
			now := t0.Add(time.Second)
			a.start(now)
			b.start(now)
			connect(now, a, b, by)
			loser := map[string]*leaseState{"a": b, "b": a}[tc.winner]
			for _, s := range []*leaseState{a, b} {
				w, lost, _ := s.contest(now)
				if lost != (s == loser) || lost && w.name != tc.winner {
					t.Errorf("%s: contest says lost=%v to %q; want %s to keep %s", s.cfg.Name, lost, w.name, tc.winner, want)
				}
				fx := s.tick(now)
				if s == loser {
					if !errors.Is(fx.lost, ErrSubnetLost) || !hasNote(fx, "lost", tc.winner) {
						t.Errorf("%s: tick lost=%v, notes %+v; want ErrSubnetLost to %s", s.cfg.Name, fx.lost, fx.notes, tc.winner)
					}
					if fx := s.tick(now.Add(time.Second)); fx.lost != nil {
						t.Errorf("%s: the loss was reported twice", s.cfg.Name)
					}
				} else if fx.lost != nil {
					t.Errorf("%s: lost %v, but its claim ranks first", s.cfg.Name, fx.lost)
				}
			}
			fx := by.tick(now)
			if got := owners(by)[want]; len(got) != 1 || got[0] != tc.winner {
				t.Errorf("bystander routes %s to %v, want only %s", want, got, tc.winner)
			}
			if !hasNote(fx, "rejected", loser.cfg.Name) {
				t.Errorf("bystander did not reject %s's overlapping announcement: %+v", loser.cfg.Name, fx.notes)
			}
		})
	}
}

func hasNote(fx effects, event, name string) bool {
	for _, n := range fx.notes {
		if n.event == event && n.name == name {
			return true
		}
	}
	return false
}

// Reservations run on this node's clock: a gone node's lease expires exactly
// LeaseTTL after it was last seen alive, whatever the clock of the node that
// told us (records carry an age); a record of an older version, without an
// age, up to MaxClockSkew later; a tombstone LeaseTTL + MaxClockSkew after the
// release.
func TestExpiry(t *testing.T) {
	const ttl = time.Hour
	for _, tc := range []struct {
		name   string
		arrive func(s, g *leaseState, goneAt time.Time) // how s learns g's lease and loss
		expiry time.Duration                            // after goneAt
	}{
		{"seen alive, then dead", func(s, g *leaseState, goneAt time.Time) {
			connect(t0, s, g)
			s.member(g.event(peer.Dead), goneAt)
		}, ttl},
		{"a record from a peer whose clock runs 10h fast", func(s, g *leaseState, goneAt time.Time) {
			l := g.table(goneAt.Add(10 * time.Hour))
			s.merge(l, goneAt)
		}, ttl},
		{"a record from a peer whose clock runs 20m slow", func(s, g *leaseState, goneAt time.Time) {
			s.merge(g.table(goneAt.Add(-20*time.Minute)), goneAt)
		}, ttl},
		{"a record without an age from a peer whose clock runs 5m slow", func(s, g *leaseState, goneAt time.Time) {
			ls := g.table(goneAt.Add(-5 * time.Minute))
			for i := range ls {
				ls[i].SeenAgo = 0
			}
			s.merge(ls, goneAt)
		}, ttl}, // taken as MaxClockSkew later, but never after now
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, g := simNode("s", 1, nil), simNode("g", 2, func(c *Config) { c.Subnet = netip.MustParsePrefix("10.244.7.0/24") })
			mustPick(t, s, nil, t0)
			mustPick(t, g, nil, t0)
			goneAt := t0.Add(5 * time.Minute)
			tc.arrive(s, g, goneAt)
			s.tick(goneAt)
			expiry := goneAt.Add(tc.expiry)
			if fx := s.tick(expiry.Add(-time.Nanosecond)); !hasLease(s, "g") || hasNote(fx, "expired", "g") {
				t.Fatalf("g's lease is gone before %v", tc.expiry)
			}
			fx := s.tick(expiry)
			if hasLease(s, "g") || !hasNote(fx, "expired", "g") {
				t.Fatalf("g's lease is still reserved %v after it went", tc.expiry)
			}
			if _, ok := s.members["g"]; ok {
				t.Error("g is still listed after its lease expired")
			}
			// Forgotten means forgotten: a copy another node kept does not
			// bring it back.
			var kept []Lease
			for _, l := range g.table(goneAt) {
				l.SeenAgo = 0
				kept = append(kept, aged(l, expiry))
			}
			if n, _ := s.merge(kept, expiry); n != 0 || hasLease(s, "g") {
				t.Error("a stale copy of the expired lease came back")
			}
		})
	}
	t.Run("tombstone", func(t *testing.T) {
		s, g := simNode("s", 1, nil), simNode("g", 2, nil)
		mustPick(t, s, nil, t0)
		connect(t0, s, g)
		mustPick(t, g, nil, t0)
		connect(t0, s, g)
		if _, err := s.release("g", t0); !errors.Is(err, ErrLeaseInUse) {
			t.Fatalf("releasing a live node's lease: %v", err)
		}
		s.member(g.event(peer.Dead), t0)
		at := t0.Add(time.Minute)
		tomb, err := s.release("g", at)
		if err != nil || !tomb.Released || !tomb.ReleasedAt.Equal(at) {
			t.Fatalf("release: %+v, %v", tomb, err)
		}
		if _, err := s.release("g", at); !errors.Is(err, ErrNoLease) {
			t.Errorf("second release: %v", err)
		}
		skew := s.cfg.MaxClockSkew
		s.tick(at.Add(ttl + skew - time.Nanosecond))
		if l, ok := s.leases["g"]; !ok || !l.Released {
			t.Fatal("the tombstone went before LeaseTTL")
		}
		if hasLease(s, "g") {
			t.Fatal("a tombstone counts as a lease")
		}
		// The released subnet is free again for a new node.
		n := simNode("n", 3, nil)
		n.merge(s.table(at), at)
		if p := mustPick(t, n, nil, at); p != tomb.Subnet {
			t.Errorf("a new node picked %s, want the released %s", p, tomb.Subnet)
		}
		s.tick(at.Add(ttl + skew))
		if _, ok := s.leases["g"]; ok {
			t.Error("the tombstone is kept after LeaseTTL")
		}
	})
}

// hasLease: s holds an unreleased lease of name.
func hasLease(s *leaseState, name string) bool {
	l, ok := s.leases[name]
	return ok && !l.Released
}

// Two halves of a partition each hand out the same two subnets; once they
// hear each other, every node agrees on one owner per subnet, the losers are
// told, and after they restart all four have distinct subnets.
func TestPartitionHeal(t *testing.T) {
	a, c := simNode("a", 1, nil), simNode("c", 3, nil)
	b, d := simNode("b", 2, nil), simNode("d", 4, nil)
	for _, half := range [][]*leaseState{{a, c}, {b, d}} {
		connect(t0, half...)
		mustPick(t, half[0], nil, t0)
		connect(t0, half...)
		mustPick(t, half[1], nil, t0)
		connect(t0, half...)
		for _, s := range half {
			s.start(t0)
		}
	}
	if a.own.Subnet != b.own.Subnet || c.own.Subnet != d.own.Subnet {
		t.Fatalf("the halves should have leased the same subnets: a %s b %s c %s d %s", a.own.Subnet, b.own.Subnet, c.own.Subnet, d.own.Subnet)
	}
	heal := t0.Add(time.Hour / 2)
	all := []*leaseState{a, b, c, d}
	connect(heal, all...)
	lost := map[string]bool{}
	for _, s := range all {
		if fx := s.tick(heal); fx.lost != nil {
			lost[s.cfg.Name] = true
		}
	}
	if !lost["b"] || !lost["d"] || len(lost) != 2 {
		t.Fatalf("lost: %v, want b (to a) and d (to c)", lost)
	}
	for _, s := range []*leaseState{a, c} {
		o := owners(s)
		if got := o[a.own.Subnet]; len(got) != 1 || got[0] != "a" {
			t.Errorf("%s: %s is %v's, want a's", s.cfg.Name, a.own.Subnet, got)
		}
		if got := o[c.own.Subnet]; len(got) != 1 || got[0] != "c" {
			t.Errorf("%s: %s is %v's, want c's", s.cfg.Name, c.own.Subnet, got)
		}
	}
	// The losers exit and restart with their lease files, one after the
	// other; each takes a free subnet.
	now := heal.Add(time.Minute)
	for _, s := range []*leaseState{a, c} {
		s.member(b.event(peer.Dead), now)
		s.member(d.event(peer.Dead), now)
	}
	all = []*leaseState{a, c}
	for i, old := range []*leaseState{b, d} {
		s := simNode(old.cfg.Name, 10+i, nil)
		s.load(old.table(now), now)
		all = append(all, s)
		connect(now, all...)
		if p := mustPick(t, s, nil, now); p == old.own.Subnet {
			t.Fatalf("%s took its lost subnet %s again", s.cfg.Name, p)
		}
		s.start(now)
		now = now.Add(time.Minute)
	}
	connect(now, all...)
	for _, s := range all {
		if fx := s.tick(now); fx.lost != nil {
			t.Errorf("%s: %v", s.cfg.Name, fx.lost)
		}
		o := owners(s)
		if len(o) != 4 {
			t.Errorf("%s sees %d subnets, want 4: %v", s.cfg.Name, len(o), o)
		}
		for p, names := range o {
			if len(names) != 1 {
				t.Errorf("%s: %s is held by %v", s.cfg.Name, p, names)
			}
		}
	}
}

// A settle that still waits for members without a subnet after
// silentAfter windows names their gossip addresses once, to be asked
// directly; members that announced meanwhile, and a second look, name none.
func TestStillSilent(t *testing.T) {
	a, b, c := simNode("a", 1, nil), simNode("b", 2, nil), simNode("c", 3, nil)
	connect(t0, a, b, c) // b and c have no subnet yet
	mustPick(t, a, map[string]bool{"b": true, "c": true}, t0)
	const window = time.Second
	st := a.beginSettle(window, t0)
	if got := a.stillSilent(st, t0.Add(window)); got != nil {
		t.Fatalf("after one window: %v, want nobody asked yet", got)
	}
	mustPick(t, c, nil, t0)
	a.member(c.event(peer.Alive), t0.Add(window)) // c's announcement arrives; b's does not
	a.settleWait(st, t0.Add(silentAfter*window))
	got := a.stillSilent(st, t0.Add(silentAfter*window))
	if want := []string{b.gossip.String()}; !slices.Equal(got, want) {
		t.Fatalf("after %d windows: %v, want %v (b, still silent)", silentAfter, got, want)
	}
	if got := a.stillSilent(st, t0.Add(3*window)); got != nil {
		t.Fatalf("asked again: %v", got)
	}
}
