package node

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ServedFrom says which interface other than the TUN (tun) holds an address
// of one of subnets, as "cni0 holds 10.244.1.1/24"; "" when none does. A
// bridge that CNI or Docker (`weft env`) set up from the node's subnet holds
// its gateway address there from the first container on, so an address
// here means the node has handed addresses out of the subnet.
func ServedFrom(subnets []netip.Prefix, tun string) (string, error) {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		for _, s := range subnets {
			if !s.IsValid() || !s.Contains(ip) {
				continue
			}
			name := fmt.Sprintf("interface %d", a.LinkIndex)
			if link, err := netlink.LinkByIndex(a.LinkIndex); err == nil {
				name = link.Attrs().Name
			}
			if name == tun {
				continue
			}
			ones, _ := a.Mask.Size()
			return fmt.Sprintf("%s holds %s", name, netip.PrefixFrom(ip, ones)), nil
		}
	}
	return "", nil
}
