package agent

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/kube"
	"github.com/weftnet/weft/peer"
)

// An IPv6-only overlay runs only as a lone node with --subnet: gossip,
// static peers and --kube need the IPv4 network.
func TestIPv6OnlyRefused(t *testing.T) {
	v6only := func() Config {
		c := DefaultConfig()
		c.Node.Insecure, c.Node.Network, c.Node.SubnetLen = true, netip.MustParsePrefix("fd00:10:244::/56"), 64
		return c
	}
	for name, change := range map[string]func(*Config){
		"gossip": func(c *Config) {},
		"peer": func(c *Config) {
			c.GossipPort, c.Node.Subnet = 0, netip.MustParsePrefix("fd00:10:244:1::/64")
			c.Node.Peers = []peer.Info{{Name: "b", Subnet: netip.MustParsePrefix("fd00:10:244:2::/64"), Endpoint: netip.MustParseAddrPort("[fd00::2]:6081"), State: peer.Static}}
		},
		"kube": func(c *Config) { c.GossipPort, c.Kube = 0, &kube.Config{} },
	} {
		c := v6only()
		change(&c)
		if err := c.Validate(); err == nil || err.Error() != "an IPv4 --network is required; IPv6-only overlays are not supported yet" {
			t.Errorf("%s: %v", name, err)
		}
	}
	c := v6only()
	c.GossipPort, c.Node.Subnet = 0, netip.MustParsePrefix("fd00:10:244:1::/64")
	if err := c.Validate(); err != nil {
		t.Errorf("lone IPv6 node: %v", err)
	}
	c = DefaultConfig()
	c.Node.Insecure, c.Node.Network6 = true, netip.MustParsePrefix("fd00:10:244::/56")
	if err := c.Validate(); err != nil {
		t.Errorf("dual-stack gossip node: %v", err)
	}
}

func TestKubeSubnet6(t *testing.T) {
	c := DefaultConfig()
	c.Log = slog.New(slog.DiscardHandler)
	s6 := netip.MustParsePrefix("fd00:10:244:3::/64")
	if err := kubeSubnet6(&c, s6); err != nil || c.Node.Subnet6.IsValid() {
		t.Fatalf("single-stack node took %s: %v", c.Node.Subnet6, err)
	}
	c.Node.Network6 = netip.MustParsePrefix("fd00:10:244::/56")
	if err := kubeSubnet6(&c, s6); err != nil || c.Node.Subnet6 != s6 {
		t.Fatalf("dual-stack node: %s, %v", c.Node.Subnet6, err)
	}
	for _, bad := range []netip.Prefix{{}, netip.MustParsePrefix("fd00:99::/64")} {
		c.Node.Subnet6 = netip.Prefix{}
		if err := kubeSubnet6(&c, bad); err == nil || !strings.Contains(err.Error(), "--network") {
			t.Errorf("podCIDR %v: %v", bad, err)
		}
	}
}
