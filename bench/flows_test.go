package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseFlows(t *testing.T) {
	got, err := ParseFlows("1, 4,8")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 4 || got[2] != 8 {
		t.Fatalf("ParseFlows = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1,,4", "one", "1;4"} {
		if _, err := ParseFlows(bad); err == nil {
			t.Errorf("ParseFlows(%q) accepted", bad)
		}
	}
}

func TestValidateFlowsAndWireguardGo(t *testing.T) {
	for _, tc := range []struct {
		flows []int
		want  string
	}{
		{[]int{4, 8}, "1 must be among them"},
		{[]int{1, 0}, "flows 0: want 1 to 128"},
		{[]int{1, 200}, "flows 200"},
		{[]int{1, 4, 4}, "flows 4 listed twice"},
	} {
		cfg := Config{Binary: "/bin/true", Flows: tc.flows, WireguardGo: "/bin/true"}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("flows %v: %v, want %q", tc.flows, err, tc.want)
		}
	}
	cfg := Config{Binary: "/bin/true", Flows: []int{1, 4, 8}, WireguardGo: "/bin/true"}
	if err := cfg.Validate(); err != nil {
		t.Errorf("flows 1,4,8: %v", err)
	}
	if c, _ := cfg.withDefaults(); len(c.Paths) != len(AllPaths) {
		t.Errorf("with a wireguard-go executable the default paths are %v, want %v", c.Paths, AllPaths)
	}
	if got := defaultPaths(""); len(got) != len(AllPaths)-1 || strings.Contains(strings.Join(got, ","), PathWireguardGo) {
		t.Errorf("without wireguard-go the default paths are %v", got)
	}
}

func TestMetricByKeyTCP(t *testing.T) {
	for _, n := range []int{1, 4, 8, 16} {
		m, ok := MetricByKey(TCPMetric(n).Key)
		if !ok || m != TCPMetric(n) {
			t.Errorf("MetricByKey(%q) = %+v, %v", TCPMetric(n).Key, m, ok)
		}
	}
	if m, _ := MetricByKey(TCP4); m.Label != "TCP ×4" {
		t.Errorf("TCP4 is %+v", m)
	}
	for _, bad := range []string{"tcp0_gbps", "tcp-1_gbps", "tcp4x_gbps", "tcp_gbps"} {
		if _, ok := MetricByKey(bad); ok {
			t.Errorf("MetricByKey(%q) found a metric", bad)
		}
	}
}

// A run with --flows 1,4,8 reports TCP ×8 in the table, in the JSON that
// --from reads back, and in a chart panel of its own.
func TestReportsWithFlows(t *testing.T) {
	res := syntheticResult()
	res.Settings.Flows = []int{1, 4, 8}
	for _, r := range res.Runs {
		for s := 1.0; s <= 3; s++ {
			r.add(TCPMetric(8).Key, 30+s)
		}
	}
	res.Summarize()
	if v := res.Find("wire", PathWeft).Get(TCPMetric(8).Key).VsVxlan; v == nil || *v != 1 {
		t.Errorf("TCP ×8 vs vxlan = %v, want 1", v)
	}
	var table, js, chart bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "TCP ×8 (Gbit/s)") {
		t.Errorf("table lacks TCP ×8:\n%s", table.String())
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&js)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Find("wire", PathWeft).Get(TCPMetric(8).Key); got == nil || got.Median != 32 {
		t.Errorf("TCP ×8 read back: %+v", got)
	}
	if err := res.WriteChart(&chart); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(chart.String(), `data-metric="tcp8_gbps"`) || !strings.Contains(chart.String(), "TCP, 8 streams") {
		t.Error("chart has no TCP ×8 panel")
	}
	// The TCP panels share one scale: weft's ×1 and ×8 medians are both
	// 32, so their bars are equally long.
	w1, w8 := barWidth(t, chart.String(), TCP1), barWidth(t, chart.String(), TCPMetric(8).Key)
	if w1 == "" || w1 != w8 {
		t.Errorf("weft's TCP ×1 bar is %q wide, its TCP ×8 bar %q: the panels do not share a scale", w1, w8)
	}
}

// barWidth is the width attribute of wire weft's bar in the panel of key.
func barWidth(t *testing.T, svg, key string) string {
	t.Helper()
	tag := `data-path="weft" data-underlay="wire" data-metric="` + key + `"`
	_, rest, ok := strings.Cut(svg, tag)
	if !ok {
		t.Fatalf("no bar %s", tag)
	}
	_, rest, _ = strings.Cut(rest, `width="`)
	w, _, _ := strings.Cut(rest, `"`)
	return w
}
