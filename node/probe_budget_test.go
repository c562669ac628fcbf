package node

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

// probeSim drives a prober over peers in simulated time: each tick plans at
// now, sends the probes (records them), lets the peers that answer answer a
// millisecond later, and moves now on by one interval.
type probeSim struct {
	t        testing.TB
	pr       *prober
	interval time.Duration
	peers    []*Peer
	now      time.Time
	silent   map[*Peer]bool // these never answer
	probes   map[*Peer]int  // probes sent to each peer so far
	total    int
}

const simBudget = 20 // probes a second: DefaultConfig's

func newProbeSim(t testing.TB, n int) *probeSim {
	s := &probeSim{
		t: t, interval: time.Second, now: time.Unix(1_000_000, 0),
		silent: map[*Peer]bool{}, probes: map[*Peer]int{},
	}
	s.pr = newProber(s.interval, simBudget)
	for range n {
		s.addPeer()
	}
	return s
}

func (s *probeSim) addPeer() *Peer {
	i := len(s.peers)
	p := &Peer{Info: peer.Info{
		Name:     fmt.Sprintf("n%04d", i),
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
		Endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 6081),
		State:    peer.Static,
	}, counters: &counters{}}
	s.peers = append(s.peers, p)
	return p
}

// confirm makes every peer look answered at the last tick (a warm, idle
// cluster): each got one probe, answered.
func (s *probeSim) confirm() {
	for _, p := range s.peers {
		p.path.answered(p.path.sent(s.now.Add(-s.interval)), s.now.Add(-s.interval+time.Millisecond))
	}
}

// tick runs one tick and returns the peers probed, in order (valid until
// the next tick).
func (s *probeSim) tick() []*Peer {
	due := s.pr.plan(s.now, s.peers) // valid until the next tick
	if len(due) > s.pr.perTick {
		s.t.Fatalf("tick probed %d peers, budget %d", len(due), s.pr.perTick)
	}
	for _, p := range due {
		seq := p.path.sent(s.now)
		s.probes[p]++
		s.total++
		if !s.silent[p] {
			p.path.answered(seq, s.now.Add(time.Millisecond))
		}
	}
	s.now = s.now.Add(s.interval)
	return due
}

func (s *probeSim) status(p *Peer) api.PathStatus {
	return p.path.status(s.now, probeTimeoutIntervals*s.interval, time.Time{}, p.Endpoint)
}

// An idle cluster of 1,000 costs the sweep's share of the budget and no
// more, and the sweep reaches every peer, each once, in 1,000/share ticks.
func TestProbePlanIdleSweep(t *testing.T) {
	s := newProbeSim(t, 1000)
	s.confirm()
	share := s.pr.sweeps
	if share != simBudget/sweepShare {
		t.Fatalf("sweep share %d a tick, want %d", share, simBudget/sweepShare)
	}
	// Checked one interval ago: nothing is due until sweepIntervals have passed.
	for i := range sweepIntervals - 1 {
		if due := s.tick(); len(due) != 0 {
			t.Fatalf("tick %d: %d probes of freshly checked idle peers", i, len(due))
		}
	}
	ticks := 1000 / share
	for i := range ticks {
		if due := s.tick(); len(due) != share {
			t.Fatalf("sweep tick %d: %d probes, want the sweep's share %d", i, len(due), share)
		}
	}
	for _, p := range s.peers {
		if s.probes[p] != 1 {
			t.Fatalf("peer %s probed %d times in %d ticks, want once", p.Name, s.probes[p], ticks)
		}
		if st := s.status(p); st.State != api.PathOK {
			t.Fatalf("peer %s: %+v", p.Name, st)
		}
	}
	// The oldest is swept next: n0000 again, then n0001…
	if due := s.tick(); due[0].Name != "n0000" || due[1].Name != "n0001" {
		t.Fatalf("second round starts with %s %s", due[0].Name, due[1].Name)
	}
}

// A small idle cluster is probed every sweepIntervals intervals, each peer
// as often as the others, and never more than the sweep's share a tick.
func TestProbePlanSmallCluster(t *testing.T) {
	s := newProbeSim(t, simBudget)
	s.tick() // all new: probed at once
	s.probes = map[*Peer]int{}
	const rounds = 5
	for i := range rounds * sweepIntervals {
		if due := s.tick(); len(due) > s.pr.sweeps {
			t.Fatalf("tick %d: %d probes, over the sweep's share %d", i, len(due), s.pr.sweeps)
		}
	}
	for _, p := range s.peers {
		if n := s.probes[p]; n < rounds-1 || n > rounds {
			t.Fatalf("peer %s probed %d times in %d intervals, want about %d", p.Name, n, rounds*sweepIntervals, rounds)
		}
	}
}

// A peer we send data to and hear nothing from is probed at the next tick,
// before the sweep.
func TestProbePlanSilentPeer(t *testing.T) {
	s := newProbeSim(t, 1000)
	s.confirm()
	s.tick()
	p := s.peers[777]
	p.txPackets.Add(5)
	if due := s.tick(); due[0] != p {
		t.Fatalf("first probe of the tick went to %s, want the silent %s", due[0].Name, p.Name)
	}
	// Still sending, still silent: probed every tick.
	for range 3 {
		p.txPackets.Add(1)
		if due := s.tick(); due[0] != p {
			t.Fatalf("silent peer not probed first: %s", due[0].Name)
		}
	}
}

// A peer that sends us data is not probed, and its path is ok from the data
// alone, fresh as of the tick that saw it; three intervals after the data
// stops, the probes decide again.
func TestProbePlanDataIsEvidence(t *testing.T) {
	s := newProbeSim(t, 1000)
	p := s.peers[500]
	s.silent[p] = true // no probe to it is ever answered
	for range 100 {
		p.rxPackets.Add(3)
		p.txPackets.Add(3)
		s.tick()
	}
	if s.probes[p] != 0 {
		t.Fatalf("peer sending data probed %d times", s.probes[p])
	}
	st := s.status(p)
	if st.State != api.PathOK || st.Reason != "" || st.LastOK != nil || st.Checked == nil || !st.Checked.Equal(s.now.Add(-s.interval)) {
		t.Fatalf("path of a peer sending data: %+v (now %v)", st, s.now)
	}
	// The data stops: never confirmed by a probe, the peer is probed at the
	// next tick; its probes go unanswered, and it is unreachable once the
	// data has aged out and three probes are lost.
	stopped := s.now
	for s.status(p).State != api.PathUnreachable {
		if s.now.Sub(stopped) > 10*s.interval {
			t.Fatalf("not unreachable 10 ticks after the data stopped: %+v", s.status(p))
		}
		if s.tick(); s.probes[p] == 0 {
			t.Fatal("not probed at the first tick after the data stopped")
		}
	}
	t.Logf("unreachable %v after the data stopped", s.now.Sub(stopped))
	if st := s.status(p); st.Checked == nil || !st.Checked.Equal(s.now) {
		t.Fatalf("after the data stopped: %+v (now %v)", st, s.now)
	}
}

// A peer whose probes go unanswered is probed every tick, whatever the
// sweep's backlog, is unreachable after three lost in a row and ok again at
// the first answer.
func TestProbePlanUnanswered(t *testing.T) {
	s := newProbeSim(t, 1000)
	s.confirm()
	p := s.peers[999] // the sweep reaches it last
	s.silent[p] = true
	p.txPackets.Add(1) // traffic with no answer: probed at once
	s.tick()
	var ticks int
	for ; s.status(p).State != api.PathUnreachable; ticks++ {
		if ticks > unreachableAfter+probeTimeoutIntervals {
			t.Fatalf("not unreachable after %d ticks: %+v", ticks, s.status(p))
		}
		if due := s.tick(); !slices.Contains(due, p) {
			t.Fatalf("unanswered peer not probed at tick %d", ticks)
		}
	}
	t.Logf("unreachable %d intervals after the first unanswered probe was sent", ticks+1)
	st := s.status(p)
	if st.Checked == nil || s.now.Sub(*st.Checked) > s.interval || st.Loss == 0 {
		t.Fatalf("unreachable path: %+v (now %v)", st, s.now)
	}
	delete(s.silent, p)
	if due := s.tick(); !slices.Contains(due, p) {
		t.Fatal("unreachable peer not probed")
	}
	if st := s.status(p); st.State != api.PathOK {
		t.Fatalf("after an answer: %+v", st)
	}
}

// A new peer is probed at the next tick, ahead of the sweep; the order of
// the needs is silent, unanswered, new, sweep.
func TestProbePlanNewPeerFirst(t *testing.T) {
	s := newProbeSim(t, 1000)
	s.confirm()
	s.tick()
	p := s.addPeer()
	if due := s.tick(); due[0] != p {
		t.Fatalf("first probe went to %s, want the new %s", due[0].Name, p.Name)
	}
	if st := s.status(p); st.State != api.PathOK {
		t.Fatalf("new peer after its probe: %+v", st)
	}

	unanswered, silent := s.peers[10], s.peers[20]
	s.silent[unanswered] = true
	unanswered.txPackets.Add(1)
	s.tick() // unanswered's probe goes out, is lost
	silent.txPackets.Add(1)
	fresh := s.addPeer()
	due := s.tick()
	if want := []*Peer{silent, unanswered, fresh}; !slices.Equal(due[:3], want) {
		t.Fatalf("order %s %s %s, want silent, unanswered, new", due[0].Name, due[1].Name, due[2].Name)
	}
}

// Dead and left peers are shown, not routed, and not probed.
func TestProbePlanSkipsUnroutable(t *testing.T) {
	s := newProbeSim(t, 3)
	s.peers[1].State = peer.Dead
	s.peers[0].txPackets.Add(1) // keeps n0000 and n0002 in need of probes
	for i := range 3 {
		s.peers[0].txPackets.Add(1)
		s.peers[2].txPackets.Add(1)
		if due := s.tick(); slices.Contains(due, s.peers[1]) || len(due) != 2 {
			t.Fatalf("tick %d: probed %d peers, the dead one among them: %v", i, len(due), slices.Contains(due, s.peers[1]))
		}
	}
}

// A tick allocates nothing once its scratch has grown.
func TestProbePlanAllocs(t *testing.T) {
	s := newProbeSim(t, 1000)
	s.confirm()
	s.tick()
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range s.pr.plan(s.now, s.peers) {
			p.path.answered(p.path.sent(s.now), s.now)
		}
		s.now = s.now.Add(s.interval)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocs per tick of 1,000 peers", allocs)
	}
}

func TestNewProberBudget(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		budget   int
		want     int
		sweeps   int
	}{
		{time.Second, 20, 20, 5},
		{100 * time.Millisecond, 20, 2, 1},
		{100 * time.Millisecond, 5, 1, 1}, // at least one a tick
		{time.Minute, 20, 1200, 300},
	} {
		pr := newProber(tc.interval, tc.budget)
		if pr.perTick != tc.want || pr.sweeps != tc.sweeps {
			t.Errorf("interval %v budget %d: %d a tick, %d of them sweeps; want %d, %d", tc.interval, tc.budget, pr.perTick, pr.sweeps, tc.want, tc.sweeps)
		}
	}
}

// BenchmarkProbeIdle counts the probes one node sends a second of simulated
// idle time (every peer answers) and the CPU a tick takes. Each probe costs
// the cluster two datagrams (the probe and its answer); before the budget a
// node sent one probe a second to every peer.
func BenchmarkProbeIdle(b *testing.B) {
	for _, n := range []int{20, 200, 1000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			s := newProbeSim(b, n)
			s.confirm()
			for range 2 * n / simBudget { // past the warm-up
				s.tick()
			}
			s.total = 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.tick()
			}
			secs := float64(b.N) * s.interval.Seconds()
			b.ReportMetric(float64(s.total)/secs, "probes/s")
			b.ReportMetric(2*float64(s.total)/secs, "datagrams/s")
			b.ReportMetric(float64(n), "probes/s-before")
		})
	}
}

// A real node with 200 static peers, none of which answers (they are not
// there): every path is unanswered, the most urgent need short of traffic,
// and still the node sends no more than its budget. The ticker never fires
// early, so k probes take at least (k/perTick − 1) intervals.
func TestSimProbeBudget(t *testing.T) {
	const peers = 200
	sn := &simNet{tap: make(chan datagram, 4096)}
	var infos []peer.Info
	for i := range peers {
		infos = append(infos, testPeer(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.244.%d.0/24", i+2), fmt.Sprintf("198.18.0.%d:6081", i+1)))
	}
	start := time.Now()
	a := startSim(t, sn, "a", "10.244.1.0/24", "192.0.2.1:6081", infos...)
	perTick := newProber(a.cfg.ProbeInterval, a.cfg.ProbeBudget).perTick
	const want = 20
	got := 0
	for got < want {
		select {
		case d := <-sn.tap:
			if d.from == a.conn.ep {
				got++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d probes in 10s", got)
		}
	}
	elapsed := time.Since(start)
	if min := time.Duration(want/perTick-1) * a.cfg.ProbeInterval; elapsed < min {
		t.Fatalf("%d probes in %v to %d silent peers: over the budget of %d a second (%d a tick)", got, elapsed, peers, a.cfg.ProbeBudget, perTick)
	}
	t.Logf("%d probes in %v", got, elapsed)
}
