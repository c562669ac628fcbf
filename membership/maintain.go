package membership

// The maintain goroutine turns what the callbacks recorded into effects. On
// each wake (coalesced to one pass per minPass) and each tick it keeps the
// lease LastSeen of live owners current, forgets expired leases and
// tombstones, re-asserts our own record, checks that no rival claim beats our
// subnet, rebuilds and publishes the peer set, writes the log lines the
// callbacks queued, and saves the lease table.
//
// The rejoin goroutine contacts seeds (with backoff while no seed has
// answered) and gone lease holders, which is how partitions heal.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/peer"
)

const (
	minPass    = 50 * time.Millisecond // coalesces bursts of events into one pass (more in big clusters)
	saveEvery  = 2 * time.Second       // the lease file is written at most this often while it changes…
	saveAnyway = time.Minute           // …and at least this often, for LastSeen
	maxWarned  = 4096                  // bounds the memory of "already logged" names
	maxGone    = 3                     // gone lease holders contacted per rejoin round
)

func (m *Membership) maintain() {
	t := time.NewTicker(max(minPass, min(time.Second, m.cfg.LeaseTTL/4)))
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
		case <-t.C:
		}
		// Bigger clusters change more often; a pass costs O(members).
		pass := max(minPass, time.Duration(m.liveOthers.Load())*500*time.Microsecond)
		if wait := pass - time.Since(last); wait > 0 {
			select {
			case <-m.stop:
				return
			case <-time.After(wait):
			}
		}
		last = time.Now()
		m.pass(last)
	}
}

// suspectAfterLocked is how long a member memberlist still lists may go
// without our hearing from it before we call it suspect: two rounds of our
// probes, which visit every member once per round.
func (m *Membership) suspectAfterLocked() time.Duration {
	return m.probeInterval * time.Duration(2*len(m.members)+4)
}

func (m *Membership) pass(now time.Time) {
	self := m.cfg.Name
	var save []Lease
	publish := false

	m.mu.Lock()
	suspectAfter := m.suspectAfterLocked()
	for name, mb := range m.members {
		if mb.state != peer.Alive || name == self {
			continue
		}
		if l, ok := m.leases[name]; ok {
			l.LastSeen = now
			m.leases[name] = l
		}
		if s := now.Sub(mb.heard) > suspectAfter; s != mb.suspect {
			mb.suspect, m.rebuild = s, true
		}
	}
	for name, l := range m.leases {
		if name == self || m.liveLocked(name) || !expired(l, now, m.cfg.LeaseTTL) {
			continue
		}
		delete(m.leases, name)
		m.tableDirty, m.rebuild = true, true
		if !l.Released {
			m.notes = append(m.notes, note{event: "expired", name: name, subnet: l.Subnet})
		}
	}
	for name, mb := range m.members {
		// A gone member stays listed while its lease is reserved.
		if l, ok := m.leases[name]; mb.state != peer.Alive && name != self && (!ok || l.Released) {
			delete(m.members, name)
			delete(m.overlapping, name)
		}
	}
	if m.own.Subnet.IsValid() {
		if m.reassert != 0 && m.reassert >= m.own.Version {
			m.own.Version = m.reassert + 1
			m.broadcast(m.own)
			m.tableDirty = true
		}
		m.reassert = 0
		m.own.LastSeen = now
		m.leases[self] = m.own
	}
	var cs *claims
	if m.rebuild { // claims or members changed
		cs = m.claimsLocked(now, nil)
	}
	if cs != nil && m.started && m.lostErr == nil {
		own := claim{name: self, subnet: m.own.Subnet, seq: m.own.Seq}
		if w, lost := cs.winner(own); lost {
			m.lostErr = fmt.Errorf("%w: %q's claim on %s (claim order %d) ranks before ours on %s (%d)",
				ErrSubnetLost, w.name, w.subnet, w.seq, own.subnet, own.seq)
			m.notes = append(m.notes, note{event: "lost", name: w.name, subnet: own.subnet, err: m.lostErr})
			m.lostOnce.Do(func() { close(m.lost) })
		}
	}
	if m.rebuild {
		m.rebuild = false
		if ps := m.buildPeersLocked(cs); !samePeers(ps, m.peers) {
			m.peers, publish = ps, true
		}
	}
	notes := m.notes
	m.notes = nil
	if m.started && (m.tableDirty && now.Sub(m.lastSave) >= saveEvery || now.Sub(m.lastSave) >= saveAnyway) {
		save = m.tableLocked(now)
		m.tableDirty, m.lastSave = false, now
	}
	m.mu.Unlock()

	for _, n := range notes {
		m.emit(n)
	}
	if publish {
		select {
		case m.published <- struct{}{}:
		default:
		}
	}
	if save != nil {
		if err := saveLeases(m.file, save); err != nil {
			m.log.Warn("cannot save the lease table; the cluster still holds it", "err", err)
		}
	}
}

// buildPeersLocked returns the peer set: live members that announce a subnet
// no better claim overlaps, one per data endpoint, plus gone (dead, left)
// members for display, sorted by name.
func (m *Membership) buildPeersLocked(cs *claims) []peer.Info {
	type cand struct {
		mb *member
		c  claim
	}
	var cands []cand
	for name, mb := range m.members {
		if name == m.cfg.Name || mb.state != peer.Alive || !mb.meta.Subnet.IsValid() ||
			insideNetwork(mb.meta.Subnet, m.cfg.Network) != nil { // screened by NotifyAlive already
			continue
		}
		c := m.announcedLocked(mb)
		if w, lost := cs.winner(c); lost {
			if m.overlapping[name] != c.subnet { // count each offending announcement once
				m.overlapping[name] = c.subnet
				m.rejectLocked(reasonOverlap, name, fmt.Errorf("subnet %s overlaps %q's %s, whose claim ranks first", c.subnet, w.name, w.subnet))
			}
			continue
		}
		delete(m.overlapping, name)
		if m.own.Subnet.IsValid() && c.subnet.Overlaps(m.own.Subnet) {
			continue // it beat us: Run reports ErrSubnetLost
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
	endpoints := map[netip.AddrPort]string{m.cfg.DataEndpoint: m.cfg.Name}
	ps := make([]peer.Info, 0, len(cands))
	for _, c := range cands {
		md := c.mb.meta
		if o, dup := endpoints[md.Endpoint]; dup {
			m.rejectLocked(reasonDuplicateEndpoint, c.c.name, fmt.Errorf("endpoint %s is %q's", md.Endpoint, o))
			continue
		}
		endpoints[md.Endpoint] = c.c.name
		state := peer.Alive
		if c.mb.suspect {
			state = peer.Suspect
		}
		ps = append(ps, peer.Info{Name: c.c.name, Subnet: md.Subnet, Endpoint: md.Endpoint, State: state, LastSeen: c.mb.heard})
	}
	// Gone members ride along so status can show them; the node routes
	// only alive and suspect peers.
	for name, mb := range m.members {
		if name != m.cfg.Name && (mb.state == peer.Dead || mb.state == peer.Left) && mb.meta.Subnet.IsValid() {
			ps = append(ps, peer.Info{Name: name, Subnet: mb.meta.Subnet, Endpoint: mb.meta.Endpoint, State: mb.state, LastSeen: mb.heard})
		}
	}
	slices.SortFunc(ps, func(a, b peer.Info) int { return strings.Compare(a.Name, b.Name) })
	return ps
}

// emit writes one queued log line.
func (m *Membership) emit(n note) {
	switch n.event {
	case string(peer.Alive):
		if !n.subnet.IsValid() { // a starting node: "member leased a subnet" follows its claim
			m.log.Info("member alive, no subnet yet", "peer", n.name, "endpoint", n.endpoint)
			return
		}
		m.log.Info("member alive", "peer", n.name, "subnet", n.subnet, "endpoint", n.endpoint)
	case "leased":
		m.log.Info("member leased a subnet", "peer", n.name, "subnet", n.subnet, "endpoint", n.endpoint)
	case string(peer.Dead):
		m.log.Warn("member failed; its subnet stays reserved", "peer", n.name, "subnet", n.subnet, "endpoint", n.endpoint, "ttl", m.cfg.LeaseTTL)
	case string(peer.Left):
		m.log.Info("member left; its subnet stays reserved", "peer", n.name, "subnet", n.subnet, "endpoint", n.endpoint, "ttl", m.cfg.LeaseTTL)
	case "expired":
		m.log.Info("lease expired; its subnet is free again", "peer", n.name, "subnet", n.subnet)
	case "lost":
		m.log.Error("our subnet was taken by a claim that ranks first; restart the node to lease another", "subnet", n.subnet, "peer", n.name, "err", n.err)
	case "rejected":
		m.log.Warn("rejected a node's announcement (logged once per node and reason)", "peer", n.name, "reason", reasonNames[n.reason], "err", n.err)
	}
}

// oneLine flattens memberlist's multi-error ("2 errors occurred:\n\t* …")
// into one line, so each log record stays one line in text format too.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.ReplaceAll(err.Error(), "\n\t* ", " ")
	return strings.Join(strings.Fields(s), " ")
}

// rejoin keeps this node connected: while it sees nobody it retries the
// seeds with backoff; otherwise every RejoinInterval it contacts seeds it
// does not see and a few gone members that still hold a lease. memberlist
// never probes a member it declared dead, so without this two halves of a
// healed partition would stay apart.
func (m *Membership) rejoin() {
	backoff := m.cfg.JoinRetry
	for {
		lonely := len(m.seeds) > 0 && m.liveOthers.Load() == 0
		wait := m.cfg.RejoinInterval
		if lonely {
			wait = backoff
		}
		select {
		case <-m.stop:
			return
		case <-time.After(wait):
		}
		targets := m.rejoinTargets(lonely)
		if len(targets) == 0 {
			continue
		}
		n, err := m.ml.Join(targets)
		switch {
		case n > 0:
			if lonely {
				m.log.Info("joined the cluster", "seeds", m.seeds)
			}
			backoff = m.cfg.JoinRetry
			m.markJoined()
		case lonely:
			backoff = min(2*backoff, m.cfg.JoinRetryMax)
			m.log.Warn("no seed answered; retrying", "seeds", m.seeds, "retry_in", backoff.String(), "err", oneLine(err))
		default:
			m.log.Debug("nobody answered a rejoin", "targets", targets, "err", oneLine(err))
		}
	}
}

// rejoinTargets lists seeds we do not see alive (all of them when lonely)
// and up to maxGone gossip addresses of gone members that hold a lease.
func (m *Membership) rejoinTargets(lonely bool) []string {
	live := map[netip.AddrPort]bool{}
	var gone []string
	m.mu.Lock()
	for name, mb := range m.members {
		if mb.state == peer.Alive && name != m.cfg.Name {
			live[mb.gossip] = true
		}
	}
	for name, l := range m.leases {
		if name != m.cfg.Name && !l.Released && !m.liveLocked(name) && l.Gossip.IsValid() && l.Gossip != m.gossip && !live[l.Gossip] {
			gone = append(gone, l.Gossip.String())
		}
	}
	m.mu.Unlock()
	var out []string
	for _, s := range m.seeds {
		if lonely || !seedLive(s, live) {
			out = append(out, s)
		}
	}
	rand.Shuffle(len(gone), func(i, j int) { gone[i], gone[j] = gone[j], gone[i] })
	return append(out, gone[:min(len(gone), maxGone)]...)
}

// seedLive reports whether seed (host:port) resolves to a live member.
func seedLive(seed string, live map[netip.AddrPort]bool) bool {
	host, port, _ := net.SplitHostPort(seed)
	ap, err := netip.ParseAddrPort(seed)
	if err == nil {
		return live[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return false
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	for _, a := range addrs {
		if live[netip.AddrPortFrom(a.Unmap(), uint16(p))] {
			return true
		}
	}
	return false
}
