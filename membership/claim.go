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
// the free subnet whose position is its rank by name in the crowd. Nodes that
// see the same crowd thus pick distinct subnets, and when views differ, the
// contest still falls to the name, the same way on every run. After a claim
// it waits for the crowd's claims to arrive (settle) and picks again if one
// beats it.

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/peer"
)

// settleWindow is SettleWindow, but at least as long as memberlist takes to
// finish sending a broadcast in a cluster of this size (RetransmitMult ×
// ⌈log10(n+1)⌉ gossip intervals), by when a claim has reached every node.
func (m *Membership) settleWindow() time.Duration {
	n := float64(m.liveOthers.Load() + 2)
	spread := time.Duration(m.retransmitMult) * time.Duration(math.Ceil(math.Log10(n))) * m.gossipInterval
	return max(m.cfg.SettleWindow, spread)
}

// maxClaimRounds bounds how often Start picks again after losing a contest;
// each round settles at least the winner of every contested subnet.
const maxClaimRounds = 32

// claim leases a subnet and settles it against concurrent claims.
func (m *Membership) claim(ctx context.Context) (netip.Prefix, error) {
	crowd, err := m.awaitJoins(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	for round := 1; round <= maxClaimRounds; round++ {
		m.rounds = round
		subnet, err := m.pick(crowd, round == 1)
		if err != nil {
			return netip.Prefix{}, err
		}
		// Queue the announcement; settle waits for it to spread.
		m.ml.UpdateNode(time.Millisecond)
		if len(m.seeds) == 0 && m.liveOthers.Load() == 0 {
			return subnet, nil // the first node: nobody to contend with
		}
		if err := m.settle(ctx); err != nil {
			return netip.Prefix{}, fmt.Errorf("settling subnet %s: %w", subnet, err)
		}
		m.mu.Lock()
		cs := m.claimsLocked(time.Now(), nil)
		w, lost := cs.winner(claim{name: m.cfg.Name, subnet: subnet, seq: m.own.Seq})
		// Every loser of this round's contests picks again; they rank
		// themselves among each other as the crowd did.
		crowd = map[string]bool{}
		for _, c := range cs.all() {
			if _, l := cs.winner(c); l && c.name != m.cfg.Name {
				crowd[c.name] = true
			}
		}
		m.mu.Unlock()
		if !lost {
			return subnet, nil
		}
		m.log.Info("another node's claim ranks first; picking another subnet", "subnet", subnet, "peer", w.name)
	}
	return netip.Prefix{}, fmt.Errorf("no subnet settled after %d rounds of competing claims", maxClaimRounds)
}

// awaitJoins waits, while other members have no subnet yet, until no member
// has appeared for half a SettleWindow (at most two windows), and returns
// those members: the crowd that starts with us, true for those that had no
// lease (contestants).
func (m *Membership) awaitJoins(ctx context.Context) (map[string]bool, error) {
	crowd := map[string]bool{}
	window := m.settleWindow()
	deadline := time.Now().Add(2 * window)
	for {
		m.mu.Lock()
		for name, mb := range m.members {
			if _, seen := crowd[name]; !seen && name != m.cfg.Name && mb.state == peer.Alive && !mb.meta.Subnet.IsValid() {
				l, leased := m.leases[name]
				crowd[name] = !leased || l.Released // a node that comes back for its lease is no contestant
			}
		}
		quiet := m.membersChanged.Add(window / 2)
		m.mu.Unlock()
		wait := time.Until(quiet)
		if len(crowd) == 0 || wait <= 0 || !time.Now().Before(deadline) {
			return crowd, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for other nodes to join: %w", ctx.Err())
		case <-time.After(min(wait, time.Until(deadline))):
		}
	}
}

// settle waits for competing claims to arrive: until SettleWindow has passed
// since our claim and since any claim or member anywhere last appeared or
// changed, every member
// that had no subnet yet when we claimed has announced one, and every rival
// announcement is backed by its lease record (for at most maxWait windows);
// at most maxChurn windows in all, while claims keep changing.
func (m *Membership) settle(ctx context.Context) error {
	const maxWait, maxChurn = 10, 30
	start := time.Now()
	window := m.settleWindow()
	waitUntil := start.Add(maxWait * window)
	deadline := start.Add(maxChurn * window)
	m.mu.Lock()
	var pending []string
	for name, mb := range m.members {
		if name != m.cfg.Name && mb.state == peer.Alive && !mb.meta.Subnet.IsValid() {
			pending = append(pending, name)
		}
	}
	m.mu.Unlock()
	for {
		m.mu.Lock()
		quiet := m.claimsChanged
		if m.membersChanged.After(quiet) {
			quiet = m.membersChanged
		}
		pending = slices.DeleteFunc(pending, func(name string) bool {
			mb := m.members[name]
			return mb == nil || mb.state != peer.Alive || mb.meta.Subnet.IsValid()
		})
		waiting := len(pending) > 0
		for name, mb := range m.members { // a rival whose lease record is still on its way
			waiting = waiting || name != m.cfg.Name && mb.state == peer.Alive &&
				mb.meta.Subnet.Overlaps(m.own.Subnet) && m.announcedLocked(mb).seq == noSeq
		}
		m.mu.Unlock()
		if quiet.Before(start) {
			quiet = start
		}
		wait := time.Until(quiet.Add(window))
		if waiting && time.Now().Before(waitUntil) {
			wait = max(wait, window/10)
		}
		if wait <= 0 || !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(wait, time.Until(deadline))):
		}
	}
}

// pick chooses and records our claim: on the first pick the requested
// subnet, else our old lease; else a free one. crowd are the nodes picking
// with us (true: contestants, whose fresh claims do not count).
func (m *Membership) pick(crowd map[string]bool, first bool) (netip.Prefix, error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var base uint64 // the highest claim order outside the crowd's fresh claims
	for name, l := range m.leases {
		if !crowd[name] {
			base = max(base, l.Seq)
		}
	}
	base = max(base, m.own.Seq)
	fresh := func(c claim) bool { return crowd[c.name] && c.seq > base }
	cs := m.claimsLocked(now, fresh)
	old, haveOld := m.leases[m.cfg.Name]
	if m.own.Subnet.IsValid() {
		old, haveOld = m.own, true
	}
	var subnet netip.Prefix
	keepSeq := false
	if first && m.cfg.Subnet.IsValid() {
		if o, busy := cs.taken(m.cfg.Name, m.cfg.Subnet); busy {
			m.log.Warn("requested subnet is leased by another node; picking a free one", "subnet", m.cfg.Subnet, "peer", o.name)
		} else {
			subnet = m.cfg.Subnet
			keepSeq = haveOld && !old.Released && old.Subnet == subnet
		}
	}
	if !subnet.IsValid() && first && haveOld && !old.Released {
		if o, busy := cs.taken(m.cfg.Name, old.Subnet); busy {
			m.log.Warn("our previous subnet is now leased by another node; picking a free one", "subnet", old.Subnet, "peer", o.name)
		} else {
			subnet, keepSeq = old.Subnet, true
		}
	}
	if !subnet.IsValid() {
		skip := 0
		for name, contestant := range crowd {
			if contestant && name < m.cfg.Name {
				skip++
			}
		}
		p, err := pickFree(m.cfg.Network, m.cfg.SubnetLen, m.cfg.Name, cs, skip)
		if err != nil {
			return netip.Prefix{}, err
		}
		subnet = p
	}
	l := Lease{
		Name: m.cfg.Name, Subnet: subnet, Seq: old.Seq, Gossip: m.gossip, Endpoint: m.cfg.DataEndpoint,
		LastSeen: now, Version: max(old.Version, m.leases[m.cfg.Name].Version) + 1,
	}
	if !keepSeq {
		l.Seq = base + 1
	}
	m.own = l
	m.leases[m.cfg.Name] = l
	m.tableDirty, m.rebuild = true, true
	m.broadcast(l)
	return subnet, nil
}

// liveLocked reports whether memberlist counts the named node alive.
func (m *Membership) liveLocked(name string) bool {
	mb := m.members[name]
	return mb != nil && mb.state == peer.Alive
}

// announcedLocked is the claim a live member announces. Its metadata carries
// subnet and claim order together, so every node ranks a contest from the
// same values, once the member's lease record has arrived to back them.
func (m *Membership) announcedLocked(mb *member) claim {
	c := claim{name: mb.name, subnet: mb.meta.Subnet, seq: noSeq}
	if l, ok := m.leases[mb.name]; ok && !l.Released && l.Subnet == c.subnet && l.Seq == mb.meta.Seq {
		c.seq = l.Seq
	}
	return c
}

// claimsLocked indexes every claim on address space, but those ignore
// reports: our own, what live members announce, and the unreleased lease
// records, of gone nodes while reserved. A live member's record and
// announcement travel separately, so where they differ both count until the
// later one arrives.
func (m *Membership) claimsLocked(now time.Time, ignore func(claim) bool) *claims {
	cs := &claims{}
	add := func(c claim) {
		if ignore == nil || !ignore(c) {
			cs.add(c)
		}
	}
	for name, mb := range m.members {
		if name != m.cfg.Name && mb.state == peer.Alive && mb.meta.Subnet.IsValid() {
			add(m.announcedLocked(mb))
		}
	}
	for name, l := range m.leases {
		if name == m.cfg.Name || l.Released {
			continue
		}
		mb, live := m.members[name], m.liveLocked(name)
		if live && mb.meta.Subnet == l.Subnet && mb.meta.Seq == l.Seq || !live && expired(l, now, m.cfg.LeaseTTL) {
			continue // announced, or forgotten
		}
		add(claim{name: name, subnet: l.Subnet, seq: l.Seq})
	}
	if m.own.Subnet.IsValid() {
		cs.add(claim{name: m.cfg.Name, subnet: m.own.Subnet, seq: m.own.Seq})
	}
	return cs
}
