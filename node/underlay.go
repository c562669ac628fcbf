package node

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Underlay is the host interface weft's UDP traffic leaves by, and why it was
// chosen: picking the wrong one is the commonest overlay misconfiguration,
// so the node says at start which it took.
type Underlay struct {
	Interface string     `json:"interface"`
	Addr      netip.Addr `json:"address"`
	MTU       int        `json:"mtu"`
	Why       string     `json:"why"`
}

// FindUnderlay picks the underlay: the interface holding advertise if given,
// else the one holding the listen address if that is specific, else the
// interface of the IPv4 default route with its first global address.
func FindUnderlay(advertise, listen netip.Addr) (Underlay, error) {
	if advertise.IsValid() {
		return underlayByAddr(advertise, "--advertise", "given by --advertise")
	}
	if listen.IsValid() && !listen.IsUnspecified() {
		return underlayByAddr(listen, "--listen", "the --listen address")
	}
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
		return Underlay{}, fmt.Errorf("--advertise: this host has no IPv4 default route, so give the underlay address explicitly")
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
		return Underlay{}, fmt.Errorf("--advertise: default-route interface %s has no usable IPv4 address", link.Attrs().Name)
	}
	return Underlay{
		Interface: link.Attrs().Name,
		Addr:      addr.Unmap(),
		MTU:       link.Attrs().MTU,
		Why:       "interface of the default route",
	}, nil
}

func isZeroMask(m []byte) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

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
		return Underlay{Interface: link.Attrs().Name, Addr: want.Unmap(), MTU: link.Attrs().MTU, Why: why}, nil
	}
	return Underlay{}, fmt.Errorf("%s %s is not an address of this host", flag, want)
}

// dataListen is the address the data socket binds: --listen, except that a
// wildcard --listen (the default, 0.0.0.0) binds the underlay's address
// (--advertise, the address peers key on) when it is of the same family.
// Datagrams then leave from that address whatever source the kernel would
// pick: on a host with several addresses, a route whose preferred source is
// another one, or policy routing, they would otherwise arrive as
// unknown_peer. under is always an address of this host (FindUnderlay).
func dataListen(listen netip.AddrPort, under netip.Addr) netip.AddrPort {
	a := listen.Addr()
	if !a.IsUnspecified() || !under.IsValid() || a.Is4() != under.Is4() {
		return listen
	}
	return netip.AddrPortFrom(under, listen.Port())
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
