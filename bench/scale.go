package bench

// The scale harness (`weft bench --scale 50,100,200`): for each size N it
// builds N hosts on one lab bridge, starts h1, then h2..hN all at once
// joining it, and measures what an operator of a big cluster cares about:
// how long until every node routes to every other with distinct subnets,
// whether any node exited, what an idle node costs (CPU, memory, bytes on
// the underlay), and how long a crashed tenth takes to be withdrawn from
// every route.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/lab"
)

// ScaleConfig describes a scale run.
type ScaleConfig struct {
	Sizes    []int         // cluster sizes to measure, each in a lab of its own; 2 to 250
	Binary   string        // the weft executable; required
	Prefix   string        // namespace name prefix; default "weft-scale"
	Idle     time.Duration // window for idle CPU, memory and bytes; default 20s
	Timeout  time.Duration // bound on convergence and on withdrawal; default 3m
	LogDir   string        // keep every node's output here, if set
	Progress io.Writer     // progress lines; nil is quiet
}

// ScalePoint is what one cluster size measured. Times are -1 when the
// cluster did not get there within the timeout.
type ScalePoint struct {
	Nodes            int     `json:"nodes"`
	ConvergeSeconds  float64 `json:"converge_seconds"`  // storm start → every node routes to every other, distinct subnets
	Exited           int     `json:"exited"`            // nodes that exited by themselves
	DuplicateSubnets int     `json:"duplicate_subnets"` // nodes holding a subnet another node holds
	IdleCPUPercent   float64 `json:"idle_cpu_percent"`  // per node, median, of one core
	IdleCPUMax       float64 `json:"idle_cpu_percent_max"`
	RSSMiB           float64 `json:"rss_mib"` // per node, median
	RSSMaxMiB        float64 `json:"rss_mib_max"`
	// PrivateMiB is the median of RssAnon: what each node adds. RSS also
	// counts the pages of the weft binary that every node shares (some
	// 26 MiB of text and read-only data, client-go's included).
	PrivateMiB      float64 `json:"private_mib"`
	UnderlayBps     float64 `json:"underlay_bytes_per_second"` // bytes a node sends on the underlay while idle (gossip and probes), median
	DataDatagramsPs float64 `json:"data_datagrams_per_second"` // datagrams a node sends on its data port while idle (probes and answers), median
	Killed          int     `json:"killed"`                    // nodes SIGKILLed for the withdrawal test
	WithdrawSeconds float64 `json:"withdraw_seconds"`          // SIGKILL → no survivor routes to them
}

// ScaleResult is a whole scale run.
type ScaleResult struct {
	Machine Machine      `json:"machine"`
	Command string       `json:"command,omitempty"`
	Points  []ScalePoint `json:"points"`
}

// RunScale measures every size in cfg.Sizes. It returns what it measured
// even when a size fails.
func RunScale(ctx context.Context, cfg ScaleConfig) (*ScaleResult, error) {
	if cfg.Binary == "" {
		return nil, errors.New("bench: ScaleConfig needs Binary")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "weft-scale"
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 20 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	for _, n := range cfg.Sizes {
		if n < 2 || n > 250 {
			return nil, fmt.Errorf("scale size %d: want 2 to 250 (one /24 underlay)", n)
		}
	}
	if err := PrepareOutputs(cfg.LogDir, nil); err != nil {
		return nil, err
	}
	res := &ScaleResult{Machine: machineInfo(ctx, cfg.Binary)}
	restore, err := raiseNeighbourLimits(slices.Max(cfg.Sizes))
	if err != nil {
		return nil, err
	}
	defer restore()
	for _, n := range cfg.Sizes {
		p, err := scaleOnce(ctx, cfg, n)
		res.Points = append(res.Points, p)
		if err != nil {
			return res, fmt.Errorf("%d nodes: %w", n, err)
		}
	}
	return res, nil
}

// neighbourSysctls are the kernel's neighbour-table limits. The table is
// shared by every namespace, and N hosts on one bridge hold N·(N−1) entries:
// past gc_thresh3 (1024 by default, about 33 hosts) the kernel drops packets
// and every overlay looks broken.
var neighbourSysctls = []string{
	"/proc/sys/net/ipv4/neigh/default/gc_thresh1",
	"/proc/sys/net/ipv4/neigh/default/gc_thresh2",
	"/proc/sys/net/ipv4/neigh/default/gc_thresh3",
}

// raiseNeighbourLimits makes room for n hosts' neighbour entries and returns
// a func that puts the old limits back.
func raiseNeighbourLimits(n int) (restore func(), err error) {
	need := 2 * (n + 1) * (n + 1) // hosts and the switch, with slack
	old := make([]string, len(neighbourSysctls))
	for i, f := range neighbourSysctls {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("neighbour table limits: %w", err)
		}
		old[i] = strings.TrimSpace(string(b))
	}
	restore = func() { // thresh1 down first, so 1 ≤ 2 ≤ 3 holds throughout
		for i, f := range neighbourSysctls {
			os.WriteFile(f, []byte(old[i]), 0o644)
		}
	}
	for i := len(neighbourSysctls) - 1; i >= 0; i-- { // thresh3 up first
		// thresh3 = need, thresh2 = need/2, thresh1 = need/4
		cur, _ := strconv.Atoi(old[i])
		want := max(cur, need>>(len(neighbourSysctls)-1-i))
		if err := os.WriteFile(neighbourSysctls[i], []byte(strconv.Itoa(want)), 0o644); err != nil {
			restore()
			return nil, fmt.Errorf("raise %s: %w", neighbourSysctls[i], err)
		}
	}
	return restore, nil
}

// scaleOnce measures one cluster of n nodes.
func scaleOnce(ctx context.Context, cfg ScaleConfig, n int) (p ScalePoint, err error) {
	p = ScalePoint{Nodes: n, ConvergeSeconds: -1, WithdrawSeconds: -1}
	say := func(format string, a ...any) {
		fmt.Fprintf(cfg.Progress, "scale %d: "+format+"\n", append([]any{n}, a...)...)
	}
	dir, err := os.MkdirTemp("", "weft-scale-")
	if err != nil {
		return p, err
	}
	defer os.RemoveAll(dir)
	prefix := fmt.Sprintf("%s%d", cfg.Prefix, n)
	if err := lab.Cleanup(prefix); err != nil {
		return p, err
	}
	say("building %d hosts on one bridge", n)
	l, err := lab.New(ctx, lab.Config{Hosts: n, Prefix: prefix, Offloads: true, LogDir: cfg.LogDir})
	if err != nil {
		return p, err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	nodes, err := l.PrepareWeft(ctx, lab.WeftConfig{Binary: cfg.Binary, Dir: dir, Gossip: true})
	if err != nil {
		return p, err
	}
	if err := nodes[0].Start(ctx); err != nil {
		return p, err
	}
	say("h1 is up; starting h2..h%d at once", n)
	start := time.Now()
	for _, w := range nodes[1:] {
		if err := w.Launch(); err != nil {
			return p, err
		}
	}
	ok, err := waitAll(ctx, cfg.Timeout, nodes, func(w *lab.Weft, s *api.Status) bool {
		return routesToAll(s, nodes, nil)
	}, func(done int) {
		say("%d of %d nodes route to every other (%s)", done, n, time.Since(start).Round(time.Second))
	})
	if ok {
		p.ConvergeSeconds = time.Since(start).Seconds()
	}
	p.Exited, p.DuplicateSubnets = exitedAndDuplicates(ctx, nodes, say)
	if err != nil || !ok {
		return p, errors.Join(err, fmt.Errorf("no convergence within %s", cfg.Timeout))
	}
	say("converged in %.1fs; measuring %s idle", p.ConvergeSeconds, cfg.Idle)
	profiled := make(chan error, 1)
	if cfg.LogDir != "" { // where an idle node's CPU goes, for `go tool pprof`
		go func() {
			profiled <- saveCPUProfile(ctx, nodes[n/2], cfg.Idle, filepath.Join(cfg.LogDir, fmt.Sprintf("idle-cpu-%d.pprof", n)))
		}()
	} else {
		profiled <- nil
	}
	if err := errors.Join(measureIdle(ctx, nodes, cfg.Idle, &p), <-profiled); err != nil {
		return p, err
	}
	if cfg.LogDir != "" { // and what its memory holds
		if err := saveProfile(ctx, nodes[n/2], "heap", filepath.Join(cfg.LogDir, fmt.Sprintf("idle-heap-%d.pprof", n)), 10*time.Second); err != nil {
			return p, err
		}
	}

	// Crash a tenth, spread over the cluster (never h1, the seed).
	var killed []*lab.Weft
	gone := map[string]bool{}
	for i := 1; i < n && len(killed) < max(1, n/10); i += max(1, n/max(1, n/10)) {
		killed = append(killed, nodes[i])
		gone[nodes[i].Name] = true
	}
	p.Killed = len(killed)
	start = time.Now()
	for _, w := range killed {
		w.Proc.Stop(syscall.SIGKILL, 5*time.Second)
	}
	survivors := slices.DeleteFunc(slices.Clone(nodes), func(w *lab.Weft) bool { return gone[w.Name] })
	say("SIGKILLed %d nodes; waiting for every survivor to withdraw their routes", len(killed))
	ok, err = waitAll(ctx, cfg.Timeout, survivors, func(w *lab.Weft, s *api.Status) bool {
		for _, ps := range s.Peers {
			if gone[ps.Name] && ps.State.Routable() {
				return false
			}
		}
		return true
	}, func(done int) {
		say("%d of %d survivors withdrew them (%s)", done, len(survivors), time.Since(start).Round(time.Second))
	})
	if ok {
		p.WithdrawSeconds = time.Since(start).Seconds()
	}
	if err != nil || !ok {
		return p, errors.Join(err, fmt.Errorf("routes not withdrawn within %s", cfg.Timeout))
	}
	say("withdrawn in %.1fs", p.WithdrawSeconds)
	return p, nil
}

// routesToAll reports whether s routes to every node but itself and those
// in skip.
func routesToAll(s *api.Status, nodes []*lab.Weft, skip map[string]bool) bool {
	routed := 0
	for _, ps := range s.Peers {
		if ps.State.Routable() && !skip[ps.Name] {
			routed++
		}
	}
	return routed == len(nodes)-1-len(skip)
}

// waitAll polls every node's status until cond holds for all of them (a
// node that holds it is not asked again), or timeout passes, which is no
// error: it reports false. progress is told how many hold every 5 s.
func waitAll(ctx context.Context, timeout time.Duration, nodes []*lab.Weft, cond func(*lab.Weft, *api.Status) bool, progress func(done int)) (bool, error) {
	done := make([]bool, len(nodes))
	last := time.Now()
	err := lab.WaitFor(ctx, timeout, "every node", func() error {
		var mu sync.Mutex
		count := 0
		forEach(nodes, 16, func(i int, w *lab.Weft) {
			if !done[i] {
				s, err := w.Status(ctx)
				if err != nil || !cond(w, s) {
					return
				}
			}
			mu.Lock()
			done[i] = true
			count++
			mu.Unlock()
		})
		if count == len(nodes) {
			return nil
		}
		if time.Since(last) >= 5*time.Second {
			progress(count)
			last = time.Now()
		}
		return fmt.Errorf("%d of %d nodes", count, len(nodes))
	})
	if errors.Is(err, lab.ErrTimeout) {
		return false, nil
	}
	return err == nil, err
}

// forEach runs f on every node, at most par at a time.
func forEach(nodes []*lab.Weft, par int, f func(int, *lab.Weft)) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, w := range nodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i, w)
		})
	}
	wg.Wait()
}

// exitedAndDuplicates counts nodes that exited, saying why for the first
// few, and nodes whose subnet another node also holds.
func exitedAndDuplicates(ctx context.Context, nodes []*lab.Weft, say func(string, ...any)) (exited, dups int) {
	holders := map[netip.Prefix]int{}
	for _, w := range nodes {
		select {
		case <-w.Proc.Done():
			if exited++; exited <= 3 {
				out := strings.Split(strings.TrimSpace(w.Proc.Output()), "\n")
				say("%s exited (%v); its last line: %s", w.Name, w.Proc.Wait(), out[len(out)-1])
			}
			continue
		default:
		}
		if s, err := w.Status(ctx); err == nil {
			holders[s.Subnet]++
		}
	}
	for _, c := range holders {
		if c > 1 {
			dups += c
		}
	}
	return exited, dups
}

// measureIdle takes every node's CPU time, underlay bytes and data-port
// datagrams across window, and its memory at the end.
func measureIdle(ctx context.Context, nodes []*lab.Weft, window time.Duration, p *ScalePoint) error {
	type sample struct {
		cpu      time.Duration
		txBytes  uint64
		datagram uint64
	}
	take := func() ([]sample, error) {
		out := make([]sample, len(nodes))
		var mu sync.Mutex
		var errs []error
		forEach(nodes, 16, func(i int, w *lab.Weft) {
			cpu, err1 := procCPU(w.Proc.Pid())
			b, err2 := w.Host.Run(ctx, "cat", "/sys/class/net/"+w.Host.Link+"/statistics/tx_bytes")
			tx, err3 := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
			s, err4 := w.Status(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", w.Name, err))
				return
			}
			out[i] = sample{cpu, tx, s.IO.UDP.WriteDatagrams}
		})
		return out, errors.Join(errs...)
	}
	before, err := take()
	if err != nil {
		return err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window):
	}
	after, err := take()
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	var cpu, rss, anon, bps, dps []float64
	for i, w := range nodes {
		cpu = append(cpu, 100*(after[i].cpu-before[i].cpu).Seconds()/secs)
		bps = append(bps, float64(after[i].txBytes-before[i].txBytes)/secs)
		dps = append(dps, float64(after[i].datagram-before[i].datagram)/secs)
		r, err := procRSS(w.Proc.Pid())
		if err != nil {
			return fmt.Errorf("%s: %w", w.Name, err)
		}
		a, err := procStatus(w.Proc.Pid(), "RssAnon")
		if err != nil {
			return fmt.Errorf("%s: %w", w.Name, err)
		}
		rss, anon = append(rss, float64(r)/(1<<20)), append(anon, float64(a)/(1<<20))
	}
	c, m := Summarize(cpu), Summarize(rss)
	p.IdleCPUPercent, p.IdleCPUMax = c.Median, c.Max
	p.RSSMiB, p.RSSMaxMiB, p.PrivateMiB = m.Median, m.Max, Summarize(anon).Median
	p.UnderlayBps, p.DataDatagramsPs = Summarize(bps).Median, Summarize(dps).Median
	return nil
}

// saveCPUProfile writes a CPU profile of w over window to file. The
// profiler runs inside the node, so it sees its own goroutines, memberlist's
// included, at the cost of about 1 % of one core while it runs.
func saveCPUProfile(ctx context.Context, w *lab.Weft, window time.Duration, file string) error {
	return saveProfile(ctx, w, fmt.Sprintf("profile?seconds=%d", int(window.Seconds())), file, window+10*time.Second)
}

// saveProfile writes w's pprof profile (a /debug/pprof/ path: "heap",
// "profile?seconds=20") to file, within timeout.
func saveProfile(ctx context.Context, w *lab.Weft, profile, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := api.NewClient(w.RunDir).Stream(ctx, "/debug/pprof/"+profile)
	if err != nil {
		return fmt.Errorf("%s: profile %s: %w", w.Name, profile, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s: profile %s: %w", w.Name, profile, err)
	}
	return os.WriteFile(file, b, 0o644)
}

// WriteTable writes the scale run as a table.
func (r *ScaleResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "weft bench --scale on %s\n\n", r.Machine.summary())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\tconverge\texited\tdup subnets\tidle CPU/node\t(max)\tRSS/node\t(max)\tprivate/node\tunderlay B/s/node\tdata dgrams/s/node\tkilled\twithdrawn in\t")
	for _, p := range r.Points {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%.2f%%\t%.2f%%\t%.1f MiB\t%.1f MiB\t%.1f MiB\t%.0f\t%.1f\t%d\t%s\t\n", p.Nodes, secs(p.ConvergeSeconds),
			p.Exited, p.DuplicateSubnets, p.IdleCPUPercent, p.IdleCPUMax, p.RSSMiB, p.RSSMaxMiB, p.PrivateMiB, p.UnderlayBps,
			p.DataDatagramsPs, p.Killed, secs(p.WithdrawSeconds))
	}
	return tw.Flush()
}

// WriteJSON writes the scale run as indented JSON.
func (r *ScaleResult) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func secs(s float64) string {
	if s < 0 || math.IsNaN(s) {
		return "never"
	}
	return strconv.FormatFloat(s, 'f', 1, 64) + " s"
}

// WriteReports writes the table to w and, if jsonFile is set, the JSON there.
func (r *ScaleResult) WriteReports(w io.Writer, jsonFile string) error {
	errs := []error{r.WriteTable(w)}
	if jsonFile != "" {
		errs = append(errs, writeFile(jsonFile, r.WriteJSON))
	}
	return errors.Join(errs...)
}

// ParseSizes reads a comma-separated list of cluster sizes.
func ParseSizes(s string) ([]int, error) {
	var sizes []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 250 {
			return nil, fmt.Errorf("%q: want cluster sizes from 2 to 250, e.g. 50,100,200", f)
		}
		sizes = append(sizes, n)
	}
	return sizes, nil
}
