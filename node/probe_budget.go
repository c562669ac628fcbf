package node

// Which peers the prober probes each tick. plan looks at every routed peer
// (two atomic loads and an uncontended lock each), sorts the ones that need
// a probe by urgency and returns at most the budget. It reuses its scratch
// from tick to tick, so a tick allocates nothing once the slices have grown
// to the number of peers.

import (
	"cmp"
	"slices"
	"time"
)

// probeNeed is why a peer needs a probe this tick, most urgent first.
type probeNeed uint8

const (
	needSilent     probeNeed = iota // we sent it data since the last tick and heard none back
	needUnanswered                  // its last probe has no answer (yet): keep at it until it answers or is unreachable
	needNew                         // never answered a probe (new, or known only from its data)
	needSweep                       // confirmed, but longest ago, and not in the last half interval
	needNone                        // data from it since the last tick, or checked recently
)

// The idle sweep is slow on purpose: an idle path's health is shown, not
// acted on (memberlist is the failure detector, and a path that carries
// traffic is probed as soon as it goes silent), so each idle peer is
// re-checked every sweepIntervals intervals, by at most 1/sweepShare of the
// budget. Idle, a node thus sends min(peers/10, budget/4) probes a second:
// 2 at 20 peers, 5 from 50 peers on, where every peer every interval cost
// 20 at 20 peers and the whole budget beyond.
const (
	sweepIntervals = 10
	sweepShare     = 4
)

// prober chooses the probes of each tick. Only the probe goroutine uses it.
type prober struct {
	interval time.Duration
	perTick  int // the budget: at most this many probes a tick
	sweeps   int // of which at most this many are sweeps
	cands    []probeCand
	due      []*Peer
}

type probeCand struct {
	p     *Peer
	need  probeNeed
	since time.Time // the last probe, or for the sweep the last check: oldest first
	i     int       // position in the peer list: a stable last resort
}

// newProber returns a prober for ticks every interval that sends at most
// budget probes a second, and at least one a tick.
func newProber(interval time.Duration, budget int) *prober {
	perTick := max(int(int64(budget)*int64(interval)/int64(time.Second)), 1)
	return &prober{interval: interval, perTick: perTick, sweeps: max(perTick/sweepShare, 1)}
}

// plan notes, at now, which routable peers among peers sent or were sent
// data since the previous call, and returns the peers to probe now, most
// urgent first. The slice is valid until the next call.
func (pr *prober) plan(now time.Time, peers []*Peer) []*Peer {
	pr.cands = pr.cands[:0]
	sweeps := 0
	for i, p := range peers {
		if !p.State.Routable() {
			continue
		}
		need, since := p.path.observe(now, p.rxPackets.Load(), p.txPackets.Load(), pr.interval)
		if need != needNone {
			pr.cands = append(pr.cands, probeCand{p: p, need: need, since: since, i: i})
		}
		if need == needSweep {
			sweeps++
		}
	}
	if len(pr.cands) > 1 {
		slices.SortFunc(pr.cands, func(a, b probeCand) int {
			return cmp.Or(cmp.Compare(a.need, b.need), a.since.Compare(b.since), cmp.Compare(a.i, b.i))
		})
		urgent := len(pr.cands) - sweeps // sorted first
		pr.cands = pr.cands[:min(len(pr.cands), pr.perTick, urgent+pr.sweeps)]
	}
	pr.due = pr.due[:0]
	for _, c := range pr.cands {
		pr.due = append(pr.due, c.p)
	}
	clear(pr.cands) // drop the peers: an old table must not live on in the scratch
	return pr.due
}

// observe takes the peer's packet counters at now, records data from it as
// evidence, and says whether and how urgently the path needs a probe, and
// since when it has waited. Only the prober calls it.
func (h *pathHealth) observe(now time.Time, rx, tx uint64, interval time.Duration) (probeNeed, time.Time) {
	heard, spoke := rx != h.rx, tx != h.tx
	h.rx, h.tx = rx, tx
	h.mu.Lock()
	defer h.mu.Unlock()
	if heard {
		h.lastData = now
		return needNone, time.Time{}
	}
	var last probeRecord // the latest probe, if any
	if h.next > 0 {
		last = h.ring[h.next%probeWindow]
	}
	switch {
	case spoke:
		return needSilent, last.sent
	case h.next > 0 && !last.answered:
		return needUnanswered, last.sent
	case h.lastOK.IsZero(): // and never probed: an unanswered probe is the case above
		return needNew, last.sent
	}
	// The last probe was answered. Checked when it was sent, or when data
	// came: half an interval of slack absorbs the ticker's jitter, so an idle
	// small cluster is probed every sweepIntervals intervals.
	checked := later(last.sent, h.lastData)
	if now.Sub(checked) < sweepIntervals*interval-interval/2 {
		return needNone, time.Time{}
	}
	return needSweep, checked
}
