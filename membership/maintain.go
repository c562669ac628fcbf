package membership

// The maintain goroutine ticks the lease state machine: on each wake
// (coalesced to one pass per minPass) and each tick it runs leaseState.tick
// at the wall clock's now and carries out the decisions (apply): gossip our
// re-asserted record, report a lost subnet to Run, publish the peer set,
// save the lease table; then it writes the log lines queued since.
//
// The rejoin goroutine contacts seeds (with backoff while no seed has
// answered) and gone lease holders, which is how partitions heal.

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/peer"
)

const (
	minPass   = 50 * time.Millisecond // coalesces bursts of events into one pass (more in big clusters)
	maxWarned = 4096                  // bounds the memory of "already logged" names
	maxGone   = 3                     // gone lease holders contacted per rejoin round
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

func (m *Membership) pass(now time.Time) {
	m.mu.Lock()
	fx := m.st.tick(now)
	m.mu.Unlock()
	m.apply(fx)
	m.mu.Lock()
	notes := m.notes
	m.notes = nil
	m.mu.Unlock()
	for _, n := range notes {
		m.emit(n)
	}
}

// apply carries out what the state machine decided; the caller does not
// hold mu. Log lines are queued for the maintain goroutine, which writes them.
func (m *Membership) apply(fx effects) {
	m.mu.Lock()
	for _, n := range fx.notes {
		if n.event == "rejected" {
			m.rejectLocked(n.reason, n.name, n.err)
		} else {
			m.notes = append(m.notes, n)
		}
	}
	if fx.lost != nil && m.lostErr == nil {
		m.lostErr = fx.lost
		close(m.lost)
	}
	m.mu.Unlock()
	if fx.reannounce && m.ml != nil {
		m.ml.UpdateNode(time.Millisecond) // called from the maintain goroutine or Start only
	}
	if m.queue != nil {
		for _, l := range fx.broadcast {
			m.broadcast(l)
		}
	}
	if fx.publish {
		select {
		case m.published <- struct{}{}:
		default:
		}
	}
	if fx.save != nil {
		if err := saveLeases(m.file, fx.save); err != nil {
			m.log.Warn("cannot save the lease table; the cluster still holds it", "err", err)
		}
	}
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
		m.log.Warn("member failed; its subnet stays reserved", "peer", n.name, "subnet", n.subnet, "endpoint", n.endpoint, "ttl", m.LeaseTTL())
	case string(peer.Left):
		m.log.Info("member left; its subnet stays reserved", "peer", n.name, "subnet", n.subnet, "endpoint", n.endpoint, "ttl", m.LeaseTTL())
	case "ttl":
		if n.ttl != m.cfg.LeaseTTL {
			m.log.Warn("the cluster's lease TTL differs from ours (--lease-ttl); using the cluster's, set by the oldest lease",
				"ttl", n.ttl.String(), "ours", m.cfg.LeaseTTL.String(), "peer", n.name)
		} else {
			m.log.Info("using our lease TTL again", "ttl", n.ttl.String())
		}
	case "expired":
		m.log.Info("lease expired; its subnet is free again", "peer", n.name, "subnet", n.subnet)
	case "requested taken":
		m.log.Warn("requested subnet is leased by another node; picking a free one", "subnet", n.subnet, "peer", n.name)
	case "previous taken":
		m.log.Warn("our previous subnet is now leased by another node; picking a free one", "subnet", n.subnet, "peer", n.name)
	case "lost":
		m.log.Warn("our subnet was taken by a claim that ranks first", "subnet", n.subnet, "peer", n.name, "err", n.err)
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
			wait = jitter(backoff)
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
				m.log.Info("joined the cluster", "through", m.answered(targets), "seeds", m.seeds)
			}
			backoff = m.cfg.JoinRetry
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
	m.mu.Lock()
	live, gone := m.st.goneHolders()
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
