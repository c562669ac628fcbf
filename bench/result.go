package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

// Metric describes one figure measured on every path.
type Metric struct {
	Key   string // JSON key, e.g. "tcp1_gbps"
	Label string // table row label
	Unit  string
	// Higher says whether a higher value is better (throughput) or worse
	// (latency, loss, CPU, memory).
	Higher bool
	// Ratio: the report divides the path's median by its baseline's:
	// vxlan's, or vxlan-v6's for an IPv6 path.
	Ratio bool
	// WeftOnly: measured only on paths that run userspace daemons (weft,
	// wireguard-go); kernel paths show "-".
	WeftOnly bool
}

// Metric keys.
const (
	TCP1        = "tcp1_gbps"
	TCP4        = "tcp4_gbps"
	UDPRate     = "udp64_kpps"
	UDPLoss     = "udp64_loss_pct"
	RTTIdleP50  = "rtt_idle_p50_ms"
	RTTIdleP99  = "rtt_idle_p99_ms"
	RTTLoadP50  = "rtt_load_p50_ms"
	RTTLoadP99  = "rtt_load_p99_ms"
	CPUPerGB    = "cpu_s_per_gb"
	WeftCores   = "weft_cores"
	MachineBusy = "machine_cpu_busy_pct"
	RSSIdle     = "rss_idle_mib"
	RSSLoad     = "rss_load_mib"
)

// Metrics lists every metric in report order.
var Metrics = []Metric{
	{Key: TCP1, Label: "TCP ×1", Unit: "Gbit/s", Higher: true, Ratio: true},
	{Key: TCP4, Label: "TCP ×4", Unit: "Gbit/s", Higher: true, Ratio: true},
	{Key: UDPRate, Label: "UDP 64 B delivered", Unit: "kpps", Higher: true, Ratio: true},
	{Key: UDPLoss, Label: "UDP 64 B loss", Unit: "%"},
	{Key: RTTIdleP50, Label: "RTT idle p50", Unit: "ms", Ratio: true},
	{Key: RTTIdleP99, Label: "RTT idle p99", Unit: "ms", Ratio: true},
	{Key: RTTLoadP50, Label: "RTT under load p50", Unit: "ms", Ratio: true},
	{Key: RTTLoadP99, Label: "RTT under load p99", Unit: "ms", Ratio: true},
	{Key: CPUPerGB, Label: "daemon CPU per GB", Unit: "s/GB", WeftOnly: true},
	{Key: WeftCores, Label: "daemon CPU use, TCP ×1", Unit: "cores", WeftOnly: true},
	{Key: MachineBusy, Label: "all CPUs busy, TCP ×1", Unit: "%"},
	{Key: RSSIdle, Label: "daemon RSS idle", Unit: "MiB", WeftOnly: true},
	{Key: RSSLoad, Label: "daemon RSS under load", Unit: "MiB", WeftOnly: true},
}

// TCPMetric is the throughput of n parallel TCP streams (iperf3 -P n), one
// per count in Config.Flows: TCP1 and TCP4 are two of them.
func TCPMetric(n int) Metric {
	return Metric{Key: fmt.Sprintf("tcp%d_gbps", n), Label: fmt.Sprintf("TCP ×%d", n), Unit: "Gbit/s", Higher: true, Ratio: true}
}

// MetricByKey returns the metric with key; ok is false for an unknown key.
func MetricByKey(key string) (m Metric, ok bool) {
	for _, m := range Metrics {
		if m.Key == key {
			return m, true
		}
	}
	var n int
	if _, err := fmt.Sscanf(key, "tcp%d_gbps", &n); err == nil && n > 0 && TCPMetric(n).Key == key {
		return TCPMetric(n), true
	}
	return Metric{}, false
}

// metrics lists the metrics of a run with these settings in report order:
// Metrics, with one TCP metric per flow count in place of TCP ×1 and ×4.
func (s Settings) metrics() []Metric {
	var out []Metric
	for _, n := range s.flows() {
		out = append(out, TCPMetric(n))
	}
	for _, m := range Metrics {
		if m.Key != TCP1 && m.Key != TCP4 {
			out = append(out, m)
		}
	}
	return out
}

// flows is Flows, or the counts of a run that did not record them (1, 4).
func (s Settings) flows() []int {
	if len(s.Flows) == 0 {
		return DefaultConfig().Flows
	}
	return s.Flows
}

// Result is a whole benchmark run.
type Result struct {
	Machine  Machine       `json:"machine"`
	Settings Settings      `json:"settings"`
	Started  time.Time     `json:"started"`
	Took     time.Duration `json:"-"`
	Runs     []*PathResult `json:"runs"` // per underlay mode, per path, in the order run
}

// Settings records the configuration a Result was taken with.
type Settings struct {
	Hosts     int      `json:"hosts"`
	Paths     []string `json:"paths"`
	Underlays []string `json:"underlays"`
	Seconds   int      `json:"seconds"`
	Repeat    int      `json:"repeat"`
	Flows     []int    `json:"flows,omitempty"`   // TCP stream counts; absent: 1 and 4
	Queues    int      `json:"queues,omitempty"`  // weft --queues; absent: weft's default
	Command   string   `json:"command,omitempty"` // the command line, if the caller sets it
}

// PathResult holds every sample of one path in one underlay mode.
type PathResult struct {
	Underlay string `json:"underlay"`
	Path     string `json:"path"`
	// Metrics maps a metric key to its samples (one per repetition) and
	// their summary. Metrics a path does not have (WeftOnly on a kernel
	// path) are absent.
	Metrics map[string]*MetricResult `json:"metrics"`
}

// MetricResult is one metric's samples on one path, summarized.
type MetricResult struct {
	Unit string `json:"unit"`
	Summary
	// VsVxlan is this path's median divided by its baseline's in the
	// same underlay mode: vxlan's, or vxlan-v6's for an IPv6 path (the
	// same inner family). Absent when the baseline did not run or the
	// metric has no ratio.
	VsVxlan *float64 `json:"vs_vxlan,omitempty"`
}

// add appends one repetition's sample of metric key. A value that is not
// finite (a division by a zero duration) is not a measurement and is dropped.
func (r *PathResult) add(key string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if r.Metrics == nil {
		r.Metrics = map[string]*MetricResult{}
	}
	m, ok := r.Metrics[key]
	if !ok {
		info, _ := MetricByKey(key)
		m = &MetricResult{Unit: info.Unit}
		r.Metrics[key] = m
	}
	m.Samples = append(m.Samples, v)
}

// Get returns the metric's result, nil if the path does not have it.
func (r *PathResult) Get(key string) *MetricResult {
	if r == nil {
		return nil
	}
	return r.Metrics[key]
}

// Find returns the result of path in underlay mode, nil if it did not run.
func (res *Result) Find(underlay, path string) *PathResult {
	for _, r := range res.Runs {
		if r.Underlay == underlay && r.Path == path {
			return r
		}
	}
	return nil
}

// Summarize computes every median, spread and ratio to the baseline (vxlan
// of the same family) from the samples. Run calls it; call it again after changing samples.
func (res *Result) Summarize() {
	for _, r := range res.Runs {
		for _, m := range r.Metrics {
			m.Summary = Summarize(m.Samples)
			m.VsVxlan = nil
		}
	}
	for _, r := range res.Runs {
		base := res.Find(r.Underlay, baselineOf(r.Path))
		if base == nil || r == base {
			continue
		}
		for _, info := range res.Settings.metrics() {
			m, b := r.Get(info.Key), base.Get(info.Key)
			if !info.Ratio || m == nil || b == nil || b.Median == 0 || math.IsNaN(b.Median) {
				continue
			}
			v := m.Median / b.Median
			m.VsVxlan = &v
		}
	}
}

// WriteJSON writes the result, every raw sample included, as indented JSON.
func (res *Result) WriteJSON(w io.Writer) error {
	doc := struct {
		*Result
		TookSeconds float64            `json:"took_seconds"`
		Metrics     []metricDescriptor `json:"metric_descriptions"`
	}{Result: res, TookSeconds: res.Took.Round(time.Second).Seconds()}
	for _, m := range res.Settings.metrics() {
		better := "lower"
		if m.Higher {
			better = "higher"
		}
		doc.Metrics = append(doc.Metrics, metricDescriptor{m.Key, m.Label, m.Unit, better})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// ReadJSON reads a result written by WriteJSON and recomputes its
// summaries, so reports can be rendered again from a saved run.
func ReadJSON(r io.Reader) (*Result, error) {
	var doc struct {
		Result
		TookSeconds float64 `json:"took_seconds"`
	}
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		return nil, fmt.Errorf("results JSON: %w", err)
	}
	res := doc.Result
	res.Took = time.Duration(doc.TookSeconds * float64(time.Second))
	res.Summarize()
	return &res, nil
}

type metricDescriptor struct {
	Key    string `json:"key"`
	Label  string `json:"label"`
	Unit   string `json:"unit"`
	Better string `json:"better"`
}
