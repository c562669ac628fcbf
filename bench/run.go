package bench

// The sequence of a run: one lab per underlay mode; in it, repetition by
// repetition, each path up, its five steps, and down again.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/weftnet/weft/lab"
)

// stepsPerPath is the number of measuring steps per path and repetition
// (see measure) with flows stream counts; the progress counter counts them.
func stepsPerPath(flows int) int { return 4 + flows - 1 }

// downTimeout bounds a path's teardown, which runs even after an interrupt.
const downTimeout = 30 * time.Second

// Run performs the benchmark described by cfg and returns every sample
// with medians, spreads and ratios to vxlan. It cleans up its labs on every
// return, including when ctx is cancelled (Ctrl-C). On error the result
// holds what was measured before it.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tools := []string{"ip", "bridge", "ss", "iperf3", "ping", "tee"}
	if slices.ContainsFunc(cfg.Underlays, func(u Underlay) bool { return u != Offload }) {
		tools = append(tools, "ethtool")
	}
	if err := lab.Require(tools...); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "weft-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	r := &runner{cfg: cfg, start: time.Now(), res: &Result{
		Machine: machineInfo(ctx, cfg.Binary),
		Settings: Settings{Hosts: cfg.Hosts, Paths: cfg.Paths, Seconds: cfg.Seconds, Repeat: cfg.Repeat, Flows: cfg.Flows,
			Queues: cfg.Queues},
	}}
	r.res.Started = r.start.UTC().Round(time.Second)
	r.steps = len(cfg.Underlays) * cfg.Repeat * len(cfg.Paths) * stepsPerPath(len(cfg.Flows))
	for _, name := range cfg.Paths {
		p, err := newPath(name, cfg, dir)
		if err != nil {
			return nil, err
		}
		r.paths = append(r.paths, p)
	}
	for _, u := range cfg.Underlays {
		r.res.Settings.Underlays = append(r.res.Settings.Underlays, string(u))
		if err = r.underlay(ctx, u); err != nil {
			break
		}
	}
	r.res.Took = time.Since(r.start)
	r.res.Summarize()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return r.res, err
}

// runner carries one run's state; it is used from one goroutine.
type runner struct {
	cfg   Config
	paths []path
	res   *Result
	start time.Time
	step  int // steps done
	steps int // steps planned
}

// progress prints one line about the step just finished.
func (r *runner) progress(u Underlay, p path, what string, rep int, format string, a ...any) {
	r.step++
	fmt.Fprintf(r.cfg.Progress, "[%d/%d] %s %s %s rep %d: %s\n", r.step, r.steps, u, p.Name(), what, rep,
		fmt.Sprintf(format, a...))
}

// underlay runs every repetition of every path in one lab built in mode u.
func (r *runner) underlay(ctx context.Context, u Underlay) (err error) {
	if err := lab.Cleanup(r.cfg.Prefix); err != nil {
		return fmt.Errorf("remove a previous run's leftovers: %w", err)
	}
	fmt.Fprintf(r.cfg.Progress, "building the %s lab: %d hosts in namespaces %s-h1..h%d (%s)\n",
		u, r.cfg.Hosts, r.cfg.Prefix, r.cfg.Hosts, UnderlayInfo[u])
	lc := lab.Config{Hosts: r.cfg.Hosts, Prefix: r.cfg.Prefix, Offloads: u == Offload, LogDir: r.cfg.LogDir, Log: r.cfg.Log}
	if u.IPv6() {
		lc.Underlay6 = underlay6Net
	}
	l, err := lab.New(ctx, lc)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	if _, err := startServer(ctx, l.Host(2)); err != nil {
		return err
	}
	results := make([]*PathResult, len(r.paths))
	for i, p := range r.paths {
		results[i] = &PathResult{Underlay: string(u), Path: p.Name()}
		r.res.Runs = append(r.res.Runs, results[i])
	}
	for rep := 1; rep <= r.cfg.Repeat; rep++ {
		for i, p := range r.paths {
			if err := r.measure(ctx, l, u, p, rep, results[i]); err != nil {
				return fmt.Errorf("%s %s rep %d: %w", u, p.Name(), rep, err)
			}
		}
	}
	return nil
}

// measure brings p up, runs its steps once, records the samples in pr and
// brings p down again.
func (r *runner) measure(ctx context.Context, l *lab.Lab, u Underlay, p path, rep int, pr *PathResult) (err error) {
	ep, err := p.Up(ctx, l, u)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), downTimeout)
		defer cancel()
		err = errors.Join(err, p.Down(dctx))
	}()
	if err != nil {
		return err
	}
	t := traffic{src: l.Host(1), addr: ep.Dst, seconds: r.cfg.Seconds}
	if err := t.reachable(ctx); err != nil {
		return err
	}
	weft := len(ep.Procs) > 0 // weft, or wireguard-go: a userspace daemon
	if weft {
		rss, err := maxRSS(ep.Procs)
		if err != nil {
			return err
		}
		pr.add(RSSIdle, rss)
	}

	// 1. Idle round-trip time: 2 s of echoes (1 s for the shortest runs).
	ping, err := t.ping(ctx, min(200, 100*r.cfg.Seconds))
	if err != nil {
		return err
	}
	pr.add(RTTIdleP50, ping.P50())
	pr.add(RTTIdleP99, ping.P99())
	r.progress(u, p, "rtt idle", rep, "p50 %s ms, p99 %s ms", fmtNum(ping.P50()), fmtNum(ping.P99()))

	// 2. One TCP stream, with the CPU the weft processes and the machine spent on it.
	cpu0, err := totalCPU(ep.Procs)
	if err != nil {
		return err
	}
	busy0, err := readCPUTimes()
	if err != nil {
		return err
	}
	t0 := time.Now()
	tcp1, err := t.iperf(ctx)
	if err != nil {
		return err
	}
	wall := time.Since(t0)
	busy1, err := readCPUTimes()
	if err != nil {
		return err
	}
	cpu1, err := totalCPU(ep.Procs)
	if err != nil {
		return err
	}
	pr.add(TCPMetric(1).Key, tcp1.BitsPerSecond/1e9)
	pr.add(MachineBusy, busyPercent(busy0, busy1))
	cpuNote := ""
	if weft {
		perGB := (cpu1 - cpu0).Seconds() / (tcp1.Bytes / 1e9)
		cores := (cpu1 - cpu0).Seconds() / wall.Seconds()
		pr.add(CPUPerGB, perGB)
		pr.add(WeftCores, cores)
		cpuNote = fmt.Sprintf(", daemon %s CPU s/GB (%s cores)", fmtNum(perGB), fmtNum(cores))
	}
	r.progress(u, p, "tcp×1", rep, "%s Gbit/s%s, all CPUs %.0f%% busy", fmtNum(tcp1.BitsPerSecond/1e9), cpuNote,
		busyPercent(busy0, busy1))

	// 3. Parallel TCP streams, each count of --flows but 1: each stream
	// has its own ports, so the kernel spreads them over queues and cores.
	for _, n := range r.cfg.Flows {
		if n == 1 {
			continue
		}
		tcp, err := t.iperf(ctx, "-P", fmt.Sprint(n))
		if err != nil {
			return err
		}
		pr.add(TCPMetric(n).Key, tcp.BitsPerSecond/1e9)
		r.progress(u, p, fmt.Sprintf("tcp×%d", n), rep, "%s Gbit/s", fmtNum(tcp.BitsPerSecond/1e9))
	}

	// 4. A flood of 64-byte UDP datagrams: what arrives, and what is lost.
	udp, err := t.iperf(ctx, "-u", "-l", "64", "-b", "0")
	if err != nil {
		return err
	}
	pr.add(UDPRate, udp.PacketsPerSecond()/1e3)
	pr.add(UDPLoss, udp.LossPercent())
	r.progress(u, p, "udp 64B", rep, "%s kpps delivered, %s%% lost", fmtNum(udp.PacketsPerSecond()/1e3),
		fmtNum(udp.LossPercent()))

	// 5. Round-trip time under one TCP stream, and weft's memory under load.
	var rssErr error
	loaded, _, err := t.pingUnderLoad(ctx, func() {
		if weft {
			var rss float64
			rss, rssErr = maxRSS(ep.Procs)
			pr.add(RSSLoad, rss)
		}
	})
	if err = errors.Join(err, rssErr); err != nil {
		return err
	}
	pr.add(RTTLoadP50, loaded.P50())
	pr.add(RTTLoadP99, loaded.P99())
	r.progress(u, p, "rtt under load", rep, "p50 %s ms, p99 %s ms, %s%% lost", fmtNum(loaded.P50()),
		fmtNum(loaded.P99()), fmtNum(loaded.LossPercent()))
	return nil
}

// totalCPU sums the CPU time of procs.
func totalCPU(procs []*lab.Proc) (time.Duration, error) {
	var sum time.Duration
	for _, p := range procs {
		d, err := procCPU(p.Pid())
		if err != nil {
			return 0, fmt.Errorf("cpu time of %v: %w", p, err)
		}
		sum += d
	}
	return sum, nil
}

// maxRSS returns the largest resident set of procs, in MiB: the busiest
// node's memory.
func maxRSS(procs []*lab.Proc) (float64, error) {
	var most uint64
	for _, p := range procs {
		b, err := procRSS(p.Pid())
		if err != nil {
			return 0, fmt.Errorf("memory of %v: %w", p, err)
		}
		most = max(most, b)
	}
	return float64(most) / (1 << 20), nil
}
