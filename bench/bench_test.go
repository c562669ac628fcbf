package bench_test

// The harness tests: the real `weft bench` binary, one short repetition of
// every path (the -v6 ones over inner IPv6 included) in wire mode, and of
// one path of each kind over an IPv6 underlay (wire6), checked for a number
// for every metric, a JSON file that parses and a well-formed chart with
// bars for every path. They assert no speed: only that each figure was
// measured.

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/bench"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// weftBin is the binary TestMain built; empty when not root, in which case
// the harness test skips (or fails under CI) in testenv.Require first.
var weftBin string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "weft-bench-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		weftBin = filepath.Join(dir, "weft")
		// go test puts its own toolchain first in PATH.
		build := exec.Command("go", "build", "-o", weftBin, "github.com/weftnet/weft/cmd/weft")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: build weft: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// harnessTimeout bounds the whole run; the run itself takes about 50 s on
// two cores. It is a hang guard, not a speed assertion.
const harnessTimeout = 3 * time.Minute

// runBench runs `weft bench --repeat 1 --seconds 1` with args in a lab of
// its own and returns the results its --json wrote, its table and the
// chart it drew.
func runBench(t *testing.T, args ...string) (res *bench.Result, table string, svg []byte) {
	t.Helper()
	testenv.Require(t)
	testenv.Need(t, lab.Require("iperf3", "ping", "ethtool", "ss", "bridge"))
	prefix := fmt.Sprintf("wb%d", os.Getpid()%100000)
	t.Cleanup(func() {
		// Backstop if the binary was killed before it could clean up.
		if err := lab.Cleanup(prefix); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	jsonFile, chartFile := filepath.Join(dir, "results.json"), filepath.Join(dir, "chart.svg")

	ctx, cancel := context.WithTimeout(t.Context(), harnessTimeout)
	defer cancel()
	args = append([]string{"bench", "--repeat", "1", "--seconds", "1", "--prefix", prefix, "--json", jsonFile,
		"--chart", chartFile}, args...)
	cmd := exec.CommandContext(ctx, weftBin, args...)
	// On timeout, interrupt it like Ctrl-C so it tears its lab down.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 45 * time.Second
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, t.Output()
	if err := cmd.Run(); err != nil {
		t.Fatalf("weft bench: %v\n%s", err, stdout.String())
	}
	table = stdout.String()
	t.Logf("table:\n%s", table)
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	res = &bench.Result{}
	if err := json.Unmarshal(data, res); err != nil {
		t.Fatalf("results JSON does not parse: %v", err)
	}
	if svg, err = os.ReadFile(chartFile); err != nil {
		t.Fatal(err)
	}
	return res, table, svg
}

// kernelPaths have no userspace daemon, so no daemon figures.
var kernelPaths = []string{bench.PathUnderlay, bench.PathVXLAN, bench.PathVXLAN6}

// checkMeasured fails for every metric of Metrics that path p lacks in
// underlay mode u, and for one it has but should not.
func checkMeasured(t *testing.T, res *bench.Result, u, p string) {
	t.Helper()
	pr := res.Find(u, p)
	if pr == nil {
		t.Errorf("%s %s: no result", u, p)
		return
	}
	for _, m := range bench.Metrics {
		mr := pr.Get(m.Key)
		switch {
		case m.WeftOnly && slices.Contains(kernelPaths, p):
			if mr != nil {
				t.Errorf("%s %s %s: measured on a kernel path", u, p, m.Key)
			}
		case m.Key == bench.TCP4 && !slices.Contains(res.Settings.Flows, 4):
		case mr == nil || len(mr.Samples) != 1:
			t.Errorf("%s %s %s: want one sample, got %+v", u, p, m.Key, mr)
		case m.Key == bench.UDPLoss && mr.Median < 0, m.Key != bench.UDPLoss && !(mr.Median > 0):
			t.Errorf("%s %s %s = %v: not a measurement", u, p, m.Key, mr.Median)
		}
	}
	if p != bench.PathVXLAN && p != bench.PathVXLAN6 && pr.Get(bench.TCP1).VsVxlan == nil {
		t.Errorf("%s %s: no ratio to its baseline", u, p)
	}
}

func TestHarnessEveryPathWire(t *testing.T) {
	// --queues 2 reaches every weft path but weft-water, which would refuse it.
	res, table, svg := runBench(t, "--underlay", "wire", "--queues", "2")
	if res.Settings.Queues != 2 {
		t.Errorf("settings record queues %d, want 2", res.Settings.Queues)
	}
	if res.Machine.Kernel == "" || res.Machine.CPUs == 0 || res.Machine.WeftVersion == "" {
		t.Errorf("machine info incomplete: %+v", res.Machine)
	}
	// Every path, wireguard-go exactly when scripts/setup.sh built it.
	paths := bench.AllPaths
	if bench.FindWireguardGo() == "" {
		t.Logf("no wireguard-go executable: its path is not measured (scripts/setup.sh builds it)")
		paths = slices.DeleteFunc(slices.Clone(paths), func(p string) bool { return p == bench.PathWireguardGo })
	}
	if !slices.Equal(res.Settings.Paths, paths) {
		t.Errorf("paths run %v, want %v", res.Settings.Paths, paths)
	}
	// Every path produced a number for every metric it has.
	for _, p := range paths {
		checkMeasured(t, res, "wire", p)
		if !strings.Contains(table, p) {
			t.Errorf("table lacks %s", p)
		}
	}

	// The chart is well-formed XML with a bar for every path.
	bars := barsPerPath(t, svg)
	for _, p := range paths {
		if bars[p] == 0 {
			t.Errorf("chart: no bar for %s (bars: %v)", p, bars)
		}
	}
}

// Over an IPv6 underlay (wire6) every kind of path still carries the
// traffic: plain veth, kernel VXLAN, weft in both inner families, and
// wireguard-go when scripts/setup.sh built it. One stream count keeps it
// short.
func TestHarnessIPv6Underlay(t *testing.T) {
	paths := []string{bench.PathUnderlay, bench.PathVXLAN, bench.PathVXLAN6, bench.PathWeft, bench.PathWeft6}
	if bench.FindWireguardGo() != "" {
		paths = append(paths, bench.PathWireguardGo)
	}
	res, _, _ := runBench(t, "--underlay", "wire6", "--flows", "1", "--paths", strings.Join(paths, ","))
	if !slices.Equal(res.Settings.Underlays, []string{"wire6"}) {
		t.Errorf("underlays %v, want wire6", res.Settings.Underlays)
	}
	for _, p := range paths {
		checkMeasured(t, res, "wire6", p)
	}
}

// barsPerPath decodes the SVG, failing on malformed XML, and counts the
// <rect class="bar"> elements per data-path.
func barsPerPath(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	bars := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return bars
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok || el.Name.Local != "rect" {
			continue
		}
		var class, path string
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "class":
				class = a.Value
			case "data-path":
				path = a.Value
			}
		}
		if class == "bar" {
			bars[path]++
		}
	}
}
