package doctor

import (
	"fmt"
	"os"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api"
)

// checkDualStack: a dual-stack node's IPv6 half needs IPv6 forwarding for
// containers behind it, and the peers' IPv6 subnets must route into the TUN.
func checkDualStack(f *findings, s *api.Status) {
	if !s.Subnet6.IsValid() {
		return
	}
	checkForwarding6(f, "/proc/sys/net/ipv6/conf/all/forwarding")
	link, err := netlink.LinkByName(s.Tun.Name)
	if err != nil {
		return // checkTun reported it
	}
	var missing []string
	for _, p := range s.Peers {
		if !p.State.Routable() || !p.Subnet6.IsValid() {
			continue
		}
		routes, err := netlink.RouteGet(p.Subnet6.Addr().AsSlice())
		if err != nil || len(routes) == 0 || routes[0].LinkIndex != link.Attrs().Index {
			missing = append(missing, fmt.Sprintf("%s (%s)", p.Subnet6, p.Name))
		}
	}
	if len(missing) > 0 {
		f.fail(fmt.Sprintf("look for a route that shadows %s (ip -6 route get <address>) and remove it, or restart weft", s.Network6),
			"traffic to %s does not go through %s", strings.Join(missing, ", "), s.Tun.Name)
	} else {
		f.ok("IPv6 routes to %s go through %s", s.Network6, s.Tun.Name)
	}
}

// checkForwarding6 reads the IPv6 forwarding sysctl at path.
func checkForwarding6(f *findings, path string) {
	b, err := os.ReadFile(path)
	switch {
	case err != nil:
		f.warn("", "cannot read net.ipv6.conf.all.forwarding: %v", err)
	case strings.TrimSpace(string(b)) != "1":
		f.warn("sysctl -w net.ipv6.conf.all.forwarding=1 (and set it in /etc/sysctl.d/ to keep it)",
			"IPv6 forwarding is off: this host reaches the IPv6 overlay, but containers behind it cannot")
	default:
		f.ok("IPv6 forwarding is on")
	}
}
