package kube

import (
	"net/netip"
	"testing"
)

// A dual-stack Node lists an IPv4 and an IPv6 podCIDR, in either order;
// the IPv4 one is the subnet and the IPv6 one rides along.
func TestDualStackPodCIDRs(t *testing.T) {
	for _, cidrs := range [][]string{
		{"10.244.1.0/24", "fd00:10:244:1::/64"},
		{"fd00:10:244:1::/64", "10.244.1.0/24"},
	} {
		n := node("a", cidrs[0], "192.0.2.1:6081")
		n.Spec.PodCIDRs = cidrs
		p, problem := PeerOf(n)
		if problem != "" || p.Subnet != netip.MustParsePrefix("10.244.1.0/24") || p.Subnet6 != netip.MustParsePrefix("fd00:10:244:1::/64") {
			t.Errorf("%v: peer %+v, %q", cidrs, p, problem)
		}
		k, _ := start(t, n)
		s, err := k.Subnet(t.Context(), nil)
		if err != nil || s != p.Subnet || k.Subnet6() != p.Subnet6 {
			t.Errorf("%v: own subnets %s %s, %v", cidrs, s, k.Subnet6(), err)
		}
	}
	single := node("b", "10.244.2.0/24", "192.0.2.2:6081")
	if p, _ := PeerOf(single); p.Subnet6.IsValid() {
		t.Errorf("single-stack Node has subnet6 %s", p.Subnet6)
	}
	bad := node("c", "10.244.3.0/24", "192.0.2.3:6081")
	bad.Spec.PodCIDRs = []string{"10.244.3.0/24", "fd00::1/64"}
	if _, problem := PeerOf(bad); problem == "" {
		t.Error("a bad IPv6 podCIDR passed")
	}
}
