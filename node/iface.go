package node

// Choosing the underlay by --iface rules. On a host with several networks
// the default route is often the wrong choice: lab VMs reach the internet
// through a NAT interface that has the same address on every VM (VirtualBox
// gives each 10.0.2.15) and share a second, host-only network. The rules say
// which interface or network the nodes share; the first rule that matches
// an interface wins. matchIface is pure: FindUnderlay (underlay.go) feeds it
// the host's interfaces and a route lookup.

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/weftnet/weft/api"
)

// IfaceRule is one --iface value: an interface name or glob ("eth1",
// "enp0s*"), a CIDR the address must lie in ("192.168.56.0/24"), or
// "can-reach=ADDR", the interface of the route to ADDR.
type IfaceRule struct {
	value string       // as given
	glob  string       // name or glob; "" for the other kinds
	cidr  netip.Prefix // masked
	reach netip.Addr
}

// reachPrefix starts a can-reach rule (Calico's IP_AUTODETECTION_METHOD
// spelling).
const reachPrefix = "can-reach="

// ifaceWant is what every --iface error ends with.
const ifaceWant = "want an interface name (eth1), a glob (enp0s*), a CIDR (192.168.56.0/24) or can-reach=IP"

// ParseIfaceRule parses one --iface value.
func ParseIfaceRule(s string) (IfaceRule, error) {
	r := IfaceRule{value: s}
	switch {
	case strings.TrimSpace(s) == "":
		return r, errors.New("empty: " + ifaceWant)
	case strings.HasPrefix(s, reachPrefix):
		a, err := netip.ParseAddr(strings.TrimPrefix(s, reachPrefix))
		if err != nil {
			return r, fmt.Errorf("%q: %s needs an IP address", s, reachPrefix)
		}
		r.reach = a.Unmap()
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return r, fmt.Errorf("%q is not a CIDR: %s", s, ifaceWant)
		}
		// A host address with its length (from `ip addr`) means its network.
		r.cidr = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
	default:
		if a, err := netip.ParseAddr(s); err == nil {
			return r, fmt.Errorf("%q is an address, not an interface: give --advertise %s, or a CIDR such as %s", s, a, netip.PrefixFrom(a, a.BitLen()))
		}
		if strings.ContainsAny(s, "= \t:") { // no interface name has these
			return r, fmt.Errorf("%q: %s", s, ifaceWant)
		}
		if _, err := path.Match(s, ""); err != nil {
			return r, fmt.Errorf("%q is not a valid glob: %s", s, ifaceWant)
		}
		if len(s) > 15 && !strings.ContainsAny(s, "*?[") {
			return r, fmt.Errorf("%q: interface names are at most 15 bytes", s)
		}
		r.glob = s
	}
	return r, nil
}

// String returns the rule as given.
func (r IfaceRule) String() string { return r.value }

// hostIface is one interface of the host as the underlay choice sees it.
type hostIface struct {
	name  string
	index int
	mtu   int
	up    bool
	addrs []netip.Addr // global unicast, IPv4 first, in the kernel's order
}

// routeTo answers can-reach: the interface index and preferred source
// address of the route to an address (netlink's RouteGet).
type routeTo func(netip.Addr) (index int, src netip.Addr, err error)

// matchIface picks the underlay by rules, in order: the first rule that
// matches an interface that is up and has an address wins. Interfaces are
// tried in the order given (the kernel's). The error, one line, lists what
// the host has, so the operator sees what to write instead.
func matchIface(rules []IfaceRule, ifs []hostIface, route routeTo) (Underlay, error) {
	var notes []string
	for _, r := range rules {
		u, ok, note := r.match(ifs, route)
		if ok {
			u.Rule = "--iface " + r.value
			u.Why = "chosen by " + u.Rule
			if len(rules) > 1 {
				u.Why += fmt.Sprintf(" (of %d rules)", len(rules))
			}
			return u, nil
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	values := make([]string, len(rules))
	for i, r := range rules {
		values[i] = r.value
	}
	msg := fmt.Sprintf("--iface %s: no interface that is up and has an address matches", strings.Join(values, ", "))
	if len(notes) > 0 {
		msg += " (" + strings.Join(notes, "; ") + ")"
	}
	return Underlay{}, fmt.Errorf("%s; this host has %s", msg, describeIfaces(ifs))
}

// match tries one rule; note says why a can-reach rule found nothing.
func (r IfaceRule) match(ifs []hostIface, route routeTo) (u Underlay, ok bool, note string) {
	pick := func(h hostIface, a netip.Addr) (Underlay, bool, string) {
		return Underlay{Interface: h.name, Addr: a, MTU: h.mtu}, true, ""
	}
	switch {
	case r.glob != "":
		for _, h := range ifs {
			if m, _ := path.Match(r.glob, h.name); m && h.up && len(h.addrs) > 0 {
				return pick(h, h.addrs[0])
			}
		}
	case r.cidr.IsValid():
		for _, h := range ifs {
			for _, a := range h.addrs {
				if h.up && r.cidr.Contains(a) {
					return pick(h, a)
				}
			}
		}
	case r.reach.IsValid():
		index, src, err := route(r.reach)
		if err != nil {
			return u, false, fmt.Sprintf("no route to %s: %v", r.reach, err)
		}
		for _, h := range ifs {
			if h.index != index || !h.up || len(h.addrs) == 0 {
				continue
			}
			for _, a := range h.addrs {
				if a == src {
					return pick(h, a)
				}
			}
			return pick(h, h.addrs[0])
		}
		return u, false, fmt.Sprintf("the route to %s leaves by an interface without a usable address", r.reach)
	}
	return u, false, ""
}

// candidates lists the interfaces that could carry the underlay: up, with a
// global IPv4 address outside the overlay network.
func candidates(ifs []hostIface, network netip.Prefix) []api.Candidate {
	var out []api.Candidate
	for _, h := range ifs {
		for _, a := range h.addrs {
			if h.up && a.Is4() && !network.Contains(a) {
				out = append(out, api.Candidate{Interface: h.name, Addr: a})
				break
			}
		}
	}
	return out
}

// describeIfaces lists interfaces with their addresses for an error.
func describeIfaces(ifs []hostIface) string {
	var parts []string
	for _, h := range ifs {
		s := h.name
		for _, a := range h.addrs {
			s += " " + a.String()
		}
		switch {
		case !h.up && len(h.addrs) == 0:
			s += " (down, no address)"
		case !h.up:
			s += " (down)"
		case len(h.addrs) == 0:
			s += " (no address)"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "no interfaces but loopback"
	}
	return strings.Join(parts, ", ")
}
