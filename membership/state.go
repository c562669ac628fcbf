package membership

// The lease state machine: one node's lease table and view of the members,
// and every decision made from them. It is pure: events and the time they
// happen at go in (a member joined, records arrived, a tick), decisions come
// out as effects (gossip this record, log this, save this table, publish
// this peer set, our subnet is lost). It calls no memberlist, starts no
// goroutine, reads no clock and touches no file, so tests drive thousands of
// nodes, skewed clocks and partitions in one process (state_test.go).
//
// The driver (Membership) owns one leaseState under its mutex and connects
// it to memberlist's callbacks, the wall clock and the lease file. The claim
// at start is in claim.go; records, merges and ranks in lease.go.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/weftnet/weft/peer"
)

const (
	saveEvery  = 2 * time.Second // the lease file is written at most this often while it changes…
	saveAnyway = time.Minute     // …and at least this often, for LastSeen
)

// leaseState is not safe for concurrent use; the driver serialises calls.
type leaseState struct {
	// cfg is read for Name, Network, SubnetLen, Subnet, DataEndpoint,
	// LeaseTTL, MaxClockSkew and Reserved.
	cfg Config
	// ttl is the lease TTL in force: the cluster's (adoptTTL), at first ours.
	ttl time.Duration
	// gossip is our gossip address, once memberlist listens; it goes into our record.
	gossip netip.AddrPort

	leases         map[string]Lease
	own            Lease              // our record; zero Subnet until pick
	picks          int                // picks made, to vary the spread of each
	started        bool               // the claim settled: a lost contest now ends the node
	lost           bool               // the loss of our subnet was reported
	reassert       uint64             // a record of our name at this version contradicts ours
	members        map[string]*member // ours included
	live           int                // members but us that memberlist counts alive
	rebuild        bool               // the peer set must be recomputed
	tableDirty     bool               // the table changed since the last save
	lastSave       time.Time
	claimsChanged  time.Time   // when a claim anywhere last appeared or changed
	membersChanged time.Time   // when a member last appeared
	peers          []peer.Info // published; never modified once published
	overlapping    map[string]netip.Prefix
}

// member is one member as memberlist last reported it.
type member struct {
	name   string
	gossip netip.AddrPort
	meta   meta
	state  peer.State // alive, dead or left
	since  time.Time  // of the last state change
	heard  time.Time  // last direct contact: an event about it or an answered probe
}

// effects are the decisions of one event, for the driver to carry out.
type effects struct {
	notes      []note      // log lines; "rejected" ones are also counted in Stats
	broadcast  []Lease     // records to gossip
	lost       error       // set once: a claim that ranks first took our subnet (ErrSubnetLost)
	publish    bool        // peers is a new peer set for Run
	reannounce bool        // our metadata changed (the TTL in force): announce it
	peers      []peer.Info // never modified once returned
	save       []Lease     // the table to write to the lease file, if not nil
}

func (fx *effects) reject(r reason, name string, err error) {
	fx.notes = append(fx.notes, note{event: "rejected", name: name, reason: r, err: err})
}

// memberEvent is what memberlist reported about one member (us included).
type memberEvent struct {
	name   string
	gossip netip.AddrPort
	meta   meta
	metaOK bool       // meta parsed; otherwise the member keeps its last good one
	state  peer.State // Alive (joined or updated) or Dead (died or left: the leaving flag says which)
}

func newLeaseState(cfg Config) *leaseState {
	return &leaseState{
		cfg:         cfg,
		ttl:         cfg.LeaseTTL,
		leases:      map[string]Lease{},
		members:     map[string]*member{},
		overlapping: map[string]netip.Prefix{},
	}
}

// load takes the records of the lease file, read at now; it returns why it
// ignored any.
func (s *leaseState) load(ls []Lease, now time.Time) []error {
	var ignored []error
	for _, l := range ls {
		if err := checkLease(l, s.cfg.Network); err != nil {
			ignored = append(ignored, err)
			continue
		}
		// The file is on our clock; SeenAgo there is stale.
		l.SeenAgo = 0
		if l.LastSeen.After(now) {
			l.LastSeen = now
		}
		if l.ReleasedAt.After(now) {
			l.ReleasedAt = now
		}
		if l.Name != s.cfg.Name && s.expired(l, now) {
			continue
		}
		cur, have := s.leases[l.Name]
		s.leases[l.Name], _ = mergeLease(cur, have, l)
	}
	return ignored
}

// member records a member event.
func (s *leaseState) member(ev memberEvent, now time.Time) effects {
	var fx effects
	self := ev.name == s.cfg.Name
	mb := s.members[ev.name]
	if mb == nil {
		mb = &member{name: ev.name}
		s.members[ev.name] = mb
		s.membersChanged = now
	}
	if ev.metaOK {
		md := ev.meta
		if md.Subnet != mb.meta.Subnet || md.Seq != mb.meta.Seq {
			s.claimsChanged = now
		}
		if md.Subnet.IsValid() && md.Subnet != mb.meta.Subnet && mb.state == peer.Alive && ev.state == peer.Alive && !self {
			fx.notes = append(fx.notes, note{event: "leased", name: ev.name, subnet: md.Subnet, endpoint: md.Endpoint})
		}
		mb.meta = md
	}
	mb.gossip = ev.gossip
	state := ev.state
	if state == peer.Dead && mb.meta.Flags&flagLeaving != 0 {
		state = peer.Left
	}
	if mb.state != state {
		switch {
		case self || (mb.state == peer.Alive) == (state == peer.Alive):
		case state == peer.Alive:
			s.live++
		default:
			s.live--
		}
		mb.state, mb.since = state, now
		if !self {
			fx.notes = append(fx.notes, note{event: string(state), name: ev.name, subnet: mb.meta.Subnet, endpoint: mb.meta.Endpoint})
		}
	}
	// News that a member died is not contact with it: its last contact
	// stays when it was last heard, so a crash is not mistaken for a live
	// peer behind a firewall (node's path reasons compare the two).
	if state != peer.Dead {
		mb.heard = now
	}
	if l, ok := s.leases[ev.name]; ok && !self {
		l.LastSeen = now // alive now, or last seen alive now
		s.leases[ev.name] = l
	}
	s.rebuild = true
	return fx
}

// heard records that one of our probes of name was answered.
func (s *leaseState) heard(name string, now time.Time) {
	if mb := s.members[name]; mb != nil {
		mb.heard = now
	}
}

// merge takes records from the network, dropping invalid ones and ones
// already forgotten here; it returns how many changed the table.
func (s *leaseState) merge(ls []Lease, now time.Time) (int, effects) {
	var fx effects
	changed := 0
	for _, l := range ls {
		if err := checkLease(l, s.cfg.Network); err != nil {
			fx.reject(reasonBadLease, l.Name, err)
			continue
		}
		l = s.onOurClock(l, now)
		if l.Name == s.cfg.Name && s.own.Subnet.IsValid() {
			// Ours: the next tick re-asserts our record if this beats it.
			if l.Version >= s.own.Version && !sameContent(l, s.own) {
				s.reassert = max(s.reassert, l.Version)
			}
			continue
		}
		if !s.liveMember(l.Name) && s.expired(l, now) {
			continue // forgotten here; do not bring it back
		}
		cur, have := s.leases[l.Name]
		next, diff := mergeLease(cur, have, l)
		s.leases[l.Name] = next
		if diff {
			changed++
		}
	}
	if changed > 0 {
		s.tableDirty, s.rebuild = true, true
		s.claimsChanged = now
	}
	return changed, fx
}

// onOurClock converts the times of a record from another node to our clock:
// LastSeen is now minus its age; a record without an age (an older
// version) counts as seen MaxClockSkew later than it says, so a clock
// behind ours cannot make us forget a reservation early. Neither time may
// lie ahead of now: a fast clock must not extend reservations.
func (s *leaseState) onOurClock(l Lease, now time.Time) Lease {
	switch {
	case l.SeenAgo > 0:
		l.LastSeen = now.Add(1 - l.SeenAgo)
	case !l.LastSeen.IsZero():
		l.LastSeen = l.LastSeen.Add(s.cfg.MaxClockSkew)
	}
	l.SeenAgo = 0
	if l.LastSeen.After(now) {
		l.LastSeen = now
	}
	if l.ReleasedAt.After(now) {
		l.ReleasedAt = now
	}
	return l
}

// expired says whether the record of an owner that is not alive can be
// forgotten, with the TTL in force.
func (s *leaseState) expired(l Lease, now time.Time) bool {
	return expired(l, now, s.ttl, s.cfg.MaxClockSkew)
}

// adoptTTL makes the TTL in force that of the member whose claim ranks
// first among the live ones that announce a TTL, us included once we hold
// a subnet (we announce the TTL in force, not our own setting, so the
// value survives the member that set it). Every node ranks the same claims
// the same way, so the cluster agrees on one TTL.
func (s *leaseState) adoptTTL(fx *effects) {
	best, ttl := claim{seq: noSeq}, time.Duration(0)
	if s.own.Subnet.IsValid() {
		best, ttl = claim{name: s.cfg.Name, subnet: s.own.Subnet, seq: s.own.Seq}, s.ttl
	}
	for name, mb := range s.members {
		if name == s.cfg.Name || mb.state != peer.Alive || mb.meta.LeaseTTL <= 0 || !mb.meta.Subnet.IsValid() {
			continue
		}
		if c := s.announced(mb); c.seq != noSeq && c.beats(best) {
			best, ttl = c, mb.meta.LeaseTTL
		}
	}
	if ttl <= 0 || ttl == s.ttl {
		return
	}
	s.ttl = ttl
	fx.reannounce, s.rebuild = true, true
	fx.notes = append(fx.notes, note{event: "ttl", name: best.name, ttl: ttl})
}

// tick is the periodic pass (and the one after events): it keeps LastSeen of
// live owners current, forgets expired leases and tombstones, re-asserts our
// record, checks that no rival claim beats our subnet, rebuilds the peer set
// and decides whether to save the table.
func (s *leaseState) tick(now time.Time) effects {
	var fx effects
	self := s.cfg.Name
	s.adoptTTL(&fx)
	for name, mb := range s.members {
		if mb.state != peer.Alive || name == self {
			continue
		}
		if l, ok := s.leases[name]; ok {
			l.LastSeen = now
			s.leases[name] = l
		}
	}
	for name, l := range s.leases {
		if name == self || s.liveMember(name) || !s.expired(l, now) {
			continue
		}
		delete(s.leases, name)
		s.tableDirty, s.rebuild = true, true
		if !l.Released {
			fx.notes = append(fx.notes, note{event: "expired", name: name, subnet: l.Subnet})
		}
	}
	for name, mb := range s.members {
		// A gone member stays listed while its lease is reserved.
		if l, ok := s.leases[name]; mb.state != peer.Alive && name != self && (!ok || l.Released) {
			delete(s.members, name)
			delete(s.overlapping, name)
		}
	}
	if s.own.Subnet.IsValid() {
		if s.reassert != 0 && s.reassert >= s.own.Version {
			s.own.Version = s.reassert + 1
			s.own.LastSeen = now
			fx.broadcast = append(fx.broadcast, aged(s.own, now))
			s.tableDirty = true
		}
		s.reassert = 0
		s.own.LastSeen = now
		s.leases[self] = s.own
	}
	if s.rebuild { // claims or members changed
		s.rebuild = false
		cs := s.claims(now, nil)
		if s.started && !s.lost {
			own := claim{name: self, subnet: s.own.Subnet, seq: s.own.Seq}
			if w, lost := cs.winner(own); lost {
				s.lost = true
				fx.lost = fmt.Errorf("%w: %q's claim on %s (claim order %d) ranks before ours on %s (%d)",
					ErrSubnetLost, w.name, w.subnet, w.seq, own.subnet, own.seq)
				fx.notes = append(fx.notes, note{event: "lost", name: w.name, subnet: own.subnet, err: fx.lost})
			}
		}
		if ps := s.buildPeers(cs, &fx); !samePeers(ps, s.peers) {
			s.peers, fx.peers, fx.publish = ps, ps, true
		}
	}
	if s.started && (s.tableDirty && now.Sub(s.lastSave) >= saveEvery || now.Sub(s.lastSave) >= saveAnyway) {
		fx.save = s.table(now)
		s.tableDirty, s.lastSave = false, now
	}
	return fx
}

// start marks the claim settled and returns the table to save now.
func (s *leaseState) start(now time.Time) []Lease {
	s.started = true
	s.tableDirty, s.lastSave = false, now
	return s.table(now)
}

// reopen lets the driver claim again after our subnet was lost (Reclaim):
// the lost claim stays our record until the next pick replaces it.
func (s *leaseState) reopen() { s.started, s.lost = false, false }

// buildPeers returns the peer set: live members that announce a subnet no
// better claim overlaps, one per data endpoint, plus gone (dead, left)
// members for display, sorted by name.
func (s *leaseState) buildPeers(cs *claims, fx *effects) []peer.Info {
	type cand struct {
		mb *member
		c  claim
	}
	var cands []cand
	for name, mb := range s.members {
		if name == s.cfg.Name || mb.state != peer.Alive || !mb.meta.Subnet.IsValid() ||
			insideNetwork(mb.meta.Subnet, s.cfg.Network) != nil { // screened by NotifyAlive already
			continue
		}
		c := s.announced(mb)
		if w, lost := cs.winner(c); lost {
			if s.overlapping[name] != c.subnet { // count each offending announcement once
				s.overlapping[name] = c.subnet
				fx.reject(reasonOverlap, name, fmt.Errorf("subnet %s overlaps %q's %s, whose claim ranks first", c.subnet, w.name, w.subnet))
			}
			continue
		}
		delete(s.overlapping, name)
		if s.own.Subnet.IsValid() && c.subnet.Overlaps(s.own.Subnet) {
			continue // it beat us: the driver reports ErrSubnetLost
		}
		cands = append(cands, cand{mb, c})
	}
	// Of two members claiming one endpoint, the earlier claim keeps it.
	slices.SortFunc(cands, func(a, b cand) int {
		switch {
		case a.c.beats(b.c):
			return -1
		case b.c.beats(a.c):
			return 1
		}
		return 0
	})
	endpoints := map[netip.AddrPort]string{s.cfg.DataEndpoint: s.cfg.Name}
	ps := make([]peer.Info, 0, len(cands))
	for _, c := range cands {
		md := c.mb.meta
		if o, dup := endpoints[md.Endpoint]; dup {
			fx.reject(reasonDuplicateEndpoint, c.c.name, fmt.Errorf("endpoint %s is %q's", md.Endpoint, o))
			continue
		}
		endpoints[md.Endpoint] = c.c.name
		ps = append(ps, peer.Info{Name: c.c.name, Subnet: md.Subnet, Subnet6: md.Subnet6, Endpoint: md.Endpoint, State: peer.Alive, LastSeen: c.mb.heard})
	}
	// Gone members ride along so status can show them; the node routes
	// only alive peers.
	for name, mb := range s.members {
		if name != s.cfg.Name && (mb.state == peer.Dead || mb.state == peer.Left) && mb.meta.Subnet.IsValid() {
			ps = append(ps, peer.Info{Name: name, Subnet: mb.meta.Subnet, Subnet6: mb.meta.Subnet6, Endpoint: mb.meta.Endpoint, State: mb.state, LastSeen: mb.heard})
		}
	}
	slices.SortFunc(ps, func(a, b peer.Info) int { return strings.Compare(a.Name, b.Name) })
	return ps
}

func samePeers(a, b []peer.Info) bool { return slices.Equal(a, b) }

// table returns the table to share, with our own record and LastSeen of
// live owners brought up to now, sorted by name.
func (s *leaseState) table(now time.Time) []Lease {
	ls := make([]Lease, 0, len(s.leases)+1)
	for name, l := range s.leases {
		if name == s.cfg.Name {
			continue
		}
		if s.liveMember(name) {
			l.LastSeen = now
		}
		ls = append(ls, aged(l, now))
	}
	if s.own.Subnet.IsValid() {
		own := s.own
		own.LastSeen = now
		ls = append(ls, aged(own, now))
	}
	slices.SortFunc(ls, func(a, b Lease) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// release turns the lease of a gone node into a tombstone, which it returns
// to gossip.
func (s *leaseState) release(name string, now time.Time) (Lease, error) {
	if name == s.cfg.Name || s.liveMember(name) {
		return Lease{}, fmt.Errorf("release %q: %w; stop that node first or wait until it is declared failed", name, ErrLeaseInUse)
	}
	l, ok := s.leases[name]
	if !ok || l.Released {
		return Lease{}, fmt.Errorf("release %q: %w", name, ErrNoLease)
	}
	l.Released, l.ReleasedAt = true, now
	l.Version++
	s.leases[name] = l
	s.tableDirty, s.rebuild = true, true
	return aged(l, now), nil
}

// liveMember reports whether memberlist counts the named node alive.
func (s *leaseState) liveMember(name string) bool {
	mb := s.members[name]
	return mb != nil && mb.state == peer.Alive
}

// endpointTwin returns the first (by name) live member other than us that
// announces our data endpoint or gossips from our gossip address, and that
// address.
func (s *leaseState) endpointTwin() (name string, ep netip.AddrPort, ok bool) {
	for _, n := range slices.Sorted(maps.Keys(s.members)) {
		mb := s.members[n]
		if n == s.cfg.Name || mb.state != peer.Alive {
			continue
		}
		switch {
		case mb.meta.Endpoint == s.cfg.DataEndpoint:
			return n, mb.meta.Endpoint, true
		case s.gossip.IsValid() && mb.gossip == s.gossip:
			return n, mb.gossip, true
		}
	}
	return "", netip.AddrPort{}, false
}

// previousRun returns the gossip address our own name's lease record holds
// when it is not ours: our previous run, or a copy of this node.
func (s *leaseState) previousRun() netip.AddrPort {
	if l, ok := s.leases[s.cfg.Name]; ok && !l.Released && l.Gossip.IsValid() && l.Gossip != s.gossip {
		return l.Gossip
	}
	return netip.AddrPort{}
}

// goneHolders returns the gossip addresses of live members and of gone
// members that still hold a lease (where a healed partition's other half is).
func (s *leaseState) goneHolders() (live map[netip.AddrPort]bool, gone []string) {
	live = map[netip.AddrPort]bool{}
	for name, mb := range s.members {
		if mb.state == peer.Alive && name != s.cfg.Name {
			live[mb.gossip] = true
		}
	}
	for name, l := range s.leases {
		if name != s.cfg.Name && !l.Released && !s.liveMember(name) && l.Gossip.IsValid() && l.Gossip != s.gossip && !live[l.Gossip] {
			gone = append(gone, l.Gossip.String())
		}
	}
	return live, gone
}

// memberStatus lists the other members, sorted by name.
func (s *leaseState) memberStatus() []MemberStatus {
	out := make([]MemberStatus, 0, len(s.members))
	for name, mb := range s.members {
		if name == s.cfg.Name {
			continue
		}
		out = append(out, MemberStatus{Name: name, Endpoint: mb.meta.Endpoint, Gossip: mb.gossip,
			Subnet: mb.meta.Subnet, State: mb.state, LastSeen: mb.heard})
	}
	slices.SortFunc(out, func(a, b MemberStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// lastHeard returns when we last heard from the member name.
func (s *leaseState) lastHeard(name string) (time.Time, bool) {
	mb, ok := s.members[name]
	if !ok {
		return time.Time{}, false
	}
	return mb.heard, true
}
