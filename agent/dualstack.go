package agent

import (
	"errors"
	"fmt"
	"net/netip"
)

// validateFamilies refuses an IPv6-only overlay wherever peers are involved:
// gossip leases, static peers and Kubernetes' podCIDRs all key a node by its
// IPv4 subnet (its IPv6 one is derived or rides along), so a dual-stack
// overlay needs its IPv4 half.
func (c *Config) validateFamilies() error {
	if c.Node.Network.Addr().Is6() && (c.GossipPort != 0 || len(c.Node.Peers) > 0 || c.Kube != nil) {
		return errors.New("an IPv4 --network is required; IPv6-only overlays are not supported yet")
	}
	return nil
}

// kubeSubnet6 takes a dual-stack node's IPv6 subnet from its Node's IPv6
// podCIDR. A single-stack node ignores one (it routes IPv4 only).
func kubeSubnet6(cfg *Config, subnet6 netip.Prefix) error {
	n6 := cfg.Node.Network6
	switch {
	case !n6.IsValid():
		return nil
	case !subnet6.IsValid():
		return fmt.Errorf("Node %s has no IPv6 podCIDR, but --network %s asks for dual-stack: give kube-controller-manager an IPv6 --cluster-cidr too, or drop the IPv6 --network", cfg.Node.Name, n6)
	case !n6.Contains(subnet6.Addr()) || subnet6.Bits() <= n6.Bits():
		return fmt.Errorf("Node %s's IPv6 podCIDR %s is not inside --network %s: set it to the IPv6 cluster CIDR", cfg.Node.Name, subnet6, n6)
	}
	cfg.Log.Info("IPv6 subnet from the Node's podCIDRs", "subnet6", subnet6)
	cfg.Node.Subnet6 = subnet6
	return nil
}
