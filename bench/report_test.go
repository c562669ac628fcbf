package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// syntheticResult has every path in both modes, three samples per metric:
// base+1, base+2, base+3 where base grows with the path's position in
// AllPaths, so vxlan's median is 2+1·10 = 12, vxlan-v6's 22, weft's 32 and
// weft-v6's 42.
func syntheticResult() *Result {
	res := &Result{Settings: Settings{Hosts: 2, Paths: AllPaths, Underlays: []string{"wire", "offload"}, Seconds: 5, Repeat: 3},
		Machine: Machine{Kernel: "6.1.0", CPUs: 2, GoVersion: "go1.26.8", WeftVersion: "dev"}}
	for _, u := range res.Settings.Underlays {
		for i, p := range AllPaths {
			pr := &PathResult{Underlay: u, Path: p}
			for _, m := range Metrics {
				if m.WeftOnly && !isWeftPath(p) && p != PathWireguardGo {
					continue
				}
				for s := 1; s <= 3; s++ {
					pr.add(m.Key, float64(i*10+s))
				}
			}
			res.Runs = append(res.Runs, pr)
		}
	}
	res.Summarize()
	return res
}

func TestSummarizeRatios(t *testing.T) {
	res := syntheticResult()
	weft := res.Find("offload", PathWeft).Get(TCP1)
	if weft.Median != 32 || weft.Min != 31 || weft.Max != 33 {
		t.Fatalf("weft tcp1 summary %+v", weft.Summary)
	}
	if weft.VsVxlan == nil || *weft.VsVxlan != 32.0/12 {
		t.Errorf("weft vs vxlan = %v, want %v", weft.VsVxlan, 32.0/12)
	}
	// An IPv6 path's baseline is vxlan-v6: the same inner family.
	if v := res.Find("offload", PathWeft6).Get(TCP1).VsVxlan; v == nil || *v != 42.0/22 {
		t.Errorf("weft-v6 vs vxlan-v6 = %v, want %v", v, 42.0/22)
	}
	for _, base := range []string{PathVXLAN, PathVXLAN6} {
		if res.Find("offload", base).Get(TCP1).VsVxlan != nil {
			t.Errorf("%s has a ratio to itself", base)
		}
	}
	if res.Find("wire", PathWeft).Get(UDPLoss).VsVxlan != nil {
		t.Error("loss has a ratio; it should not")
	}
	if res.Find("wire", PathUnderlay).Get(CPUPerGB) != nil {
		t.Error("kernel path has a weft-only metric")
	}
}

func TestWriteTable(t *testing.T) {
	var b strings.Builder
	if err := syntheticResult().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"wire underlay", "offload underlay",
		"metric  ", "weft-insecure",
		"TCP ×1 (Gbit/s)  ", "2.00 (1.00–3.00)", "32.0 (31.0–33.0)",
		"  vs vxlan", "2.67×", // weft 32 / vxlan 12
		"1.91×", // weft-v6 42 / vxlan-v6 22
		"weft:       --queues default", "weft-v6", "vxlan-v6",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Kernel paths show "-" for weft's CPU and memory.
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "weft CPU per GB") && !strings.Contains(line, "-  ") {
			t.Errorf("CPU row without '-' for kernel paths: %q", line)
		}
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	res := syntheticResult()
	if err := res.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got := back.Find("wire", PathWeftWater).Get(RTTLoadP99)
	if got == nil || len(got.Samples) != 3 || got.Median != 62 || got.VsVxlan == nil || *got.VsVxlan != 62.0/12 {
		t.Errorf("round trip: %+v", got)
	}
	var doc map[string]any
	json.Unmarshal(b.Bytes(), &doc)
	for _, key := range []string{"machine", "settings", "runs", "metric_descriptions", "took_seconds"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("JSON lacks %q", key)
		}
	}
}

// chartBars decodes an SVG with encoding/xml (failing on malformed XML) and
// counts the bars per path, keyed "underlay/path".
func chartBars(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	bars := map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = el.Name.Local
		}
		attr := map[string]string{}
		for _, a := range el.Attr {
			attr[a.Name.Local] = a.Value
		}
		if el.Name.Local == "rect" && attr["class"] == "bar" {
			bars[attr["data-underlay"]+"/"+attr["data-path"]]++
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return bars
}

func TestWriteChart(t *testing.T) {
	var b bytes.Buffer
	if err := syntheticResult().WriteChart(&b); err != nil {
		t.Fatal(err)
	}
	bars := chartBars(t, b.Bytes())
	for _, u := range []string{"wire", "offload"} {
		for _, p := range AllPaths {
			want := len(chartPanels(Settings{}))
			if !isWeftPath(p) && p != PathWireguardGo {
				want-- // no daemon CPU for kernel paths
			}
			if got := bars[u+"/"+p]; got != want {
				t.Errorf("%s/%s: %d bars, want %d", u, p, got, want)
			}
		}
	}
}

// A result captured from a real `weft bench --repeat 1 --seconds 1` renders.
func TestReportsOfCapturedRun(t *testing.T) {
	res, err := ReadJSON(bytes.NewReader(readTestdata(t, "result-wire-1x1s.json")))
	if err != nil {
		t.Fatal(err)
	}
	var table, chart bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := res.WriteChart(&chart); err != nil {
		t.Fatal(err)
	}
	if bars := chartBars(t, chart.Bytes()); bars["wire/weft"] != len(chartPanels(res.Settings)) {
		t.Errorf("bars: %v", bars)
	}
	if !strings.Contains(table.String(), "weft-water") {
		t.Errorf("table:\n%s", table.String())
	}
}
