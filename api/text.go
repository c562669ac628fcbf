package api

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the status as `weft status` prints it: the node, its
// peers as a table, broken paths and drops.
func (s *Status) WriteText(w io.Writer) {
	if !s.Up() {
		s.writeJoining(w)
		return
	}
	fmt.Fprintf(w, "node      %s\naddress   %s\nsubnet    %s\nnetwork   %s\nmtu       %d\nuptime    %s\n",
		s.Name, s.Address, s.Subnet, s.Network, s.MTU, time.Duration(s.UptimeSeconds)*time.Second)
	if s.Subnet6.IsValid() {
		fmt.Fprintf(w, "address6  %s\nsubnet6   %s\nnetwork6  %s\n", s.Address6, s.Subnet6, s.Network6)
	}
	fmt.Fprintf(w, "underlay  %s %s (mtu %d, %s)\nlisten    %s\ntun       %s (%s)\n",
		s.Underlay.Interface, s.Underlay.Addr, s.Underlay.MTU, s.Underlay.Why, s.Listen, s.Tun.Name, s.Tun.Driver)
	fmt.Fprintf(w, "offloads  tun tso=%s gro=%s%s, udp gso=%s gro=%s%s\n",
		onOff(s.Offloads.Tun.TSO), onOff(s.Offloads.Tun.GRO), because(s.Offloads.Tun.Reason),
		onOff(s.Offloads.UDP.GSO), onOff(s.Offloads.UDP.GRO), because(s.Offloads.UDP.Reason))
	if len(s.Queues) > 0 {
		fmt.Fprintf(w, "queues    %d (packets per queue, tun→wire: %s; wire→tun: %s)\n",
			len(s.Queues), queueCounts(s.Queues, func(q QueueStatus) uint64 { return q.TunReadPackets }),
			queueCounts(s.Queues, func(q QueueStatus) uint64 { return q.TunWritePackets }))
	}
	if e := s.Encryption; e.Enabled {
		fmt.Fprintf(w, "security  %s, keys %v (sending with %d), session %d (rotated %d times, every %v)\n",
			e.Cipher, e.KeyIDs, e.Primary, e.Session, e.Rotations, time.Duration(e.RekeyAfterSeconds*float64(time.Second)))
	} else {
		fmt.Fprintln(w, "security  NONE (--insecure): traffic is neither authenticated nor encrypted")
	}
	if s.LeaseTTL != "" {
		fmt.Fprintf(w, "leases    ttl %s (the cluster's)\n", s.LeaseTTL)
	}
	if s.IPMasq {
		fmt.Fprintf(w, "egress    masqueraded (--ip-masq: nftables table weft)\n")
	}
	if s.TraceReaders > 0 {
		fmt.Fprintf(w, "trace     %d weft trace session(s) attached\n", s.TraceReaders)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tSUBNET\tENDPOINT\tSTATE\tLAST HEARD\tPATH\tRTT\tLOSS\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tCHECKED")
	var broken []string
	for _, p := range s.Peers {
		heard := "-" // static peers are not heard from
		if p.LastSeen != nil {
			heard = Ago(*p.LastSeen)
		}
		checked := "-"
		if p.Path.Checked != nil {
			checked = Ago(*p.Path.Checked)
		}
		rtt := "-"
		if p.Path.LastOK != nil {
			rtt = fmt.Sprintf("%.2fms", p.Path.RTTMs)
		}
		subnet := p.Subnet.String()
		if p.Subnet6.IsValid() {
			subnet += "," + p.Subnet6.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f%%\t%d\t%d\t%d\t%d\t%s\n", p.Name, subnet, p.Endpoint, p.State, heard,
			p.Path.State, rtt, 100*p.Path.Loss, p.RxPackets, p.RxBytes, p.TxPackets, p.TxBytes, checked)
		if p.Path.State == PathUnreachable {
			broken = append(broken, fmt.Sprintf("path to %s unreachable: %s", p.Name, p.Path.Reason))
		}
	}
	if len(s.Peers) == 0 {
		fmt.Fprintln(tw, "(no peers)")
	}
	tw.Flush()
	for _, b := range broken {
		fmt.Fprintln(w, b)
	}
	var drops []string
	for reason, n := range s.Drops {
		if n > 0 && reason != DropMulticast {
			drops = append(drops, fmt.Sprintf("%s=%d", reason, n))
		}
	}
	slices.Sort(drops)
	if len(drops) == 0 {
		drops = []string{"none"}
	}
	fmt.Fprintf(w, "\ndrops     %s\n", strings.Join(drops, " "))
}

// queueCounts is one counter of each queue, space-separated.
func queueCounts(qs []QueueStatus, counter func(QueueStatus) uint64) string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = fmt.Sprint(counter(q))
	}
	return strings.Join(out, " ")
}

// Ago says how long before now t was, to the second: "3s ago".
func Ago(t time.Time) string {
	return max(time.Since(t), 0).Round(time.Second).String() + " ago"
}

// writeJoining prints a node that is still joining its cluster.
func (s *Status) writeJoining(w io.Writer) {
	fmt.Fprintf(w, "node      %s\nstate     %s\nnetwork   %s\n", s.Name, s.State, s.Network)
	j := s.Join
	if j == nil {
		return
	}
	fmt.Fprintf(w, "seeds     %s\n", strings.Join(j.Seeds, " "))
	if len(j.Known) > 0 {
		fmt.Fprintf(w, "known     %s (remembered members, tried as well)\n", strings.Join(j.Known, " "))
	}
	since := time.Since(j.Since).Round(time.Second)
	switch {
	case j.Synced:
		fmt.Fprintf(w, "joined    synced with the cluster; settling a subnet (joining for %s)\n", since)
	case j.LastError != "":
		fmt.Fprintf(w, "waiting   for a seed to answer, %d attempts in %s; no subnet is claimed until one does\nlast err  %s\n", j.Attempts, since, j.LastError)
	default:
		fmt.Fprintf(w, "waiting   for a seed to answer (joining for %s)\n", since)
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}
