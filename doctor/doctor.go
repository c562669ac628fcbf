// Package doctor checks a running node and its host — the TUN, the
// underlay's MTU and whether its address is one other hosts share, routes, IP forwarding, the key file, the clock, every
// peer's path and the drops that point at a misconfiguration — and says what
// is wrong and how to fix it. `weft doctor` prints its findings.
package doctor

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
)

// Verdicts, worst last.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "FAIL"
)

// Finding is one check's result: what was found and, if it is wrong, how to
// fix it.
type Finding struct {
	Verdict, What, Fix string
}

type findings []Finding

func (f *findings) ok(format string, args ...any) {
	*f = append(*f, Finding{OK, fmt.Sprintf(format, args...), ""})
}
func (f *findings) warn(fix, format string, args ...any) {
	*f = append(*f, Finding{Warn, fmt.Sprintf(format, args...), fix})
}
func (f *findings) fail(fix, format string, args ...any) {
	*f = append(*f, Finding{Fail, fmt.Sprintf(format, args...), fix})
}

// Check runs every check against the node whose status is s, on this host.
func Check(s *api.Status) []Finding {
	var f findings
	f.ok("node %s is running (subnet %s, up %s)", s.Name, s.Subnet, time.Duration(s.UptimeSeconds)*time.Second)
	checkTun(&f, s)
	checkUnderlay(&f, s)
	checkForwarding(&f)
	checkDualStack(&f, s)
	checkKeys(&f, s)
	checkClock(&f, s)
	checkPeers(&f, s)
	checkDrops(&f, s)
	checkMasq(&f, s)
	return f
}

// Write prints findings as `weft doctor` does, a fix under each problem, and
// reports whether any failed.
func Write(w io.Writer, fs []Finding) (failed bool) {
	for _, x := range fs {
		fmt.Fprintf(w, "%-4s  %s\n", x.Verdict, x.What)
		if x.Fix != "" {
			fmt.Fprintf(w, "      fix: %s\n", x.Fix)
		}
		failed = failed || x.Verdict == Fail
	}
	return failed
}

// checkTun looks at the TUN device, its MTU against the underlay's, and the
// routes to every peer's subnet.
func checkTun(f *findings, s *api.Status) {
	link, err := netlink.LinkByName(s.Tun.Name)
	if err != nil {
		f.fail("restart weft; if it keeps failing, look at its log", "tun %s: %v", s.Tun.Name, err)
		return
	}
	a := link.Attrs()
	switch {
	case a.Flags&net.FlagUp == 0:
		f.fail("ip link set "+s.Tun.Name+" up, or restart weft", "tun %s is down", s.Tun.Name)
	case a.MTU != s.MTU:
		f.fail(fmt.Sprintf("ip link set %s mtu %d (or restart weft)", s.Tun.Name, s.MTU),
			"tun %s has MTU %d, but weft sizes packets for %d (someone changed it)", s.Tun.Name, a.MTU, s.MTU)
	default:
		f.ok("tun %s is up, MTU %d, driver %s", s.Tun.Name, a.MTU, s.Tun.Driver)
	}
	if ul, err := netlink.LinkByName(s.Underlay.Interface); err != nil {
		f.fail("check the host's network; restart weft once it is back", "underlay %s: %v", s.Underlay.Interface, err)
	} else if m := ul.Attrs().MTU; m < s.Underlay.MTU {
		f.fail("restart weft so it sizes its MTU for the underlay again (and restart containers to take the new MTU from subnet.env)",
			"underlay %s's MTU is %d, lower than the %d weft started with: full-size packets will not fit", s.Underlay.Interface, m, s.Underlay.MTU)
	} else {
		f.ok("underlay %s (%s) has MTU %d, room for weft's %d plus encapsulation", s.Underlay.Interface, s.Underlay.Addr, m, s.MTU)
	}
	var missing []string
	for _, p := range s.Peers {
		if !p.State.Routable() {
			continue // not routed
		}
		routes, err := netlink.RouteGet(p.Subnet.Addr().AsSlice())
		if err != nil || len(routes) == 0 || routes[0].LinkIndex != a.Index {
			missing = append(missing, fmt.Sprintf("%s (%s)", p.Subnet, p.Name))
		}
	}
	if len(missing) > 0 {
		f.fail(fmt.Sprintf("look for a route that shadows %s (ip route get <address>) and remove it, or restart weft", s.Network),
			"traffic to %s does not go through %s", strings.Join(missing, ", "), s.Tun.Name)
	} else {
		f.ok("routes to %s go through %s", s.Network, s.Tun.Name)
	}
}

// checkForwarding: containers behind the node reach the overlay only if the
// host forwards between their bridge and the TUN.
func checkForwarding(f *findings) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	switch {
	case err != nil:
		f.warn("", "cannot read net.ipv4.ip_forward: %v", err)
	case strings.TrimSpace(string(b)) != "1":
		f.warn("sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/ to keep it)",
			"IP forwarding is off: this host reaches the overlay, but containers behind it cannot")
	default:
		f.ok("IP forwarding is on")
	}
}

// checkKeys: the key file must be private and hold the keys the node runs
// with, or the next restart changes them.
func checkKeys(f *findings, s *api.Status) {
	e := s.Encryption
	if !e.Enabled {
		f.warn("make a key with 'weft keygen --out FILE', copy it to every node and restart them with --key-file FILE",
			"the node runs --insecure: anyone who can reach UDP %d can inject packets", s.Listen.Port())
		return
	}
	keys, err := encap.ReadKeyFile(e.KeyFile)
	if err != nil {
		f.fail("chmod 600 the key file and make sure it holds the cluster keys", "%v", err)
		return
	}
	var ids []int
	for _, k := range keys {
		ids = append(ids, int(encap.KeyID(k)))
	}
	held := slices.Clone(e.KeyIDs)
	slices.Sort(held)
	inFile := slices.Clone(ids)
	slices.Sort(inFile)
	switch {
	case !slices.Equal(held, inFile):
		f.warn("edit the key file to hold the running keys (see weft key list), the one sent with first",
			"%s holds keys %v but the node runs with %v: a restart would change its keys", e.KeyFile, ids, e.KeyIDs)
	case ids[0] != e.Primary:
		f.warn(fmt.Sprintf("put key %d on the first line of %s", e.Primary, e.KeyFile),
			"the node sends with key %d but %s's first line is key %d: a restart would switch", e.Primary, e.KeyFile, ids[0])
	default:
		f.ok("key file %s is private and matches the running keys %v (sending with %d, %s)", e.KeyFile, e.KeyIDs, e.Primary, e.Cipher)
	}
}

// checkClock: session ids carry their start time; a clock that went back
// below the running session would make a restart's packets look old to
// peers. A second of slack: the id's time is in quarter seconds, and may
// run a tick ahead.
func checkClock(f *findings, s *api.Status) {
	if !s.Encryption.Enabled {
		return
	}
	start := encap.SessionStart(s.Encryption.Session)
	if now := time.Now(); now.Add(time.Second).Before(start) {
		f.fail("fix the clock (NTP) before restarting weft: peers would drop a restarted node's packets as old_session",
			"the clock (%s) is behind the start of this node's sending session (%s)", now.Format(time.RFC3339), start.Format(time.RFC3339))
		return
	}
	f.ok("clock is past the start of the node's sending session")
}

// checkPeers reports every peer's data path.
func checkPeers(f *findings, s *api.Status) {
	if len(s.Peers) == 0 {
		f.warn("give --peer flags, or --join a seed of the cluster", "no peers")
		return
	}
	for _, p := range s.Peers {
		switch p.Path.State {
		case api.PathOK:
			rtt := fmt.Sprintf("rtt %.2f ms", p.Path.RTTMs)
			if p.Path.LastOK == nil {
				rtt = "no probe answered yet, data arrives" // ok from data alone
			}
			checked := ""
			if p.Path.Checked != nil {
				checked = ", checked " + api.Ago(*p.Path.Checked)
			}
			f.ok("path to %s (%s, %s) is ok: %s, loss %.0f%%%s", p.Name, p.Subnet, p.Endpoint, rtt, 100*p.Path.Loss, checked)
		case api.PathUnreachable:
			f.fail(fmt.Sprintf("allow UDP port %d between the nodes (both ways) in every firewall on the way; check the peer with 'weft doctor' there", p.Endpoint.Port()),
				"path to %s (%s) is unreachable: %s", p.Name, p.Subnet, p.Path.Reason)
		default:
			f.warn("", "path to %s (%s) is not known yet: %s", p.Name, p.Subnet, p.Path.Reason)
		}
	}
}

// dropHints explains the drop reasons that point at a misconfiguration.
var dropHints = map[string]string{
	"unknown_key":     "a peer sends under a key this node does not hold: a key rotation is half done, or a node has another cluster's key (weft key list on both)",
	"old_session":     "a peer's clock went back across a restart, or two hosts run with the same --name",
	"unknown_peer":    "datagrams come from an address that is no peer: a node behind NAT, a stale peer list, or someone probing the port",
	"unauthenticated": "a peer runs --insecure while this node has a key",
	"wrong_network":   "a node of another overlay (another network id) sends here",
	"spoofed_source":  "a peer sends packets from addresses outside its subnet: a container with a foreign address, or a forgery",
	"session_limit":   "someone forges new sessions from a peer's address",
	"send_error":      "the host refused to send: see weft's log",
	"tun_write_error": "the TUN refused packets: see weft's log",
	"tun_read_error":  "reads from the TUN failed: see weft's log",
	"udp_read_error":  "reads from the UDP socket failed: see weft's log",
}

// checkDrops lists drops that point at a problem.
func checkDrops(f *findings, s *api.Status) {
	var reasons []string
	for r, n := range s.Drops {
		if n > 0 && dropHints[r] != "" {
			reasons = append(reasons, r)
		}
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		f.warn(dropHints[r], "%d packets dropped as %s since start", s.Drops[r], r)
	}
	if len(reasons) == 0 {
		f.ok("no drops that point at a misconfiguration")
	}
}
