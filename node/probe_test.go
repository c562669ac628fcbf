package node

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
)

// The data path's health follows probes: ok with a round-trip time while
// answers come, unreachable with a reason when the underlay loses
// everything, ok again when it heals.
func TestPathProbes(t *testing.T) {
	sn, a, _ := pair(t)
	path := func() api.PathStatus { return a.Status().Peers[0].Path }
	testenv.WaitFor(t, patience, "path a→b ok", func() bool { return path().State == api.PathOK })
	if p := path(); p.LastOK == nil || p.RTTMs <= 0 || p.Reason != "" {
		t.Fatalf("ok path: %+v", p)
	}
	sn.cut.Store(true)
	testenv.WaitFor(t, patience, "path a→b unreachable", func() bool { return path().State == api.PathUnreachable })
	if p := path(); !strings.Contains(p.Reason, "no answer") || !strings.Contains(p.Reason, "192.0.2.2:6081") || p.Loss == 0 {
		t.Fatalf("unreachable path: %+v", p)
	}
	sn.cut.Store(false)
	testenv.WaitFor(t, patience, "path a→b ok again", func() bool { return path().State == api.PathOK })
	if d := drop(a, "bad_control") + drop(a, "control"); d != 0 {
		t.Fatalf("probes counted as drops: %d", d)
	}
}

func TestPathHealthStatus(t *testing.T) {
	ep := netip.MustParseAddrPort("192.0.2.2:6081")
	t0 := time.Unix(1000, 0)
	const timeout = 2 * time.Second
	var h pathHealth
	if s := h.status(t0, timeout, true, ep); s.State != api.PathUnknown || s.LastOK != nil {
		t.Fatalf("no probes: %+v", s)
	}
	// Probe 1, sent while the peer was starting, never answered: not loss.
	// Probe 2 answered after 3 ms, probes 3–5 never.
	h.sent(t0.Add(-time.Second))
	h.answered(h.sent(t0), t0.Add(3*time.Millisecond))
	for i := 1; i <= 3; i++ {
		h.sent(t0.Add(time.Duration(i) * time.Second))
	}
	h.answered(99, t0) // no such probe: ignored
	s := h.status(t0.Add(4*time.Second), timeout, true, ep)
	if s.State != api.PathOK || s.RTTMs != 3 || s.Loss != 2.0/3 { // probe 4 is not late yet
		t.Fatalf("one answer, two lost, one pending: %+v", s)
	}
	s = h.status(t0.Add(6*time.Second), timeout, true, ep)
	if s.State != api.PathUnreachable || s.Loss != 0.75 || !strings.Contains(s.Reason, "gossip still hears") {
		t.Fatalf("three lost in a row: %+v", s)
	}
	if s = h.status(t0.Add(6*time.Second), timeout, false, ep); strings.Contains(s.Reason, "gossip") {
		t.Fatalf("static peer's reason mentions gossip: %q", s.Reason)
	}
	// A late answer to probe 5 clears it.
	h.answered(5, t0.Add(6*time.Second))
	if s = h.status(t0.Add(6*time.Second), timeout, true, ep); s.State != api.PathOK {
		t.Fatalf("after an answer: %+v", s)
	}
}
