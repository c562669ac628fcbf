package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the result as aligned text: per underlay mode, one row
// per metric and one column per path; each cell is the median with the
// spread (min–max) of the repetitions, and rows marked "vs vxlan" divide
// each path's median by its baseline's (vxlan, or vxlan-v6 for the -v6
// paths).
func (res *Result) WriteTable(w io.Writer) error {
	s := res.Settings
	var b strings.Builder
	fmt.Fprintf(&b, "weft bench: %d hosts, %d × %d s per run and path; median (min–max) over the repetitions\n",
		s.Hosts, s.Repeat, s.Seconds)
	if s.Command != "" {
		fmt.Fprintf(&b, "command:    %s\n", s.Command)
	}
	fmt.Fprintf(&b, "machine:    %s\n", res.Machine.summary())
	fmt.Fprintf(&b, "weft:       %s\n", s.queuesText())
	for _, u := range s.Underlays {
		fmt.Fprintf(&b, "\n%s underlay (%s)\n", u, UnderlayInfo[Underlay(u)])
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, "metric")
		for _, p := range s.Paths {
			fmt.Fprintf(tw, "\t%s", p)
		}
		fmt.Fprintln(tw)
		for _, m := range s.metrics() {
			fmt.Fprintf(tw, "%s (%s)", m.Label, m.Unit)
			for _, p := range s.Paths {
				fmt.Fprintf(tw, "\t%s", fmtCell(res.Find(u, p).Get(m.Key)))
			}
			fmt.Fprintln(tw)
			if !m.Ratio || !res.hasBaseline(u) {
				continue
			}
			fmt.Fprint(tw, "  vs vxlan")
			for _, p := range s.Paths {
				cell := ""
				if mr := res.Find(u, p).Get(m.Key); mr != nil && mr.VsVxlan != nil {
					cell = fmtNum(*mr.VsVxlan) + "×"
				}
				fmt.Fprintf(tw, "\t%s", cell)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(&b, "\npaths:\n")
	for _, p := range s.Paths {
		fmt.Fprintf(&b, "  %-14s %s\n", p, PathInfo[p])
	}
	fmt.Fprint(&b, `notes:
  UDP 64 B: iperf3 -u -l 64 -b 0 (an unlimited sender); delivered = datagrams the receiver got per second.
  TCP ×N: iperf3 -P N, N parallel streams (--flows); each has its own ports, so the kernel spreads them over queues.
  vs vxlan: the path's median over vxlan's; the -v6 paths' (inner IPv6) over vxlan-v6's.
  RTT: ping -i 0.01; under load = while one TCP stream runs over the same path.
  daemon CPU per GB: user+system seconds of the path's userspace processes (weft, wireguard-go) on all hosts
    during the TCP ×1 run, per 10^9 bytes received; daemon CPU use: the same seconds per second (1 core = 1.0).
  all CPUs busy: share of the whole machine's CPU time not idle during the TCP ×1 run (iperf3, kernel and weft).
  daemon RSS: VmRSS of the larger such process, idle after start and during the loaded run.
`)
	// tabwriter pads empty last cells; drop the trailing blanks.
	var out strings.Builder
	for line := range strings.Lines(b.String()) {
		out.WriteString(strings.TrimRight(line, " \n") + "\n")
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// hasBaseline reports whether a baseline path ran in underlay mode u.
func (res *Result) hasBaseline(u string) bool {
	return res.Find(u, PathVXLAN) != nil || res.Find(u, PathVXLAN6) != nil
}

// queuesText says how many queues the weft paths ran with.
func (s Settings) queuesText() string {
	if s.Queues == 0 {
		return "--queues default (min(cores, 8); weft-water 1)"
	}
	return fmt.Sprintf("--queues %d (weft-water 1)", s.Queues)
}

// fmtCell formats a metric's median and spread; "-" when it was not
// measured.
func fmtCell(m *MetricResult) string {
	if m == nil || len(m.Samples) == 0 {
		return "-"
	}
	if len(m.Samples) == 1 || fmtNum(m.Min) == fmtNum(m.Max) {
		return fmtNum(m.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(m.Median), fmtNum(m.Min), fmtNum(m.Max))
}

// fmtNum prints v with about three significant digits.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "?"
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a >= 0.01:
		return fmt.Sprintf("%.3f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

// summary is the machine in one line.
func (m Machine) summary() string {
	parts := []string{"Linux " + m.Kernel}
	cpu := fmt.Sprintf("%d CPUs", m.CPUs)
	if m.CPUModel != "" {
		cpu += " (" + m.CPUModel + ")"
	}
	parts = append(parts, cpu)
	if m.WeftVersion != "" {
		weft := "weft " + m.WeftVersion
		if m.WeftRevision != "" {
			weft += " @ " + shortRev(m.WeftRevision)
		}
		if m.WeftGoVersion != "" {
			weft += " built with " + m.WeftGoVersion
		}
		parts = append(parts, weft)
	}
	if m.Iperf3 != "" {
		parts = append(parts, m.Iperf3)
	}
	return strings.Join(parts, ", ")
}

// shortRev shortens a VCS revision, keeping a "+dirty" mark.
func shortRev(rev string) string {
	hash, dirty, _ := strings.Cut(rev, "+")
	if len(hash) > 12 {
		hash = hash[:12]
	}
	if dirty != "" {
		return hash + "+" + dirty
	}
	return hash
}
