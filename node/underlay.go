package node

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

// Underlay is the host interface weft's UDP traffic leaves by, and why it was
// chosen (status shows it as it is).
type Underlay = api.Underlay

// FindUnderlay picks the underlay, once, for gossip and the data plane: the
// interface holding --advertise if given; else the first --iface rule that
// matches (iface.go); else the interface holding the --listen address if
// that is specific; else the interface of the IPv4 default route with its
// first global address. It also lists the candidates weft doctor looks at.
func FindUnderlay(c *Config) (Underlay, error) {
	ifs, err := hostIfaces(c.TunName)
	if err != nil {
		return Underlay{}, err
	}
	u, err := chooseUnderlay(c, ifs)
	if err != nil {
		return Underlay{}, err
	}
	u.Candidates = candidates(ifs, c.Network)
	return u, nil
}

func chooseUnderlay(c *Config, ifs []hostIface) (Underlay, error) {
	listen := c.Listen.Addr()
	switch {
	case c.Advertise.IsValid():
		why := "given by --advertise"
		if len(c.Iface) > 0 {
			why += " (which overrides --iface)"
		}
		return underlayByAddr(c.Advertise, api.RuleAdvertise, why)
	case len(c.Iface) > 0:
		u, err := matchIface(c.Iface, ifs, routeGet)
		if err == nil && listen.IsValid() && !listen.IsUnspecified() && listen != u.Addr {
			err = fmt.Errorf("%s picked %s (%s), but --listen binds %s: make them agree, or listen on all addresses (--listen 0.0.0.0:%d)",
				u.Rule, u.Addr, u.Interface, listen, c.Listen.Port())
		}
		return u, err
	case listen.IsValid() && !listen.IsUnspecified():
		return underlayByAddr(listen, api.RuleListen, "the --listen address")
	}
	return defaultRouteUnderlay()
}

// defaultRouteUnderlay is the interface of the IPv4 default route with its
// preferred source or first global address.
func defaultRouteUnderlay() (Underlay, error) {
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return Underlay{}, fmt.Errorf("list routes: %w", err)
	}
	var best *netlink.Route
	for i, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask)) && r.LinkIndex > 0 {
			if best == nil || r.Priority < best.Priority {
				best = &routes[i]
			}
		}
	}
	if best == nil {
		return Underlay{}, fmt.Errorf("--iface: this host has no IPv4 default route, so say which interface or network the nodes share (--iface eth1, --iface 192.168.56.0/24) or give --advertise")
	}
	link, err := netlink.LinkByIndex(best.LinkIndex)
	if err != nil {
		return Underlay{}, fmt.Errorf("default route's interface %d: %w", best.LinkIndex, err)
	}
	addr, ok := netip.AddrFromSlice(best.Src)
	if !ok || !addr.IsValid() {
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return Underlay{}, fmt.Errorf("addresses of %s: %w", link.Attrs().Name, err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				addr = ip.Unmap()
				break
			}
		}
	}
	if !addr.IsValid() {
		return Underlay{}, fmt.Errorf("--iface: default-route interface %s has no usable IPv4 address; say which interface the nodes share with --iface, or give --advertise", link.Attrs().Name)
	}
	return Underlay{
		Interface: link.Attrs().Name,
		Addr:      addr.Unmap(),
		MTU:       link.Attrs().MTU,
		Why:       "interface of the default route",
		Rule:      api.RuleDefaultRoute,
	}, nil
}

// hostIfaces lists the host's interfaces but loopback and the TUN (a
// previous run's, or one of another overlay named alike), with their global
// unicast addresses, IPv4 first.
func hostIfaces(tun string) ([]hostIface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []hostIface
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 || a.Name == tun {
			continue
		}
		h := hostIface{name: a.Name, index: a.Index, mtu: a.MTU,
			up: a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperDown}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip.Unmap().IsGlobalUnicast() {
				h.addrs = append(h.addrs, ip.Unmap())
			}
		}
		slices.SortStableFunc(h.addrs, func(x, y netip.Addr) int {
			return cmp.Compare(x.BitLen(), y.BitLen())
		})
		out = append(out, h)
	}
	return out, nil
}

// routeGet is netlink's answer for can-reach: the route the kernel would
// use to a.
func routeGet(a netip.Addr) (int, netip.Addr, error) {
	routes, err := netlink.RouteGet(a.AsSlice())
	if err != nil {
		return 0, netip.Addr{}, err
	}
	if len(routes) == 0 {
		return 0, netip.Addr{}, errors.New("no route")
	}
	src, _ := netip.AddrFromSlice(routes[0].Src)
	return routes[0].LinkIndex, src.Unmap(), nil
}

// CheckPeers refuses a static --peer whose endpoint is this node itself: the
// underlay's address, or, while the node listens on all addresses, any
// address of this host, at the --listen port. Two hosts that advertise the
// same address (a NAT interface every VM has) end up like this.
func CheckPeers(c *Config, under Underlay) error {
	local := map[netip.Addr]bool{under.Addr: true}
	if c.Listen.Addr().IsUnspecified() {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("list addresses: %w", err)
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				local[ip.Unmap()] = true
			}
		}
	}
	return selfPeer(c.Peers, c.Listen.Port(), local, under)
}

// selfPeer is CheckPeers' decision: local holds this host's addresses that
// reach the node at port.
func selfPeer(peers []peer.Info, port uint16, local map[netip.Addr]bool, under Underlay) error {
	for _, p := range peers {
		if p.Endpoint.Port() == port && local[p.Endpoint.Addr()] {
			return fmt.Errorf("--peer %s: endpoint %s is this node's own (this node uses %s on %s, %s): two hosts share that address; choose the address the nodes share with --iface or --advertise, here and on %s",
				p.Name, p.Endpoint, under.Addr, under.Interface, under.Why, p.Name)
		}
	}
	return nil
}

func isZeroMask(m []byte) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

// underlayByAddr is the interface holding want; flag (the rule) names the
// flag that gave it.
func underlayByAddr(want netip.Addr, flag, why string) (Underlay, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return Underlay{}, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap() != want.Unmap() {
			continue
		}
		link, err := netlink.LinkByIndex(a.LinkIndex)
		if err != nil {
			return Underlay{}, fmt.Errorf("interface of %s: %w", want, err)
		}
		return Underlay{Interface: link.Attrs().Name, Addr: want.Unmap(), MTU: link.Attrs().MTU, Why: why, Rule: flag}, nil
	}
	return Underlay{}, fmt.Errorf("%s %s is not an address of this host", flag, want)
}

// overhead is what the underlay adds to each inner packet: outer IP and UDP
// headers plus the codec's own bytes.
func overhead(underlay netip.Addr, headroom, tailroom int) int {
	ipHdr := 20
	if underlay.Is6() {
		ipHdr = 40
	}
	return ipHdr + 8 + headroom + tailroom
}
