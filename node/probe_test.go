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
	heard := t0.Add(5 * time.Second) // gossip hears the peer all along
	var h pathHealth
	if s := h.status(t0, timeout, heard, ep); s.State != api.PathUnknown || s.LastOK != nil {
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
	s := h.status(t0.Add(4*time.Second), timeout, heard, ep)
	if s.State != api.PathOK || s.RTTMs != 3 || s.Loss != 2.0/3 { // probe 4 is not late yet
		t.Fatalf("one answer, two lost, one pending: %+v", s)
	}
	s = h.status(t0.Add(6*time.Second), timeout, heard, ep)
	if s.State != api.PathUnreachable || s.Loss != 0.75 || !strings.Contains(s.Reason, "gossip still hears") {
		t.Fatalf("three lost in a row: %+v", s)
	}
	if s = h.status(t0.Add(6*time.Second), timeout, time.Time{}, ep); strings.Contains(s.Reason, "gossip") {
		t.Fatalf("static peer's reason mentions gossip: %q", s.Reason)
	}
	// A late answer to probe 5 clears it.
	h.answered(5, t0.Add(6*time.Second))
	if s = h.status(t0.Add(6*time.Second), timeout, heard, ep); s.State != api.PathOK {
		t.Fatalf("after an answer: %+v", s)
	}
}

// A peer killed with -9 stays alive in gossip for seconds after its probes
// fail; it was last heard before they did, so the reason says it may be
// down instead of blaming a firewall (issue 17 item 5). A firewall is
// claimed only when gossip heard the peer after the streak's first probe
// counted as lost.
func TestPathHealthCrashedPeerNotFirewall(t *testing.T) {
	ep := netip.MustParseAddrPort("192.0.2.2:6081")
	t0 := time.Unix(1000, 0)
	const timeout = 2 * time.Second
	var h pathHealth
	h.answered(h.sent(t0), t0.Add(time.Millisecond))
	// The peer dies at t0+1.5s; probes at t0+2s, +3s, +4s go unanswered.
	// The first counts as lost at t0+4s, the third at t0+6s.
	for i := 2; i <= 4; i++ {
		h.sent(t0.Add(time.Duration(i) * time.Second))
	}
	now := t0.Add(6 * time.Second)
	for _, tc := range []struct {
		name     string
		heard    time.Time
		firewall bool
		want     string
	}{
		{"crashed: last heard before it died", t0.Add(1400 * time.Millisecond), false, "may be down"},
		{"heard after the first probe went out, before it counted as lost", t0.Add(2500 * time.Millisecond), false, "last heard the peer 4s ago"},
		{"heard after the probes failed", t0.Add(5 * time.Second), true, "gossip still hears the peer"},
		{"static peer", time.Time{}, false, "is the peer running"},
	} {
		s := h.status(now, timeout, tc.heard, ep)
		if s.State != api.PathUnreachable || !strings.Contains(s.Reason, tc.want) || strings.Contains(s.Reason, "still hears") != tc.firewall {
			t.Errorf("%s: %+v, want %q in the reason", tc.name, s, tc.want)
		}
	}
}
