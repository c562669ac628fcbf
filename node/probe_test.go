package node

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/tunnel/tunneltest"
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
	var last uint64
	for i := 1; i <= 3; i++ {
		last = h.sent(t0.Add(time.Duration(i) * time.Second))
	}
	if h.answered(last+1, t0) { // no probe carried it: refused (the caller counts it)
		t.Fatal("answer with a token no probe carried was taken")
	}
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
	if !h.answered(last, t0.Add(6*time.Second)) {
		t.Fatal("answer to the last probe refused")
	}
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

// controlMsg is a control datagram of kind with token, as a's codec seals it.
func controlMsg(t *testing.T, n *simNode, kind byte, token uint64) []byte {
	t.Helper()
	buf := make([]byte, n.codec.Headroom()+probeLen+n.codec.Tailroom())
	off := n.codec.Headroom()
	buf[off], buf[off+1] = kind, probeVersion
	binary.BigEndian.PutUint64(buf[off+8:], token)
	d, err := n.codec.SealControl(buf, off, probeLen)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// An answer whose token no probe carried (a guess, or a probe's answer
// redirected by someone on the path) is dropped and counted; it does not
// make the path ok.
func TestProbeAnswerWrongToken(t *testing.T) {
	sn, a, b := pair(t)
	for i := range 3 {
		sn.send(a.conn.ep, b.conn.ep, controlMsg(t, a, probeReply, uint64(i+1)))
	}
	testenv.WaitFor(t, patience, "bad_probe_token drops", func() bool { return drop(b, "bad_probe_token") == 3 })
	// b's own probes still work: their tokens are answered.
	testenv.WaitFor(t, patience, "path b→a ok", func() bool { return b.Status().Peers[0].Path.State == api.PathOK })
	if d := drop(b, "bad_probe_token"); d != 3 {
		t.Fatalf("%d bad_probe_token drops, want 3: genuine answers counted", d)
	}
}

// Probe tokens are random: not a sequence, and not repeated.
func TestProbeTokensRandom(t *testing.T) {
	var h pathHealth
	now := time.Unix(1000, 0)
	seen := map[uint64]bool{}
	var prev uint64
	for i := range 100 {
		tok := h.sent(now)
		if seen[tok] || (i > 0 && tok == prev+1) {
			t.Fatalf("probe %d: token %d repeats or follows %d", i, tok, prev)
		}
		seen[tok], prev = true, tok
	}
}

// The outside loop hands probe answers over without waiting: with nobody
// sending them (a node that is not running), the queue fills, and further
// probes are counted as control_overflow while control returns at once.
func TestControlNeverBlocks(t *testing.T) {
	_, a, _ := pair(t)
	codec, _ := encap.NewPlain(1)
	cfg := DefaultConfig()
	cfg.Name, cfg.Insecure, cfg.Subnet = "c", true, netip.MustParsePrefix("10.244.3.0/24")
	n, err := newNode(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Underlay{}, 1400, codec, []tunnel.Device{tunneltest.New("weft0", 1400, 8)}, []Transport{&simConn{}})
	if err != nil {
		t.Fatal(err)
	}
	n.setPeers([]peer.Info{testPeer("a", "10.244.1.0/24", "192.0.2.1:6081")})
	p := n.table.Load().peers[0]
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range answerQueue + 5 {
			n.control(p, controlMsg(t, a, probeRequest, uint64(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(patience):
		t.Fatal("control blocked with the answer queue full")
	}
	if d := n.drops.snapshot()["control_overflow"]; d != 5 {
		t.Fatalf("%d control_overflow drops, want 5", d)
	}
}
