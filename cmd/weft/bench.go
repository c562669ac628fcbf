package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/weftnet/weft/bench"
	"github.com/weftnet/weft/internal/cli"
)

const benchUsage = `usage: weft bench [flags]

Measures weft against plain veth and kernel VXLAN: builds hosts in network namespaces, runs iperf3 and ping
over each data path in turn and prints a table (progress on stderr). The -v6 paths carry the same traffic
over inner IPv6 (a dual-stack weft, kernel VXLAN with IPv6 addresses). Needs root (namespaces, veth, TUN) and
iperf3 (scripts/setup.sh installs it). A default run (every path, wire underlay, 3 repetitions of 5-second
runs) takes about 10 minutes on 2 cores; --underlay both doubles that; --paths vxlan,weft --repeat 1
--seconds 1 takes under a minute. --scale measures cluster sizes instead (minutes per size).`

// cmdBench runs `weft bench`: the same traffic over plain veth, kernel VXLAN
// and weft's data paths between hosts in network namespaces, with a table
// on stdout, progress on stderr and, on request, JSON and an SVG chart.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultConfig()
	cfg.Progress = stderr
	fs := cli.NewFlagSet("weft bench", benchUsage)
	fs.IntVar(&cfg.Hosts, "hosts", cfg.Hosts, "number of lab `hosts` (traffic flows from h1 to h2)")
	paths := fs.String("paths", strings.Join(cfg.Paths, ","), "comma-separated `list` of data paths to measure")
	underlay := fs.String("underlay", string(bench.Wire), "underlay `modes`, comma-separated: wire (1500-byte frames), offload (GSO superpackets), wire6 (wire over IPv6 addresses); both = wire,offload")
	fs.IntVar(&cfg.Seconds, "seconds", cfg.Seconds, "`seconds` per iperf3 run")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "repetitions of every step per path (the report shows median and min–max)")
	fs.Func("flows", "comma-separated TCP stream `counts` (iperf3 -P), 1 among them (default 1,4)", func(s string) (err error) { cfg.Flows, err = bench.ParseFlows(s); return err })
	fs.IntVar(&cfg.Queues, "queues", 0, "weft's --queues on every node of the weft paths but weft-water: `N`, 1 to 64 (default: weft's, min(cores, 8))")
	jsonFile := fs.String("json", "", "write every sample, the medians, ratios and machine info as JSON to `file`")
	chartFile := fs.String("chart", "", "write an SVG bar chart to `file`")
	fs.StringVar(&cfg.Binary, "binary", "", "weft `executable` to benchmark (default: this one)")
	fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "network namespace name `prefix`")
	fs.StringVar(&cfg.LogDir, "log-dir", "", "keep the output of every process the lab runs in `dir`")
	scale := fs.String("scale", "", "measure cluster `sizes` instead (e.g. 50,100,200): N nodes started at once, convergence, idle cost, withdrawal")
	from := fs.String("from", "", "run nothing: render the table, --json and --chart from a results `file` written by --json")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	if err := orSelf(&cfg.Binary); err != nil {
		return err
	}
	if *scale != "" {
		return runScale(ctx, *scale, cfg, *jsonFile, stdout)
	}
	if *from != "" {
		res, err := bench.ReadFile(*from)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		return res.WriteReports(stdout, *jsonFile, *chartFile)
	}
	cfg.Paths = nil
	for p := range strings.SplitSeq(*paths, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Paths = append(cfg.Paths, p)
		}
	}
	var err error
	if cfg.Underlays, err = bench.ParseUnderlays(*underlay); err != nil {
		return fmt.Errorf("--underlay %q: %w", *underlay, err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Fail on an unwritable output now, not after ten minutes of traffic.
	if err := bench.PrepareOutputs(cfg.LogDir, map[string]string{"--json": *jsonFile, "--chart": *chartFile}); err != nil {
		return err
	}

	res, err := bench.Run(ctx, cfg)
	if res == nil {
		return err
	}
	res.Settings.Command = strings.TrimSpace("weft bench " + strings.Join(args, " "))
	if err != nil {
		// Keep what was measured: the table of a partial run still helps.
		fmt.Fprintln(stderr, "weft bench: stopped early; partial results follow")
	}
	return errors.Join(err, res.WriteReports(stdout, *jsonFile, *chartFile))
}

// runScale is `weft bench --scale SIZES` (bench.RunScale).
func runScale(ctx context.Context, sizes string, cfg bench.Config, jsonFile string, stdout io.Writer) error {
	sc := bench.ScaleConfig{Binary: cfg.Binary, LogDir: cfg.LogDir, Progress: cfg.Progress}
	var err error
	if sc.Sizes, err = bench.ParseSizes(sizes); err != nil {
		return fmt.Errorf("--scale %w", err)
	}
	res, err := bench.RunScale(ctx, sc)
	if res == nil {
		return err
	}
	return errors.Join(err, res.WriteReports(stdout, jsonFile))
}
