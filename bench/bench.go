// Package bench measures weft against the paths a user would otherwise pick,
// on the user's own machine: plain veth (the physical limit), kernel VXLAN,
// and weft's variants, all between hosts in network namespaces (package
// lab). `weft bench` is a thin CLI over Run.
//
// For every underlay mode (wire: 1500-byte frames as on a real NIC; offload:
// veth passes GSO superpackets unsplit; wire6: as wire, over the underlay's
// IPv6 addresses) it builds one lab, starts an iperf3 server on host 2, and
// then, repetition by repetition, brings up one path at a time and runs the
// same traffic from host 1 over it:
//
//	rep 1: underlay, vxlan, vxlan-v6, weft, weft-v6, weft-insecure, weft-water
//	rep 2: underlay, vxlan, vxlan-v6, weft, …
//
// Interleaving spreads slow drifts of the machine (thermal, noisy
// neighbours) over all paths instead of penalising the last one. Per path
// and repetition the steps are: ping RTT idle, TCP one stream (with the
// userspace daemons' CPU time and the machine's load), TCP with each other
// stream count of Flows (4 by default), 64-byte UDP flood, ping RTT under
// one TCP stream (with the daemons' memory at that moment).
//
// The -v6 paths run the same traffic over inner IPv6: kernel VXLAN with
// IPv6 addresses, and a dual-stack weft; their ratios are to vxlan-v6.
//
// When a wireguard-go executable is found (FindWireguardGo), it is one of
// the default paths, so weft is always measured beside the userspace
// overlay its users would otherwise pick.
//
// Files: paths.go (the paths), traffic.go (iperf3/ping runners),
// parse.go (their output), procstat.go (/proc readers), run.go (the
// sequence), stats.go (median, spread, percentiles), result.go (metrics and
// JSON), table.go and chart.go (the reports).
package bench

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/weftnet/weft/encap"
)

// Underlay is how the lab's veths carry packets.
type Underlay string

// Underlay modes.
const (
	// Wire turns segmentation offloads off: at most 1500-byte frames
	// cross the underlay, as on a real NIC. The default.
	Wire Underlay = "wire"
	// Offload keeps the veth's defaults: GSO superpackets of up to 64 KiB
	// cross unsplit, which no physical network does.
	Offload Underlay = "offload"
	// Wire6 is Wire over an IPv6 underlay: the lab's hosts also get
	// addresses in underlay6Net, and every path talks over those alone
	// (weft --advertise/--listen/--peer IPv6, VXLAN and wireguard-go to
	// IPv6 endpoints), as on a host reachable only over IPv6.
	Wire6 Underlay = "wire6"
)

// Underlays lists the modes in report order.
var Underlays = []Underlay{Wire, Offload, Wire6}

// UnderlayInfo says in one line what each mode is, for reports.
var UnderlayInfo = map[Underlay]string{
	Wire:    "veth offloads off: 1500-byte frames, as on a real NIC",
	Offload: "veth offloads on: GSO superpackets cross the underlay unsplit",
	Wire6:   "as wire, but every path talks over the underlay's IPv6 addresses",
}

// underlay6Net is the IPv6 underlay of a Wire6 lab: host i gets the i-th
// address.
var underlay6Net = netip.MustParsePrefix("fd00:77::/64")

// IPv6 reports whether the paths talk over the underlay's IPv6 addresses.
func (u Underlay) IPv6() bool { return u == Wire6 }

// Config describes a benchmark run. The zero value of a field means its
// default (see DefaultConfig).
type Config struct {
	// Binary is the weft executable the weft paths run. Required when
	// Paths includes one.
	Binary string
	// Hosts is the number of lab hosts, at least 2. Traffic always flows
	// from host 1 to host 2; more hosts give weft more peers. Default 2.
	Hosts int
	// Paths to measure, from AllPaths, in report order. Default all.
	Paths []string
	// Underlays to measure, each in its own lab. Default {Wire}.
	Underlays []Underlay
	// Seconds is the length of each iperf3 run. Default 5.
	Seconds int
	// Repeat is how many times each path runs each step. Default 3.
	Repeat int
	// Flows are the TCP stream counts to measure (iperf3 -P), each 1 to
	// 128; 1 must be among them (the CPU figures are taken during it).
	// Default 1, 4.
	Flows []int
	// Queues is weft's --queues on every node of the weft paths but
	// weft-water (single-queue), 1 to 64. Default 0: weft's own default,
	// min(cores, 8).
	Queues int
	// WireguardGo is the wireguard-go executable of the wireguard-go
	// path. Default FindWireguardGo().
	WireguardGo string
	// Prefix names the lab's namespaces. Default "weft-bench".
	Prefix string
	// Progress receives one line per step; nil means quiet.
	Progress io.Writer
	// Log receives the lab's log; nil means quiet.
	Log *slog.Logger
	// LogDir, if set, keeps the output of every process the lab starts
	// (lab.Config.LogDir).
	LogDir string
}

// DefaultConfig returns the defaults: 2 hosts, every path (wireguard-go
// only if FindWireguardGo finds it), wire mode, 3 repetitions of 5-second
// runs, 1 and 4 TCP streams.
func DefaultConfig() Config {
	return Config{Hosts: 2, Paths: defaultPaths(FindWireguardGo()), Underlays: []Underlay{Wire}, Seconds: 5, Repeat: 3,
		Flows: []int{1, 4}, Prefix: "weft-bench"}
}

// defaultPaths is AllPaths, less wireguard-go without its executable.
func defaultPaths(wireguardGo string) []string {
	if wireguardGo != "" {
		return AllPaths
	}
	return slices.DeleteFunc(slices.Clone(AllPaths), func(p string) bool { return p == PathWireguardGo })
}

// ParseFlows parses --flows: comma-separated stream counts, e.g. "1,4,8".
func ParseFlows(s string) ([]int, error) {
	var flows []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: want stream counts such as 1,4,8", s)
		}
		flows = append(flows, n)
	}
	return flows, nil
}

// Validate reports every invalid field of c (after defaults), so a caller
// can refuse a bad configuration before it opens output files.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills in defaults and validates.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Hosts == 0 {
		c.Hosts = d.Hosts
	}
	if len(c.Paths) == 0 {
		c.Paths = defaultPaths(c.WireguardGo)
	}
	if len(c.Underlays) == 0 {
		c.Underlays = d.Underlays
	}
	if c.Seconds == 0 {
		c.Seconds = d.Seconds
	}
	if c.Repeat == 0 {
		c.Repeat = d.Repeat
	}
	if len(c.Flows) == 0 {
		c.Flows = d.Flows
	}
	if c.WireguardGo == "" {
		c.WireguardGo = FindWireguardGo()
	}
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	var errs []error
	if c.Hosts < 2 || c.Hosts > 200 {
		errs = append(errs, fmt.Errorf("hosts %d: want 2 to 200", c.Hosts))
	}
	if c.Seconds < 1 || c.Seconds > 600 {
		errs = append(errs, fmt.Errorf("seconds %d: want 1 to 600", c.Seconds))
	}
	if c.Repeat < 1 || c.Repeat > 100 {
		errs = append(errs, fmt.Errorf("repeat %d: want 1 to 100", c.Repeat))
	}
	if c.Queues < 0 || c.Queues > encap.MaxQueues {
		errs = append(errs, fmt.Errorf("queues %d: want 1 to %d, or 0 for weft's default", c.Queues, encap.MaxQueues))
	}
	for i, p := range c.Paths {
		if !slices.Contains(AllPaths, p) {
			errs = append(errs, fmt.Errorf("unknown path %q (want some of %v)", p, AllPaths))
		} else if slices.Contains(c.Paths[:i], p) {
			errs = append(errs, fmt.Errorf("path %q listed twice", p))
		}
	}
	for i, u := range c.Underlays {
		if !slices.Contains(Underlays, u) {
			errs = append(errs, fmt.Errorf("unknown underlay mode %q (want %v)", u, Underlays))
		} else if slices.Contains(c.Underlays[:i], u) {
			errs = append(errs, fmt.Errorf("underlay mode %q listed twice", u))
		}
	}
	for i, n := range c.Flows {
		if n < 1 || n > 128 {
			errs = append(errs, fmt.Errorf("flows %d: want 1 to 128 streams", n))
		} else if slices.Contains(c.Flows[:i], n) {
			errs = append(errs, fmt.Errorf("flows %d listed twice", n))
		}
	}
	if !slices.Contains(c.Flows, 1) {
		errs = append(errs, fmt.Errorf("flows %v: 1 must be among them (the CPU figures are taken with one stream)", c.Flows))
	}
	if c.WireguardGo == "" && slices.Contains(c.Paths, PathWireguardGo) {
		errs = append(errs, fmt.Errorf("path %s: no wireguard-go executable (scripts/setup.sh builds one into %s)", PathWireguardGo, wireguardGoDir))
	}
	if c.Binary == "" && slices.ContainsFunc(c.Paths, isWeftPath) {
		errs = append(errs, errors.New("the weft paths need the weft executable (Config.Binary)"))
	}
	return c, errors.Join(errs...)
}

// isWeftPath reports whether the path runs weft processes.
func isWeftPath(name string) bool {
	return name == PathWeft || name == PathWeft6 || name == PathWeftInsecure || name == PathWeftWater
}
