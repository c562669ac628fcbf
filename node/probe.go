package node

// Path health: what this node knows of the data path to each peer, at a cost
// that does not grow with the cluster.
//
// Two kinds of evidence feed it. Authenticated data: the forwarding loops
// already count each peer's packets (counters.rxPackets, txPackets); every
// ProbeInterval the prober compares them with their values at its previous
// tick, so data from a peer shows its path works at no cost per packet.
// Probes: a GENEVE control message (O bit) sealed like data, sent over the
// data port so it crosses the same firewalls as packets do and only members
// can forge it; the peer answers at once, echoing the probe's random token
// (so nobody who cannot see a probe can make an answer for it count). The
// answers give the round-trip time, the loss and the time of the last one.
// Answers are sent by their own goroutine: the outside loop only hands the
// token over, and never waits for the socket (a full hand-off is counted as
// control_overflow).
//
// Each tick the prober (probe_budget.go) probes at most ProbeBudget ×
// ProbeInterval peers, most urgent first: those we sent data to since the
// last tick and heard nothing from, those whose last probe is unanswered
// (so 3 lost in a row still make a path unreachable within a few intervals,
// and recovery shows as soon), those never confirmed, then a sweep of the
// peers checked longest ago. Peers that sent data are not probed. A cluster
// of up to ProbeBudget × ProbeInterval peers is thus probed every interval
// while idle; a larger one is swept at ProbeBudget probes a second.
//
// A peer whose probes go unanswered while gossip still hears it has a broken
// data path (a firewall on the UDP port is the usual cause), and status says
// so, but only if gossip heard the peer after the probes began to fail: a
// crashed peer stays "alive" in gossip for seconds, yet was last heard
// before that, so it is reported as possibly down. docs/wire-format.md has
// the message format.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/api"
)

const (
	probeLen     = 16 // kind, version, 6 reserved bytes, token
	probeVersion = 1
	probeRequest = 1
	probeReply   = 2

	probeWindow = 10 // loss is over this many recent probes
	// unreachableAfter unanswered probes in a row make a path unreachable.
	unreachableAfter = 3
	// A probe counts as lost after probeTimeoutIntervals probe intervals
	// without an answer; data from a peer keeps its path ok for
	// dataFreshIntervals.
	probeTimeoutIntervals = 2
	dataFreshIntervals    = 3

	// answerQueue is how many probe answers may wait for the answering
	// goroutine; more are dropped (control_overflow), never waited for.
	answerQueue = 256
)

// probeAnswer is an answer the outside loop hands to answerProbes.
type probeAnswer struct {
	token uint64
	ep    netip.AddrPort
}

// pathHealth is what the node knows about one peer's data path. The prober
// and the outside loop update it; status reads it.
type pathHealth struct {
	mu       sync.Mutex
	next     uint64  // number of the next probe (ours: the wire carries a random token)
	draw     [8]byte // scratch for the token
	ring     [probeWindow]probeRecord
	rtt      time.Duration
	lastOK   time.Time
	firstOK  time.Time // probes sent before the first answer met a peer still starting: not loss
	lastData time.Time // the prober's tick that last saw data from the peer

	// The prober's own, unguarded.
	rx, tx uint64 // the peer's packet counters at the prober's last tick
	logged string // the state last logged
}

type probeRecord struct {
	seq      uint64 // 0: empty slot
	token    uint64 // what the probe carried
	sent     time.Time
	answered bool
}

// sent records a probe sent at now and returns its token: random, so an
// answer cannot be made without seeing the probe.
func (h *pathHealth) sent(now time.Time) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	rand.Read(h.draw[:]) // never fails (crypto/rand since Go 1.24); h's own bytes: no allocation
	token := binary.BigEndian.Uint64(h.draw[:])
	h.next++
	h.ring[h.next%probeWindow] = probeRecord{seq: h.next, token: token, sent: now}
	return token
}

// answered records the answer carrying token arriving at now. It reports
// false when no probe in the window carried it (the caller counts that);
// an answer to a probe answered already is ignored.
func (h *pathHealth) answered(token uint64, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	var r *probeRecord
	for i := range h.ring {
		if h.ring[i].seq != 0 && h.ring[i].token == token {
			r = &h.ring[i]
		}
	}
	if r == nil {
		return false
	}
	if r.answered {
		return true
	}
	r.answered = true
	h.rtt = now.Sub(r.sent)
	h.lastOK = now
	if h.firstOK.IsZero() {
		h.firstOK = r.sent
	}
	return true
}

// pathSummary is the evidence about a path at one moment.
type pathSummary struct {
	state                     string
	ok, lost, inARow          int // answered and lost probes in the window; lost since the last answer
	lastOK, lastData, checked time.Time
	// failedSince is when the oldest probe of the current unanswered
	// streak counted as lost (sent + timeout); zero without a streak.
	failedSince time.Time
	rtt         time.Duration
}

// summarize sums up the evidence at now: a probe counts as lost once it is
// timeout (probeTimeoutIntervals intervals) old without an answer, and data
// seen in the last dataFreshIntervals intervals makes the path ok whatever
// the probes say. It allocates nothing.
func (h *pathHealth) summarize(now time.Time, timeout time.Duration) pathSummary {
	h.mu.Lock()
	recs, firstOK := h.ring, h.firstOK
	s := pathSummary{lastOK: h.lastOK, lastData: h.lastData, rtt: h.rtt}
	h.mu.Unlock()

	slices.SortFunc(recs[:], func(a, b probeRecord) int { return cmp.Compare(b.seq, a.seq) }) // newest first
	var lastLost time.Time
	streak := true // still counting unanswered probes from the newest
	for _, r := range recs {
		switch {
		case r.seq == 0, r.sent.Before(firstOK):
		case r.answered:
			s.ok++
			streak = false
		case now.Sub(r.sent) >= timeout:
			s.lost++
			if streak {
				s.inARow++
				s.failedSince = r.sent.Add(timeout) // older ones come later
			}
			lastLost = later(lastLost, r.sent.Add(timeout))
		}
	}
	s.checked = later(later(s.lastOK, s.lastData), lastLost)
	fresh := timeout / probeTimeoutIntervals * dataFreshIntervals
	switch {
	case !s.lastData.IsZero() && now.Sub(s.lastData) < fresh:
		s.state = api.PathOK
	case s.inARow >= unreachableAfter:
		s.state = api.PathUnreachable
	case s.ok > 0:
		s.state = api.PathOK
	default:
		s.state = api.PathUnknown
	}
	return s
}

// status is the path as status shows it at now (see summarize). heard is
// when gossip last heard the peer (zero: a static peer, or never), for the
// reason: a firewall is blamed only if gossip heard the peer after the
// probes began to fail (summarize's failedSince); heard before that, the
// peer may simply be down. ep is the peer's data endpoint.
func (h *pathHealth) status(now time.Time, timeout time.Duration, heard time.Time, ep netip.AddrPort) api.PathStatus {
	sum := h.summarize(now, timeout)
	s := api.PathStatus{State: sum.state}
	if !sum.lastOK.IsZero() {
		t := sum.lastOK
		s.LastOK = &t
		s.RTTMs = float64(sum.rtt.Microseconds()) / 1000
	}
	if !sum.checked.IsZero() {
		t := sum.checked
		s.Checked = &t
	}
	if sum.ok+sum.lost > 0 {
		s.Loss = float64(sum.lost) / float64(sum.ok+sum.lost)
	}
	switch s.State {
	case api.PathUnreachable:
		s.Reason = fmt.Sprintf("the last %d probes to %s got no answer", sum.inARow, ep)
		if s.LastOK == nil {
			s.Reason += ", and none ever did"
		} else {
			s.Reason += fmt.Sprintf(" (last answer %s ago)", now.Sub(*s.LastOK).Round(time.Second))
		}
		switch {
		case !heard.IsZero() && heard.After(sum.failedSince):
			s.Reason += fmt.Sprintf("; gossip still hears the peer, so UDP to port %d is blocked (a firewall?) or the peer's endpoint is wrong", ep.Port())
		case !heard.IsZero():
			s.Reason += fmt.Sprintf("; gossip last heard the peer %s ago, before the probes failed: the peer may be down (crashed or cut off); if gossip keeps hearing it, UDP to port %d is blocked (a firewall?)",
				now.Sub(heard).Round(time.Second), ep.Port())
		default:
			s.Reason += fmt.Sprintf("; is the peer running, and does UDP to %s reach it (a firewall?)", ep)
		}
	case api.PathUnknown:
		s.Reason = "waiting for the first answer to a probe"
	}
	return s
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// probe runs the prober until ctx ends: each ProbeInterval it notes which
// peers sent data, logs changes of path state and sends the probes the
// budget allows (probe_budget.go decides which).
func (n *Node) probe(ctx context.Context) {
	buf := make([]byte, n.codec.Headroom()+probeLen+n.codec.Tailroom())
	pr := newProber(n.cfg.ProbeInterval, n.cfg.ProbeBudget)
	tick := time.NewTicker(n.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		now := time.Now()
		peers := n.table.Load().peers
		due := pr.plan(now, peers)
		for _, p := range peers {
			if p.State.Routable() {
				n.logPath(p, now)
			}
		}
		for _, p := range due {
			n.sendProbe(buf, probeRequest, p.path.sent(now), p.Endpoint)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// logPath logs a change of p's path state: once when it first works, and
// each time it becomes unreachable or works again.
func (n *Node) logPath(p *Peer, now time.Time) {
	st := p.path.summarize(now, n.probeTimeout()).state
	if st == p.path.logged || st == api.PathUnknown {
		return
	}
	switch st {
	case api.PathOK:
		s := p.path.status(now, n.probeTimeout(), n.lastHeard(p), p.Endpoint)
		n.log.Info("data path to peer works", "peer", p.Name, "endpoint", p.Endpoint, "rtt_ms", s.RTTMs)
	case api.PathUnreachable:
		s := p.path.status(now, n.probeTimeout(), n.lastHeard(p), p.Endpoint)
		n.log.Warn("data path to peer unreachable", "peer", p.Name, "endpoint", p.Endpoint, "reason", s.Reason)
	}
	p.path.logged = st
}

// sendProbe seals a probe message of kind into buf and sends it to ep.
func (n *Node) sendProbe(buf []byte, kind byte, token uint64, ep netip.AddrPort) {
	off := n.codec.Headroom()
	msg := buf[off : off+probeLen]
	clear(msg)
	msg[0], msg[1] = kind, probeVersion
	binary.BigEndian.PutUint64(msg[8:], token)
	d, err := n.codec.SealControl(buf, off, probeLen)
	if err == nil {
		err = n.conn.WriteTo(d, ep)
	}
	if err != nil {
		n.warnLimited(n.sendWarn, "UDP send failed", fmt.Errorf("path probe to %s: %w", ep, err))
	}
}

// control handles a control datagram from peer: hands probes to
// answerProbes, records answers. It never blocks.
func (n *Node) control(peer *Peer, dgram []byte) {
	msg, err := n.codec.OpenControlFrom(dgram, peer.rx)
	if err != nil {
		n.drops.addEncap(err)
		return
	}
	if len(msg) < probeLen || msg[1] != probeVersion {
		n.drops.add(dropBadControl, 1)
		return
	}
	token := binary.BigEndian.Uint64(msg[8:16])
	switch msg[0] {
	case probeRequest:
		select {
		case n.answers <- probeAnswer{token: token, ep: peer.Endpoint}:
		default:
			n.drops.add(dropControlQueue, 1)
		}
	case probeReply:
		if !peer.path.answered(token, time.Now()) {
			n.drops.add(dropProbeToken, 1)
		}
	default:
		n.drops.add(dropBadControl, 1)
	}
}

// answerProbes sends the answers control hands over until ctx ends, so
// the outside loop never waits on the socket for them.
func (n *Node) answerProbes(ctx context.Context) {
	buf := make([]byte, n.codec.Headroom()+probeLen+n.codec.Tailroom())
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-n.answers:
			n.sendProbe(buf, probeReply, a.token, a.ep)
		}
	}
}

// probeTimeout is how long an answer may take before its probe counts as lost.
func (n *Node) probeTimeout() time.Duration { return probeTimeoutIntervals * n.cfg.ProbeInterval }
