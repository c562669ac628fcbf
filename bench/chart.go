package bench

// The SVG chart: one panel per headline metric, two panels a row. In each
// panel the bars are grouped by underlay mode, one horizontal bar per path
// (labelled on the left, coloured per path), with the median written at the
// end of the bar, its ratio to its baseline (vxlan of the same family)
// beside it, and a whisker for the spread (min–max). The TCP panels, one per
// number of flows, share one scale, so throughput by number of flows reads
// off the bars' lengths. Hand-written SVG: no dependency, and text stays
// text.

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// chartPanel is one metric's panel.
type chartPanel struct{ key, title string }

// chartPanels are the panels of a chart of s, in order: TCP throughput by
// number of flows (one panel per count), then chartOthers.
func chartPanels(s Settings) []chartPanel {
	var out []chartPanel
	for _, n := range s.flows() {
		title := fmt.Sprintf("TCP, %d streams", n)
		if n == 1 {
			title = "TCP, 1 stream"
		}
		out = append(out, chartPanel{TCPMetric(n).Key, title})
	}
	return append(out, chartOthers...)
}

// scaleKeys are the metrics whose values set the scale of key's panel: all
// TCP throughputs for a TCP panel, else key alone.
func (s Settings) scaleKeys(key string) []string {
	var tcp []string
	for _, n := range s.flows() {
		tcp = append(tcp, TCPMetric(n).Key)
	}
	if slices.Contains(tcp, key) {
		return tcp
	}
	return []string{key}
}

// chartOthers are the panels after throughput.
var chartOthers = []chartPanel{
	{UDPRate, "64-byte UDP datagrams delivered"},
	{CPUPerGB, "Daemon CPU time per GB moved (TCP, 1 stream)"},
	{RTTIdleP50, "Ping round trip, idle (median)"},
	{RTTLoadP50, "Ping round trip under one TCP stream (median)"},
}

// pathColors are Paul Tol's "bright" colours, which stay apart for
// colour-blind readers; unknown paths get grey.
var pathColors = map[string]string{
	PathUnderlay:     "#BBBBBB",
	PathVXLAN:        "#4477AA",
	PathVXLAN6:       "#66CCEE", // a lighter kin of its IPv4 path's colour
	PathWeft:         "#EE6677",
	PathWeft6:        "#EE8866",
	PathWeftInsecure: "#CCBB44",
	PathWeftWater:    "#AA3377",
	PathWireguardGo:  "#228833",
}

// Chart geometry, in SVG user units (pixels).
const (
	chartMargin = 20
	panelW      = 480
	panelGapX   = 30
	panelGapY   = 24
	labelW      = 100 // path names, right-aligned
	valueW      = 110 // the value label after the longest bar
	barH        = 14
	barGap      = 5
	groupH      = 18 // "wire" / "offload" group heading
	panelTitleH = 38
	axisH       = 40
	headerH     = 94
	footerLineH = 15 // the footer: one line per underlay mode
)

// WriteChart writes an SVG bar chart of throughput, latency and weft's CPU
// cost per path and underlay mode.
func (res *Result) WriteChart(w io.Writer) error {
	s := res.Settings
	panels := chartPanels(s)
	cols := 2
	rows := (len(panels) + cols - 1) / cols
	ph := panelTitleH + len(s.Underlays)*(groupH+len(s.Paths)*(barH+barGap)) + axisH
	width := 2*chartMargin + cols*panelW + (cols-1)*panelGapX
	footerH := 25 + footerLineH*len(s.Underlays)
	height := headerH + rows*ph + (rows-1)*panelGapY + footerH

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="17" font-weight="bold">weft bench: data paths from host h1 to h2 (network namespaces, %d hosts)</text>`+"\n",
		chartMargin, s.Hosts)
	runs := fmt.Sprintf("%d runs", s.Repeat)
	if s.Repeat == 1 {
		runs = "1 run"
	}
	fmt.Fprintf(&b, `<text x="%d" y="48" fill="#444444">%s</text>`+"\n", chartMargin, esc(res.Machine.summary()))
	fmt.Fprintf(&b, `<text x="%d" y="64" fill="#444444">%s</text>`+"\n", chartMargin,
		esc(fmt.Sprintf("Bars: median of %s of %d s per path; whiskers: min–max; grey “0.25×”: ratio to vxlan’s median (-v6 paths: vxlan-v6’s) in the same underlay mode.",
			runs, s.Seconds)))
	fmt.Fprintf(&b, `<text x="%d" y="80" fill="#444444">%s</text>`+"\n", chartMargin, esc("weft "+s.queuesText()))
	for i, p := range panels {
		x := chartMargin + (i%cols)*(panelW+panelGapX)
		y := headerH + (i/cols)*(ph+panelGapY)
		res.writePanel(&b, p.key, p.title, x, y, ph)
	}
	fy := height - footerH + 18
	for _, u := range s.Underlays {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#444444"><tspan font-weight="bold">%s</tspan>: %s</text>`+"\n",
			chartMargin, fy, esc(u), esc(UnderlayInfo[Underlay(u)]))
		fy += footerLineH
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writePanel draws one metric's panel with its top-left corner at (x, y).
func (res *Result) writePanel(b *strings.Builder, key, title string, x, y, h int) {
	m, _ := MetricByKey(key)
	s := res.Settings
	better := "lower is better"
	if m.Higher {
		better = "higher is better"
	}
	fmt.Fprintf(b, `<g class="panel" data-metric="%s">`+"\n", esc(key))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#dddddd"/>`+"\n", x, y, panelW, h)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", x+10, y+18, esc(title))
	fmt.Fprintf(b, `<text x="%d" y="%d" fill="#666666">%s, %s</text>`+"\n", x+10, y+32, esc(m.Unit), better)

	// The scale covers the largest whisker of the panel, or of all TCP
	// panels for one of them.
	top := 0.0
	for _, k := range s.scaleKeys(key) {
		for _, r := range res.Runs {
			if mr := r.Get(k); mr != nil {
				top = max(top, mr.Max, mr.Median)
			}
		}
	}
	step, axisMax := niceScale(top)
	plotX, plotW := x+labelW, panelW-labelW-valueW
	plotTop, plotBottom := y+panelTitleH, y+h-axisH
	scale := func(v float64) float64 { return float64(plotX) + v/axisMax*float64(plotW) }

	// Grid lines and tick labels.
	for v := 0.0; v <= axisMax*(1+1e-9); v += step {
		gx := scale(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eeeeee"/>`+"\n", gx, plotTop, gx, plotBottom)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555555" font-size="10">%s</text>`+"\n",
			gx, plotBottom+13, fmtTick(v, step))
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888888"/>`+"\n", plotX, plotBottom, plotX+plotW, plotBottom)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888888"/>`+"\n", plotX, plotTop, plotX, plotBottom)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" fill="#333333">%s (%s)</text>`+"\n",
		plotX+plotW/2, plotBottom+30, esc(m.Label), esc(m.Unit))

	rowY := plotTop
	for _, u := range s.Underlays {
		fmt.Fprintf(b, `<text x="%d" y="%d" font-style="italic" fill="#333333">%s underlay</text>`+"\n",
			x+10, rowY+13, esc(u))
		rowY += groupH
		for _, p := range s.Paths {
			mr := res.Find(u, p).Get(key)
			fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", plotX-6, rowY+barH-3, esc(p))
			if mr == nil || len(mr.Samples) == 0 {
				fmt.Fprintf(b, `<text x="%d" y="%d" fill="#888888">not measured</text>`+"\n", plotX+6, rowY+barH-3)
				rowY += barH + barGap
				continue
			}
			end := scale(mr.Median)
			fmt.Fprintf(b, `<rect class="bar" data-path="%s" data-underlay="%s" data-metric="%s" x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s %s</title></rect>`+"\n",
				esc(p), esc(u), esc(key), plotX, rowY, math.Max(end-float64(plotX), 1), barH, pathColor(p),
				esc(u), esc(p), esc(fmtCell(mr)), esc(m.Unit))
			labelX := end
			if len(mr.Samples) > 1 && mr.Max > mr.Min {
				lo, hi, cy := scale(mr.Min), scale(mr.Max), float64(rowY)+barH/2.0
				fmt.Fprintf(b, `<path d="M%.1f %.1fH%.1fM%.1f %.1fV%.1fM%.1f %.1fV%.1f" stroke="#222222" fill="none"/>`+"\n",
					lo, cy, hi, lo, cy-4, cy+4, hi, cy-4, cy+4)
				labelX = math.Max(labelX, hi)
			}
			label := fmtNum(mr.Median)
			if mr.VsVxlan != nil {
				label += fmt.Sprintf(`<tspan dx="5" fill="#777777">%s×</tspan>`, fmtNum(*mr.VsVxlan))
			}
			fmt.Fprintf(b, `<text x="%.1f" y="%d">%s</text>`+"\n", labelX+4, rowY+barH-3, label)
			rowY += barH + barGap
		}
	}
	b.WriteString("</g>\n")
}

// niceScale returns a tick step of 1, 2 or 5 × 10^n giving about five ticks
// up to top, and the axis maximum (a multiple of the step, ≥ top).
func niceScale(top float64) (step, axisMax float64) {
	if top <= 0 || math.IsNaN(top) || math.IsInf(top, 0) {
		return 1, 1
	}
	raw := top / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, f := range []float64{1, 2, 5, 10} {
		if step = f * mag; step >= raw {
			break
		}
	}
	return step, math.Ceil(top/step-1e-9) * step
}

// fmtTick prints an axis value with as many decimals as the step needs.
func fmtTick(v, step float64) string {
	return strconv.FormatFloat(v, 'f', max(0, int(-math.Floor(math.Log10(step)))), 64)
}

func pathColor(p string) string {
	if c, ok := pathColors[p]; ok {
		return c
	}
	return "#888888"
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func esc(s string) string { return xmlEscaper.Replace(s) }
