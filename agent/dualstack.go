package agent

import "errors"

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
