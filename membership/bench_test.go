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
	sizes := []int{50, 200, 1000}
	if s := os.Getenv("WEFT_BENCH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 4 {
				b.Fatalf("WEFT_BENCH_SIZES: bad size %q", f)
			}
			sizes = append(sizes, n)
		}
	}
	var rows []convergence
	for _, auto := range []bool{false, true} {
		for _, n := range sizes {
			if auto && n > 200 {
				continue
			}
			mode := map[bool]string{false: "requested", true: "auto"}[auto]
			b.Run(fmt.Sprintf("leases=%s/members=%d", mode, n), func(b *testing.B) {
				var r convergence
				for range b.N {
					r = converge(b, n, auto)
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

type convergence struct {
	mode                string
	n                   int
	started, converged  time.Duration // from the first launch
	bytesPerMember      uint64
	goroutinesPerMember float64
	recontested         int // nodes that lost a contest at start and picked again
}

func converge(b *testing.B, n int, auto bool) convergence {
	b.StopTimer()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	quiet := slog.New(slog.DiscardHandler)
	cfg := func(i int, seeds ...string) Config {
		c := testConfig(fmt.Sprintf("node-%04d", i), b.TempDir(), seeds...)
		c.Memberlist = nil // LAN timing
		c.Log = quiet
		c.Network = netip.MustParsePrefix("10.0.0.0/8")
		c.SettleWindow = DefaultConfig().SettleWindow
		c.LeaveTimeout = 100 * time.Millisecond
		if !auto {
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
	testenv.WaitFor(b, 5*time.Minute, "every member sees all others", func() bool {
		all := true
		for _, tn := range nodes {
			if len(tn.done) > 0 {
				b.Fatalf("%s stopped: %v", tn.cfg.Name, <-tn.done)
			}
			all = all && len(tn.peerSet()) == n-1
		}
		return all
	})
	converged := time.Since(t0)
	b.StopTimer()

	r := convergence{n: n, started: started, converged: converged}
	subnets := map[netip.Prefix]bool{}
	for _, tn := range nodes {
		if subnets[tn.subnet] {
			b.Errorf("subnet %s handed out twice", tn.subnet)
		}
		subnets[tn.subnet] = true
		if tn.m.rounds > 1 {
			r.recontested++
		}
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
