package membership

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/weftnet/weft/internal/testenv"
)

// Scale: n members in-process on loopback with DefaultConfig's timing (LAN),
// started in concurrent batches of 50 through three seeds, in 10.0.0.0/8 with
// /24 subnets. "requested" gives every node its subnet (--subnet), so the run
// measures gossip alone; "auto" lets every node lease one, contests included.
// Run with
//
//	go test ./membership -run x -bench Convergence -benchtime 1x
//
// WEFT_BENCH_SIZES=50,200 picks the sizes (default 50,200,1000; "auto" is
// skipped above 200 members, see Scale in the package documentation).
func BenchmarkConvergence(b *testing.B) {
	var rows []convergence
	for _, auto := range []bool{false, true} {
		for _, n := range benchSizes(b, 50, 200, 1000) {
			if auto && n > 200 {
				continue
			}
			mode := map[bool]string{false: "requested", true: "auto"}[auto]
			b.Run(fmt.Sprintf("leases=%s/members=%d", mode, n), func(b *testing.B) {
				var r convergence
				for range b.N {
					r = converge(b, convergeSpec{n: n, auto: auto})
				}
				r.mode = mode
				rows = append(rows, r)
				b.ReportMetric(r.started.Seconds(), "s/start")
				b.ReportMetric(r.converged.Seconds(), "s/converge")
				b.ReportMetric(float64(r.bytesPerMember), "B/member")
				b.ReportMetric(r.goroutinesPerMember, "goroutines/member")
			})
		}
	}
	fmt.Printf("\n%-9s  %7s  %9s  %11s  %11s  %17s  %s\n", "leases", "members", "all start", "all see all", "heap/member", "goroutines/member", "nodes that lost a contest")
	for _, r := range rows {
		fmt.Printf("%-9s  %7d  %8.1fs  %10.1fs  %7.0f KiB  %17.1f  %d\n", r.mode, r.n, r.started.Seconds(), r.converged.Seconds(),
			float64(r.bytesPerMember)/1024, r.goroutinesPerMember, r.recontested)
	}
}

// BenchmarkMockNetwork is the startup storm of BenchmarkConvergence with
// every node leasing by gossip, over memberlist's MockNetwork instead of
// loopback sockets (mocknet_test.go): real Membership and memberlist, no
// kernel, so a thousand members fit one process. It fails on a subnet held
// twice at the end or a node that stopped. Run with
//
//	WEFT_BENCH_SIZES=200,1000 go test ./membership -run x -bench MockNetwork -benchtime 1x -timeout 20m
//
// WEFT_BENCH_SIZES picks the sizes (default 200). WEFT_BENCH_SLOW=k
// multiplies memberlist's LAN intervals and timeouts by k, for a machine
// too slow to run the members at full speed (default 1).
func BenchmarkMockNetwork(b *testing.B) {
	slow := 1
	if s := os.Getenv("WEFT_BENCH_SLOW"); s != "" {
		k, err := strconv.Atoi(s)
		if err != nil || k < 1 {
			b.Fatalf("WEFT_BENCH_SLOW: bad factor %q", s)
		}
		slow = k
	}
	timing := func(c *memberlist.Config) {
		for _, d := range []*time.Duration{&c.ProbeInterval, &c.ProbeTimeout, &c.GossipInterval,
			&c.PushPullInterval, &c.GossipToTheDeadTime, &c.TCPTimeout} {
			*d *= time.Duration(slow)
		}
	}
	for _, n := range benchSizes(b, 200) {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			var r convergence
			for range b.N {
				r = converge(b, convergeSpec{n: n, auto: true, mock: true, timing: timing})
			}
			b.ReportMetric(r.started.Seconds(), "s/start")
			b.ReportMetric(r.converged.Seconds(), "s/converge")
			round := memberlist.DefaultLANConfig().GossipInterval * time.Duration(slow)
			b.ReportMetric(r.converged.Seconds()/round.Seconds(), "gossip-rounds/converge")
			b.ReportMetric(float64(r.lostContests), "collisions")
			b.ReportMetric(float64(r.recontested), "nodes-recontested")
			b.ReportMetric(float64(r.maxRounds), "max-claim-rounds")
			b.ReportMetric(float64(r.gossipPerMember), "gossip-B/member")
			b.ReportMetric(r.idlePerMember, "idle-gossip-B/s/member")
			b.ReportMetric(float64(r.dropped), "dropped-packets")
			b.ReportMetric(float64(r.bytesPerMember), "heap-B/member")
			b.ReportMetric(float64(r.exited), "exited")
			b.ReportMetric(float64(r.duplicates), "dup-subnets")
		})
	}
}

// benchSizes returns the sizes WEFT_BENCH_SIZES lists, or def.
func benchSizes(b *testing.B, def ...int) []int {
	s := os.Getenv("WEFT_BENCH_SIZES")
	if s == "" {
		return def
	}
	var sizes []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 4 {
			b.Fatalf("WEFT_BENCH_SIZES: bad size %q", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// convergeSpec says how converge starts its members.
type convergeSpec struct {
	n      int
	auto   bool                     // every node leases by gossip; else each requests its own subnet
	mock   bool                     // over memberlist's MockNetwork; else UDP and TCP on loopback
	timing func(*memberlist.Config) // memberlist's timing; nil: LAN
}

type convergence struct {
	mode                string
	n                   int
	started, converged  time.Duration // from the first launch
	bytesPerMember      uint64        // heap
	goroutinesPerMember float64
	recontested         int // nodes that lost a contest at start and picked again
	lostContests        int // contests lost at start, all nodes together
	maxRounds           int // the most claim rounds one node needed
	exited              int // nodes whose Run ended (a subnet lost after start)
	duplicates          int // nodes holding a subnet another running node holds, at the end
	// Over the mock network only: bytes sent per member from the first
	// launch until converged, and per second while idle after.
	gossipPerMember uint64
	idlePerMember   float64
	dropped         uint64 // packets that found a member's inbox full
}

// idleSample is how long converge measures idle gossip over the mock network.
const idleSample = 10 * time.Second

func converge(b *testing.B, spec convergeSpec) convergence {
	b.StopTimer()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	n := spec.n
	name := func(i int) string { return fmt.Sprintf("node-%04d", i) }
	var mn *mockNet
	if spec.mock {
		names := make([]string, n)
		for i := range names {
			names[i] = name(i)
		}
		mn = newMockNet(names)
	}
	quiet := slog.New(slog.DiscardHandler)
	cfg := func(i int, seeds ...string) Config {
		c := testConfig(name(i), b.TempDir(), seeds...)
		c.Memberlist = spec.timing // nil: LAN
		if mn != nil {
			t := mn.transport(c.Name)
			c.Memberlist = func(mc *memberlist.Config) {
				if spec.timing != nil {
					spec.timing(mc)
				}
				mc.Transport = t
			}
		}
		c.Log = quiet
		c.Network = netip.MustParsePrefix("10.0.0.0/8")
		c.SettleWindow = DefaultConfig().SettleWindow
		c.LeaveTimeout = 100 * time.Millisecond
		if !spec.auto {
			c.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte((i + 1) >> 8), byte(i + 1), 0}), 24)
		}
		return c
	}
	nodes := make([]*testNode, n)
	var mu sync.Mutex
	var errs []string
	b.StartTimer()
	t0 := time.Now()
	nodes[0] = mustLaunch(b, cfg(0))
	seeds := []string{nodes[0].seed()}
	for i := 1; i < 3; i++ {
		nodes[i] = mustLaunch(b, cfg(i, seeds[0]))
		seeds = append(seeds, nodes[i].seed())
	}
	const batch = 50
	for lo := 3; lo < n; lo += batch {
		var wg sync.WaitGroup
		for i := lo; i < min(n, lo+batch); i++ {
			wg.Go(func() {
				tn, err := launch(b, cfg(i, seeds[i%3]))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err.Error())
				}
				nodes[i] = tn
			})
		}
		wg.Wait()
	}
	if len(errs) > 0 {
		b.Fatalf("%d nodes failed to start, e.g. %s", len(errs), errs[0])
	}
	started := time.Since(t0)
	stopped := map[*testNode]error{}
	testenv.WaitFor(b, 5*time.Minute, "every running member sees all others", func() bool {
		for _, tn := range nodes {
			if _, ok := stopped[tn]; !ok && len(tn.done) > 0 {
				err := <-tn.done
				tn.done <- err // for stop
				stopped[tn] = err
			}
		}
		for _, tn := range nodes {
			if _, ok := stopped[tn]; !ok && len(tn.peerSet()) != n-1-len(stopped) {
				return false
			}
		}
		return true
	})
	converged := time.Since(t0)
	b.StopTimer()

	r := convergence{n: n, started: started, converged: converged, exited: len(stopped)}
	if mn != nil {
		r.gossipPerMember = mn.sent.Load() / uint64(n)
		sent := mn.sent.Load()
		time.Sleep(idleSample)
		r.idlePerMember = float64(mn.sent.Load()-sent) / idleSample.Seconds() / float64(n)
		r.dropped = mn.dropped.Load()
	}
	subnets := map[netip.Prefix]bool{}
	for _, tn := range nodes {
		if _, ok := stopped[tn]; ok {
			continue
		}
		if subnets[tn.subnet] {
			r.duplicates++
		}
		subnets[tn.subnet] = true
	}
	for _, tn := range nodes {
		if tn.m.rounds > 1 {
			r.recontested++
			r.lostContests += tn.m.rounds - 1
		}
		r.maxRounds = max(r.maxRounds, tn.m.rounds)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if after.HeapAlloc > before.HeapAlloc {
		r.bytesPerMember = (after.HeapAlloc - before.HeapAlloc) / uint64(n)
	}
	r.goroutinesPerMember = float64(runtime.NumGoroutine()-g0) / float64(n)
	var wg sync.WaitGroup
	for _, tn := range nodes {
		wg.Go(tn.kill) // no goodbyes: 1000 leave broadcasts would only slow the teardown
	}
	wg.Wait()
	for tn, err := range stopped {
		b.Errorf("%s stopped: %v", tn.cfg.Name, err)
	}
	if r.duplicates > 0 {
		b.Errorf("%d subnets handed out twice", r.duplicates)
	}
	b.StartTimer()
	return r
}

// BenchmarkFailureDetection measures, with DefaultConfig's memberlist timing,
// how long after a crash every other member has dropped the crashed one.
func BenchmarkFailureDetection(b *testing.B) {
	const n = 5
	var total, worst time.Duration
	for range b.N {
		b.StopTimer()
		cfg := func(name string, seeds ...string) Config {
			c := testConfig(name, b.TempDir(), seeds...)
			c.Memberlist = nil
			c.Log = slog.New(slog.DiscardHandler)
			return c
		}
		nodes := []*testNode{mustLaunch(b, cfg("n0"))}
		for i := 1; i < n; i++ {
			nodes = append(nodes, mustLaunch(b, cfg(fmt.Sprintf("n%d", i), nodes[0].seed())))
		}
		for _, tn := range nodes {
			testenv.WaitFor(b, 30*time.Second, "all see all", func() bool { return len(tn.peerSet()) == n-1 })
		}
		b.StartTimer()
		victim := nodes[n-1]
		victim.kill()
		took := testenv.WaitFor(b, time.Minute, "the crashed member is dropped", func() bool {
			for _, tn := range nodes[:n-1] {
				if _, ok := tn.peer(victim.cfg.Name); ok {
					return false
				}
			}
			return true
		})
		total += took
		worst = max(worst, took)
		b.StopTimer()
		for _, tn := range nodes {
			tn.kill()
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/detect")
	b.ReportMetric(worst.Seconds(), "s/worst")
}
