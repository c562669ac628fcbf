package node

// Dual-stack: a node may hold an IPv6 subnet inside an IPv6 network beside
// its IPv4 ones. The forwarding loops ask these helpers, so one check covers
// both families; for an IPv4 packet the IPv4 test comes first and decides.

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/subnetenv"
)

// overlay is this node's view of the overlay: its networks and subnets,
// the IPv6 ones zero on a single-stack node.
// listen is the UDP listen address, whose family limits the peers' (zero:
// not checked).
type overlay struct {
	network, subnet, network6, subnet6 netip.Prefix
	listen                             netip.Addr
}

func (c *Config) overlay() overlay {
	return overlay{network: c.Network, subnet: c.Subnet, network6: c.Network6, subnet6: c.Subnet6, listen: c.Listen.Addr()}
}

// endpointFamily says why a peer at ep cannot be reached from a socket on
// listen, if it cannot: an IPv4 socket reaches no IPv6 endpoint, and one
// bound to a specific IPv6 address no IPv4 one. Mixed clusters, where some
// nodes are reachable over one family only, are refused here, by peer.
func endpointFamily(name string, ep netip.AddrPort, listen netip.Addr) error {
	switch {
	case !listen.IsValid():
		return nil
	case listen.Is4() && ep.Addr().Is6():
		return fmt.Errorf("peer %q: endpoint %s is IPv6, but this node listens on IPv4 (%s): give every node an underlay of one family (--advertise, --listen '[::]:6081')", name, ep, listen)
	case listen.Is6() && !listen.IsUnspecified() && ep.Addr().Is4():
		return fmt.Errorf("peer %q: endpoint %s is IPv4, but this node listens on %s only: give every node an underlay of one family", name, ep, listen)
	}
	return nil
}

// inNetwork reports whether a lies in the overlay, either family.
func (c *Config) inNetwork(a netip.Addr) bool { return c.Network.Contains(a) || c.Network6.Contains(a) }

// inSubnet reports whether a lies in this node's subnets, either family.
func (c *Config) inSubnet(a netip.Addr) bool { return c.Subnet.Contains(a) || c.Subnet6.Contains(a) }

// DualStack reports whether the node has an IPv6 network beside the IPv4 one.
func (c *Config) DualStack() bool { return c.Network6.IsValid() }

// Address6 is the node's own IPv6 overlay address (subnetenv.NodeAddress of
// Subnet6); zero on a single-stack node.
func (c *Config) Address6() netip.Addr {
	if !c.Subnet6.IsValid() {
		return netip.Addr{}
	}
	return subnetenv.NodeAddress(c.Subnet6)
}

// DeriveSubnet6 sets Subnet6 from Subnet on a dual-stack node
// (subnetenv.Subnet6): gossip leases only the IPv4 subnet. A Subnet6 set
// already (--kube: the Node's IPv6 podCIDR) is kept.
func (c *Config) DeriveSubnet6() error {
	if !c.DualStack() || !c.Subnet.IsValid() || c.Subnet6.IsValid() {
		return nil
	}
	s6, err := subnetenv.Subnet6(c.Network, c.Subnet, c.Network6, c.SubnetLen6)
	if err != nil {
		return fmt.Errorf("--network %s: %w", c.Network6, err)
	}
	c.Subnet6 = s6
	return nil
}

// validate6 checks the IPv6 half of a dual-stack configuration, and that
// the data socket can receive on the advertised address's family.
func (c *Config) validate6() error {
	if a, l := c.Advertise, c.Listen.Addr(); a.Is6() && l.Is4() || a.Is4() && l.Is6() && !l.IsUnspecified() {
		return fmt.Errorf("--listen %s cannot receive what peers send to --advertise %s: use --listen '[::]:%d' (or an address of the same family)", c.Listen, a, c.Listen.Port())
	}
	if !c.Network6.IsValid() {
		if c.Subnet6.IsValid() {
			return fmt.Errorf("IPv6 subnet %s needs an IPv6 --network", c.Subnet6)
		}
		for _, p := range c.Peers {
			if p.Subnet6.IsValid() {
				return fmt.Errorf("--peer %s has the IPv6 subnet %s: give the IPv6 --network too", p.Name, p.Subnet6)
			}
		}
		return nil
	}
	switch {
	case !c.Network.Addr().Is4():
		return errors.New("--network: give one IPv4 and one IPv6 network for dual-stack")
	case c.Network6 != c.Network6.Masked():
		return fmt.Errorf("--network %s: not a network address (did you mean %s?)", c.Network6, c.Network6.Masked())
	}
	if err := subnetenv.CheckRoom6(c.Network, c.SubnetLen, c.Network6, c.SubnetLen6); err != nil {
		return err
	}
	if c.Subnet6.IsValid() && (!c.Network6.Contains(c.Subnet6.Addr()) || c.Subnet6.Bits() <= c.Network6.Bits() || c.Subnet6 != c.Subnet6.Masked()) {
		return fmt.Errorf("IPv6 subnet %s is not a subnet of --network %s", c.Subnet6, c.Network6)
	}
	if c.Subnet.IsValid() && !c.Subnet6.IsValid() && c.Subnet.Bits() != c.SubnetLen {
		// The twin is the IPv6 subnet of the same number: a /23 and the
		// /24 of the same number would share one.
		return fmt.Errorf("--subnet %s: in a dual-stack overlay every node's subnet is a /%d (--subnet-len), since its IPv6 subnet is derived from the IPv4 subnet's number", c.Subnet, c.SubnetLen)
	}
	return nil
}

// checkDual says why in cannot join t, if it cannot: check for its IPv4
// subnet, then the same rules for its IPv6 one. A single-stack node
// ignores a peer's IPv6 subnet (a dual-stack Kubernetes cluster's Nodes).
func (t *table) checkDual(in peer.Info, names map[string]bool, ov overlay) error {
	if err := t.check(in, names, ov.network, ov.subnet); err != nil {
		return err
	}
	if err := endpointFamily(in.Name, in.Endpoint, ov.listen); err != nil && in.State.Routable() {
		return err
	}
	if !in.Subnet6.IsValid() {
		return nil
	}
	s6 := in.Subnet6
	switch {
	case !ov.network6.IsValid():
		return nil // a single-stack node routes only the IPv4 subnet (buildTableIn)
	case !ov.network6.Contains(s6.Addr()) || s6.Bits() < ov.network6.Bits():
		return fmt.Errorf("peer %q: subnet %s is not inside the network %s", in.Name, s6, ov.network6)
	case !in.State.Routable():
		return nil
	case s6.Overlaps(ov.subnet6):
		return fmt.Errorf("peer %q: subnet %s overlaps this node's subnet %s", in.Name, s6, ov.subnet6)
	case t.routes.OverlapsPrefix(s6):
		return fmt.Errorf("peer %q: subnet %s overlaps peer %q's", in.Name, s6, overlapping(t.routes, s6).Name)
	}
	return nil
}

// Networks is the flag.Value of the repeatable --network: at most one IPv4
// and one IPv6 network. Given both, the IPv4 one is Config.Network and the
// IPv6 one Config.Network6; given one, it is Config.Network.
type Networks struct {
	cfg    *Config
	v4, v6 netip.Prefix
}

// NetworksFlag returns the --network flag value writing into cfg.
func NetworksFlag(cfg *Config) *Networks { return &Networks{cfg: cfg} }

var _ flag.Value = (*Networks)(nil)

func (n *Networks) String() string {
	if n == nil || n.cfg == nil {
		return ""
	}
	s := n.cfg.Network.String()
	if n.cfg.Network6.IsValid() {
		s += " " + n.cfg.Network6.String()
	}
	return s
}

// Set takes one --network. A family given twice is an error.
func (n *Networks) Set(s string) error {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	slot, family := &n.v4, "IPv4"
	if p.Addr().Is6() {
		slot, family = &n.v6, "IPv6"
	}
	if slot.IsValid() {
		return fmt.Errorf("a second %s network %s (%s given already): give at most one IPv4 and one IPv6 --network", family, p, *slot)
	}
	*slot = p
	if n.v4.IsValid() {
		n.cfg.Network, n.cfg.Network6 = n.v4, n.v6
	} else {
		n.cfg.Network, n.cfg.Network6 = n.v6, netip.Prefix{}
	}
	return nil
}

// tunAddress6 is the TUN's IPv6 address, a /128; zero on a single-stack node.
func tunAddress6(c *Config) netip.Prefix {
	if !c.Subnet6.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(c.Address6(), 128)
}

// tunRoutes are the routes through the TUN: the overlay networks.
func tunRoutes(c *Config) []netip.Prefix {
	if c.Network6.IsValid() {
		return []netip.Prefix{c.Network, c.Network6}
	}
	return []netip.Prefix{c.Network}
}
