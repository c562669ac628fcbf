package membership

// Claiming a subnet at start, against nodes that may be claiming at the same
// moment. The cluster's claims (lease records and what members announce) are
// indexed by prefix; a contested subnet stays with the lower (Seq, Name).
//
// A crowd of nodes starting together is the hard case: each would pick the
// same first free subnet. So a node first waits for the joins around it to
// quiet down (awaitJoins), then treats the other nodes that had no subnet
// yet, its crowd, as equals: it ignores their fresh claims when looking for a
// free subnet, takes the claim order one above everything else, and takes
// one of the crowdSpread free subnets that its rank by name in the crowd
// owns, by a hash of its name. Nodes that see the same crowd thus pick
// distinct subnets; when views differ, two nodes of one rank still collide
// only once in crowdSpread, and the contest falls to the name, the same way
// on every run. After a claim
// it waits for the crowd's claims to arrive (settle) and picks again if one
// beats it (contest).
//
// These are methods of the pure leaseState: each says how long to wait or
// what to claim as of now; the driver (Membership.claim) does the waiting.

import (
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/peer"
)

// crowdSpread is how many free subnets each rank in a crowd picks among.
const crowdSpread = 4

// spreadHash mixes a node's name and its pick count (FNV-1a).
func spreadHash(name string, pick int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return (h ^ uint64(pick)) * 1099511628211
}

// awaitJoins adds to crowd the live members that have no subnet yet (true
// for those that had no lease either: contestants) and returns how long to
// wait still for joins to quiet down: until no member has appeared for half
// a settle window, at most until deadline; 0 when done or nobody is joining.
func (s *leaseState) awaitJoins(crowd map[string]bool, window time.Duration, deadline, now time.Time) time.Duration {
	for name, mb := range s.members {
		if _, seen := crowd[name]; !seen && name != s.cfg.Name && mb.state == peer.Alive && !mb.meta.Subnet.IsValid() {
			l, leased := s.leases[name]
			crowd[name] = !leased || l.Released // a node that comes back for its lease is no contestant
		}
	}
	wait := s.membersChanged.Add(window / 2).Sub(now)
	if len(crowd) == 0 || wait <= 0 || !now.Before(deadline) {
		return 0
	}
	return min(wait, deadline.Sub(now))
}

// settling is one wait for competing claims after a pick.
type settling struct {
	start, waitUntil, deadline time.Time
	window                     time.Duration
	pending                    []string // members that had no subnet yet when we claimed
	asked                      bool     // stillSilent returned them once
}

// beginSettle starts waiting for competing claims to our claim made at now.
func (s *leaseState) beginSettle(window time.Duration, now time.Time) *settling {
	const maxWait, maxChurn = 10, 30
	st := &settling{start: now, window: window, waitUntil: now.Add(maxWait * window), deadline: now.Add(maxChurn * window)}
	for name, mb := range s.members {
		if name != s.cfg.Name && mb.state == peer.Alive && !mb.meta.Subnet.IsValid() {
			st.pending = append(st.pending, name)
		}
	}
	return st
}

// settleWait returns how long to wait still for competing claims; 0: they
// are in. That is until a window has passed since our claim and since any
// claim or member anywhere last appeared or changed, every member that had
// no subnet yet when we claimed has announced one, and every rival
// announcement is backed by its lease record (for at most maxWait windows);
// at most maxChurn windows in all, while claims keep changing.
func (s *leaseState) settleWait(st *settling, now time.Time) time.Duration {
	quiet := s.claimsChanged
	if s.membersChanged.After(quiet) {
		quiet = s.membersChanged
	}
	st.pending = slices.DeleteFunc(st.pending, func(name string) bool {
		mb := s.members[name]
		return mb == nil || mb.state != peer.Alive || mb.meta.Subnet.IsValid()
	})
	waiting := len(st.pending) > 0
	for name, mb := range s.members { // a rival whose lease record is still on its way
		waiting = waiting || name != s.cfg.Name && mb.state == peer.Alive &&
			mb.meta.Subnet.Overlaps(s.own.Subnet) && s.announced(mb).seq == noSeq
	}
	if quiet.Before(st.start) {
		quiet = st.start
	}
	wait := quiet.Add(st.window).Sub(now)
	if waiting && now.Before(st.waitUntil) {
		wait = max(wait, st.window/10)
	}
	if wait <= 0 || !now.Before(st.deadline) {
		return 0
	}
	return min(wait, st.deadline.Sub(now))
}

// silentAfter is how many windows a settle waits for members that announce
// no subnet before it asks them directly (stillSilent).
const silentAfter = 2

// stillSilent returns, once per settle, the gossip addresses of the members
// it still waits for after silentAfter windows. Their claim's announcement
// may have reached nobody (memberlist sends it to a few random members a
// few times, and a starved or lossy network can drop every copy); a
// push/pull with each brings what they announce now, where waiting would
// last until the settle's cap or the next periodic push/pull.
func (s *leaseState) stillSilent(st *settling, now time.Time) []string {
	if st.asked || len(st.pending) == 0 || now.Sub(st.start) < silentAfter*st.window {
		return nil
	}
	st.asked = true
	var out []string
	for _, name := range st.pending {
		if mb := s.members[name]; mb != nil && mb.gossip.IsValid() {
			out = append(out, mb.gossip.String())
		}
	}
	return out
}

// contest checks our settled claim: whether a rival's claim ranks first,
// and if so which nodes lost a contest of this round, who pick again as a
// crowd.
func (s *leaseState) contest(now time.Time) (winner claim, lost bool, losers map[string]bool) {
	cs := s.claims(now, nil)
	winner, lost = cs.winner(claim{name: s.cfg.Name, subnet: s.own.Subnet, seq: s.own.Seq})
	if !lost {
		return winner, false, nil
	}
	losers = map[string]bool{}
	for _, c := range cs.all() {
		if _, l := cs.winner(c); l && c.name != s.cfg.Name {
			losers[c.name] = true
		}
	}
	return winner, lost, losers
}

// pick chooses and records our claim, which fx gossips: on the first pick
// the requested subnet, else our old lease; else a free one. crowd are the
// nodes picking with us (true: contestants, whose fresh claims do not count).
func (s *leaseState) pick(crowd map[string]bool, first bool, now time.Time) (netip.Prefix, effects, error) {
	var fx effects
	if !s.own.Subnet.IsValid() { // the cluster's TTL, before our claim can rank first
		s.adoptTTL(&fx)
	}
	var base uint64 // the highest claim order outside the crowd's fresh claims
	for name, l := range s.leases {
		if !crowd[name] {
			base = max(base, l.Seq)
		}
	}
	base = max(base, s.own.Seq)
	fresh := func(c claim) bool { return crowd[c.name] && c.seq > base }
	cs := s.claims(now, fresh)
	name := s.cfg.Name
	old, haveOld := s.leases[name]
	if s.own.Subnet.IsValid() {
		old, haveOld = s.own, true
	}
	var subnet netip.Prefix
	keepSeq := false
	if first && s.cfg.Subnet.IsValid() {
		if o, busy := cs.taken(name, s.cfg.Subnet); busy {
			fx.notes = append(fx.notes, note{event: "requested taken", name: o.name, subnet: s.cfg.Subnet})
		} else {
			subnet = s.cfg.Subnet
			keepSeq = haveOld && !old.Released && old.Subnet == subnet
		}
	}
	if !subnet.IsValid() && first && haveOld && !old.Released {
		if o, busy := cs.taken(name, old.Subnet); busy {
			fx.notes = append(fx.notes, note{event: "previous taken", name: o.name, subnet: old.Subnet})
		} else {
			subnet, keepSeq = old.Subnet, true
		}
	}
	if !subnet.IsValid() {
		rank, contestants := 0, 0
		for n, contestant := range crowd {
			if contestant {
				contestants++
				if n < name {
					rank++
				}
			}
		}
		skip := 0
		if contestants > 0 {
			// Each rank owns crowdSpread free subnets and takes one of them
			// by a hash of its name and pick: where two nodes' views of the
			// crowd differ and give them one rank, they still collide only
			// once in crowdSpread.
			skip = rank*crowdSpread + int(spreadHash(name, s.picks)%crowdSpread)
		}
		s.picks++
		p, err := pickFree(s.cfg.Network, s.cfg.SubnetLen, name, cs, skip)
		// A small network may not have crowdSpread free subnets per rank:
		// then one per rank, then the first free one.
		for _, fallback := range []int{rank, 0} {
			if err == nil || fallback >= skip {
				break
			}
			skip = fallback
			p, err = pickFree(s.cfg.Network, s.cfg.SubnetLen, name, cs, skip)
		}
		if err != nil {
			return netip.Prefix{}, fx, err
		}
		subnet = p
	}
	l := Lease{
		Name: name, Subnet: subnet, Seq: old.Seq, Gossip: s.gossip, Endpoint: s.cfg.DataEndpoint,
		LastSeen: now, Version: max(old.Version, s.leases[name].Version) + 1,
	}
	if !keepSeq {
		l.Seq = base + 1
	}
	s.own = l
	s.leases[name] = l
	s.tableDirty, s.rebuild = true, true
	fx.broadcast = append(fx.broadcast, aged(l, now))
	return subnet, fx, nil
}

// reservedName names the claim of a reserved subnet; node names have no
// spaces, so it is never a node's.
func reservedName(p netip.Prefix) string { return "--peer " + p.String() }

// announced is the claim a live member announces. Its metadata carries
// subnet and claim order together, so every node ranks a contest from the
// same values, once the member's lease record has arrived to back them.
func (s *leaseState) announced(mb *member) claim {
	c := claim{name: mb.name, subnet: mb.meta.Subnet, seq: noSeq}
	if l, ok := s.leases[mb.name]; ok && !l.Released && l.Subnet == c.subnet && l.Seq == mb.meta.Seq {
		c.seq = l.Seq
	}
	return c
}

// claims indexes every claim on address space, but those ignore reports:
// our own, what live members announce, and the unreleased lease records, of
// gone nodes while reserved. A live member's record and announcement travel
// separately, so where they differ both count until the later one arrives.
func (s *leaseState) claims(now time.Time, ignore func(claim) bool) *claims {
	cs := &claims{}
	add := func(c claim) {
		if ignore == nil || !ignore(c) {
			cs.add(c)
		}
	}
	for name, mb := range s.members {
		if name != s.cfg.Name && mb.state == peer.Alive && mb.meta.Subnet.IsValid() {
			add(s.announced(mb))
		}
	}
	for name, l := range s.leases {
		if name == s.cfg.Name || l.Released {
			continue
		}
		mb, live := s.members[name], s.liveMember(name)
		if live && mb.meta.Subnet == l.Subnet && mb.meta.Seq == l.Seq || !live && s.expired(l, now) {
			continue // announced, or forgotten
		}
		add(claim{name: name, subnet: l.Subnet, seq: l.Seq})
	}
	if s.own.Subnet.IsValid() {
		cs.add(claim{name: s.cfg.Name, subnet: s.own.Subnet, seq: s.own.Seq})
	}
	for _, p := range s.cfg.Reserved { // static peers rank before every lease
		cs.add(claim{name: reservedName(p), subnet: p, seq: 0})
	}
	return cs
}
