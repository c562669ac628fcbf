package node

// Path health. Every ProbeInterval the node sends each routed peer a probe
// over the data port: a GENEVE control message (O bit) sealed like data, so
// it crosses the same firewalls as packets do and only members can forge it.
// The peer answers at once. The answers give the round-trip time, the loss
// and the time of the last answer; a peer whose probes go unanswered while
// gossip still hears it has a broken data path (a firewall on the UDP port
// is the usual cause), and status says so. docs/wire-format.md has the
// message format.

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

const (
	probeLen     = 16 // kind, version, 6 reserved bytes, sequence number
	probeVersion = 1
	probeRequest = 1
	probeReply   = 2

	probeWindow = 10 // loss is over this many recent probes
	// unreachableAfter unanswered probes in a row make a path unreachable.
	unreachableAfter = 3
)

// pathHealth is what the node knows about one peer's data path. The prober
// and the outside loop update it; status reads it.
type pathHealth struct {
	mu      sync.Mutex
	next    uint64 // sequence number of the next probe
	ring    [probeWindow]probeRecord
	rtt     time.Duration
	lastOK  time.Time
	firstOK time.Time // probes sent before the first answer met a peer still starting: not loss

	logged string // the state last logged; the prober's own
}

type probeRecord struct {
	seq      uint64 // 0: empty slot
	sent     time.Time
	answered bool
}

// sent records a probe sent at now and returns its sequence number.
func (h *pathHealth) sent(now time.Time) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.ring[h.next%probeWindow] = probeRecord{seq: h.next, sent: now}
	return h.next
}

// answered records the answer to probe seq arriving at now. Answers to
// probes no longer in the window, or answered already, are ignored.
func (h *pathHealth) answered(seq uint64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &h.ring[seq%probeWindow]
	if r.seq != seq || r.answered {
		return
	}
	r.answered = true
	h.rtt = now.Sub(r.sent)
	h.lastOK = now
	if h.firstOK.IsZero() {
		h.firstOK = r.sent
	}
}

// status sums up the window at now: a probe counts as lost once it is
// timeout old without an answer. gossip says whether gossip hears the peer
// (for the reason), port is the peer's data endpoint.
func (h *pathHealth) status(now time.Time, timeout time.Duration, gossip bool, ep netip.AddrPort) api.PathStatus {
	h.mu.Lock()
	recs, firstOK := h.ring, h.firstOK
	s := api.PathStatus{State: api.PathUnknown}
	if !h.lastOK.IsZero() {
		t := h.lastOK
		s.LastOK = &t
		s.RTTMs = float64(h.rtt.Microseconds()) / 1000
	}
	h.mu.Unlock()

	slices.SortFunc(recs[:], func(a, b probeRecord) int { return cmp.Compare(b.seq, a.seq) }) // newest first
	var ok, lost, inARow int
	streak := true // still counting unanswered probes from the newest
	for _, r := range recs {
		switch {
		case r.seq == 0, r.sent.Before(firstOK):
		case r.answered:
			ok++
			streak = false
		case now.Sub(r.sent) >= timeout:
			lost++
			if streak {
				inARow++
			}
		}
	}
	if ok+lost > 0 {
		s.Loss = float64(lost) / float64(ok+lost)
	}
	switch {
	case inARow >= unreachableAfter:
		s.State = api.PathUnreachable
		s.Reason = fmt.Sprintf("the last %d probes to %s got no answer", inARow, ep)
		if s.LastOK == nil {
			s.Reason += ", and none ever did"
		} else {
			s.Reason += fmt.Sprintf(" (last answer %s ago)", now.Sub(*s.LastOK).Round(time.Second))
		}
		if gossip {
			s.Reason += fmt.Sprintf("; gossip still hears the peer, so UDP to port %d is blocked (a firewall?) or the peer's endpoint is wrong", ep.Port())
		} else {
			s.Reason += fmt.Sprintf("; is the peer running, and does UDP to %s reach it (a firewall?)", ep)
		}
	case ok > 0:
		s.State = api.PathOK
	default:
		s.Reason = "waiting for the first answer to a probe"
	}
	return s
}

// probe sends every routed peer a probe each ProbeInterval until ctx ends.
func (n *Node) probe(ctx context.Context) {
	buf := make([]byte, n.codec.Headroom()+probeLen+n.codec.Tailroom())
	tick := time.NewTicker(n.cfg.ProbeInterval)
	defer tick.Stop()
	for {
		now := time.Now()
		for _, p := range n.table.Load().peers {
			if p.State.Routable() {
				n.logPath(p, now)
				n.sendProbe(buf, probeRequest, p.path.sent(now), p.Endpoint)
			}
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
	st := p.path.status(now, n.probeTimeout(), p.State != peer.Static, p.Endpoint)
	if st.State == p.path.logged || st.State == api.PathUnknown {
		return
	}
	switch st.State {
	case api.PathOK:
		n.log.Info("data path to peer works", "peer", p.Name, "endpoint", p.Endpoint, "rtt_ms", st.RTTMs)
	case api.PathUnreachable:
		n.log.Warn("data path to peer unreachable", "peer", p.Name, "endpoint", p.Endpoint, "reason", st.Reason)
	}
	p.path.logged = st.State
}

// sendProbe seals a probe message of kind into buf and sends it to ep.
func (n *Node) sendProbe(buf []byte, kind byte, seq uint64, ep netip.AddrPort) {
	off := n.codec.Headroom()
	msg := buf[off : off+probeLen]
	clear(msg)
	msg[0], msg[1] = kind, probeVersion
	binary.BigEndian.PutUint64(msg[8:], seq)
	d, err := n.codec.SealControl(buf, off, probeLen)
	if err == nil {
		err = n.conn.WriteTo(d, ep)
	}
	if err != nil {
		n.warnLimited(n.sendWarn, "UDP send failed", fmt.Errorf("path probe to %s: %w", ep, err))
	}
}

// control handles a control datagram from peer: answers probes, records
// answers. buf is scratch for the answer.
func (n *Node) control(peer *Peer, dgram, buf []byte) {
	msg, err := n.codec.OpenControlFrom(dgram, peer.rx)
	if err != nil {
		n.drops.addEncap(err)
		return
	}
	if len(msg) < probeLen || msg[1] != probeVersion {
		n.drops.add(dropBadControl, 1)
		return
	}
	seq := binary.BigEndian.Uint64(msg[8:16])
	switch msg[0] {
	case probeRequest:
		n.sendProbe(buf, probeReply, seq, peer.Endpoint)
	case probeReply:
		peer.path.answered(seq, time.Now())
	default:
		n.drops.add(dropBadControl, 1)
	}
}

// probeTimeout is how long an answer may take before its probe counts as lost.
func (n *Node) probeTimeout() time.Duration { return 2 * n.cfg.ProbeInterval }
