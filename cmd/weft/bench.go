package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/weftnet/weft/bench"
)

// cmdBench runs `weft bench`: the same traffic over plain veth, kernel VXLAN
// and weft's data paths between hosts in network namespaces, with a table
// on stdout, progress on stderr and, on request, JSON and an SVG chart.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	d := bench.DefaultConfig()
	fs := newFlagSet("bench", stderr)
	hosts := fs.Int("hosts", d.Hosts, "number of lab `hosts` (traffic flows from h1 to h2)")
	paths := fs.String("paths", strings.Join(d.Paths, ","), "comma-separated `list` of data paths to measure")
	underlay := fs.String("underlay", string(bench.Wire), "underlay `mode`: wire (1500-byte frames), offload (GSO superpackets) or both")
	seconds := fs.Int("seconds", d.Seconds, "`seconds` per iperf3 run")
	repeat := fs.Int("repeat", d.Repeat, "repetitions of every step per path (the report shows median and min–max)")
	jsonFile := fs.String("json", "", "write every sample, the medians, ratios and machine info as JSON to `file`")
	chartFile := fs.String("chart", "", "write an SVG bar chart to `file`")
	binary := fs.String("binary", "", "weft `executable` to benchmark (default: this one)")
	prefix := fs.String("prefix", d.Prefix, "network namespace name `prefix`")
	logDir := fs.String("log-dir", "", "keep the output of every process the lab runs in `dir`")
	from := fs.String("from", "", "run nothing: render the table, --json and --chart from a results `file` written by --json")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *from != "" {
		res, err := readResults(*from)
		if err != nil {
			return err
		}
		return writeReports(res, stdout, *jsonFile, *chartFile)
	}
	cfg := bench.Config{Hosts: *hosts, Seconds: *seconds, Repeat: *repeat, Prefix: *prefix,
		Binary: *binary, LogDir: *logDir, Progress: stderr}
	for p := range strings.SplitSeq(*paths, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.Paths = append(cfg.Paths, p)
		}
	}
	switch *underlay {
	case "both":
		cfg.Underlays = bench.Underlays
	case string(bench.Wire), string(bench.Offload):
		cfg.Underlays = []bench.Underlay{bench.Underlay(*underlay)}
	default:
		return fmt.Errorf("--underlay %q: want wire, offload or both", *underlay)
	}
	if cfg.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the weft binary: %w", err)
		}
		cfg.Binary = self
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
			return fmt.Errorf("--log-dir: %w", err)
		}
	}
	// Fail on an unwritable output file now, not after ten minutes of traffic.
	outputs := map[string]*string{"--json": jsonFile, "--chart": chartFile}
	for flag, name := range outputs {
		if *name == "" {
			continue
		}
		f, err := os.OpenFile(*name, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		f.Close()
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
	return errors.Join(err, writeReports(res, stdout, *jsonFile, *chartFile))
}

// writeReports writes the table to stdout and, when named, the JSON and
// chart files.
func writeReports(res *bench.Result, stdout io.Writer, jsonFile, chartFile string) error {
	errs := []error{res.WriteTable(stdout)}
	if jsonFile != "" {
		errs = append(errs, writeFile(jsonFile, res.WriteJSON))
	}
	if chartFile != "" {
		errs = append(errs, writeFile(chartFile, res.WriteChart))
	}
	return errors.Join(errs...)
}

// readResults reads a results file written by --json.
func readResults(name string) (*bench.Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	defer f.Close()
	res, err := bench.ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("--from %s: %w", name, err)
	}
	return res, nil
}

// writeFile creates name and fills it with write.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}
