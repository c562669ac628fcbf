package doctor

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftnet/weft/api"
)

// natAddr is the address VirtualBox's NAT (and QEMU's user-mode network)
// gives every VM: a node that advertises it shares it with its peers.
var natAddr = netip.MustParseAddr("10.0.2.15")

// checkUnderlay warns about an underlay address other hosts typically have
// too, and about a host with several networks where nothing but the default
// route chose one: the VM trap in which every node advertises the same
// address.
func checkUnderlay(f *findings, s *api.Status) {
	u := s.Underlay
	const share = "weft up --iface NAME, GLOB or CIDR (e.g. --iface 192.168.56.0/24), or --advertise IP"
	fix := "say which network the nodes share: " + share
	warned := false
	switch {
	case u.Addr == natAddr:
		f.warn(fix, "underlay address %s (%s) is the one VirtualBox's and QEMU's NAT give every VM: other nodes likely have it too", u.Addr, u.Interface)
		warned = true
	case u.Addr.IsLinkLocalUnicast():
		f.warn(fix, "underlay address %s (%s) is link-local: other hosts' links may use it too, and it does not route", u.Addr, u.Interface)
		warned = true
	}
	for _, p := range s.Peers {
		if p.State.Routable() && p.Endpoint.Addr() == u.Addr {
			f.warn(fix+", here and on "+p.Name, "peer %s advertises %s as well, this node's underlay address: one of you is on the wrong network", p.Name, u.Addr)
			warned = true
		}
	}
	if len(u.Candidates) > 1 && u.Rule == api.RuleDefaultRoute {
		var names []string
		for _, c := range u.Candidates {
			names = append(names, fmt.Sprintf("%s %s", c.Interface, c.Addr))
		}
		f.warn(fmt.Sprintf("if %s is the network the nodes share, pin it with weft up --iface %s; if not, name the one they share: %s", u.Interface, u.Interface, share),
			"this host has %d networks (%s) and only the default route chose %s", len(u.Candidates), strings.Join(names, ", "), u.Interface)
		warned = true
	}
	if !warned {
		f.ok("underlay %s %s, %s", u.Interface, u.Addr, u.Why)
	}
}
