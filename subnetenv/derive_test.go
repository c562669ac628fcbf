package subnetenv

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSubnet6(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		network, subnet, network6 string
		len6                      int
		want, err                 string
	}{
		{"10.244.0.0/16", "10.244.0.0/24", "fd00:10:244::/56", 64, "fd00:10:244::/64", ""},
		{"10.244.0.0/16", "10.244.1.0/24", "fd00:10:244::/56", 64, "fd00:10:244:1::/64", ""},
		{"10.244.0.0/16", "10.244.255.0/24", "fd00:10:244::/56", 64, "fd00:10:244:ff::/64", ""},
		{"10.244.0.0/16", "10.244.3.128/25", "fd00:10:244::/48", 64, "fd00:10:244:7::/64", ""},
		{"10.0.0.0/8", "10.1.2.0/24", "fd00::/32", 80, "fd00::102:0:0:0/80", ""},
		{"10.0.0.0/8", "10.1.2.0/24", "fd00::/32", 64, "fd00:0:0:102::/64", ""},
		{"10.244.0.0/16", "10.244.1.0/24", "fd00:10:244::/120", 128, "fd00:10:244::1/128", ""},
		{"10.244.0.0/16", "10.244.255.0/24", "fd00:10:244::/60", 64, "", "too few"},
		{"10.244.0.0/16", "10.245.0.0/24", "fd00:10:244::/56", 64, "", "not inside"},
		{"10.244.0.0/16", "10.244.1.0/24", "10.0.0.0/8", 64, "", "do not fit"},
	}
	for _, tt := range tests {
		got, err := Subnet6(p(tt.network), p(tt.subnet), p(tt.network6), tt.len6)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s in %s: want error %q, have %v, %v", tt.subnet, tt.network6, tt.err, got, err)
			}
			continue
		}
		if err != nil || got != p(tt.want) {
			t.Errorf("%s in %s /%d: have %v, %v; want %s", tt.subnet, tt.network6, tt.len6, got, err, tt.want)
		}
	}
}

// Distinct IPv4 subnets of one size give distinct IPv6 subnets, all inside
// the IPv6 network: the derivation's promise that gossip relies on.
func TestSubnet6Unique(t *testing.T) {
	network, network6 := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:10:244::/56")
	seen := map[netip.Prefix]netip.Prefix{}
	for i := range 256 {
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 24)
		s6, err := Subnet6(network, sub, network6, 64)
		if err != nil {
			t.Fatal(err)
		}
		if o, dup := seen[s6]; dup || !network6.Contains(s6.Addr()) {
			t.Fatalf("%s → %s (also %s's, or outside %s)", sub, s6, o, network6)
		}
		seen[s6] = sub
	}
}

func TestCheckRoom6(t *testing.T) {
	p := netip.MustParsePrefix
	if err := CheckRoom6(p("10.244.0.0/16"), 24, p("fd00:10:244::/56"), 64); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		n6   string
		len6 int
		err  string
	}{
		{"fd00:10:244::/60", 64, "--subnet-len6"},
		{"fd00:10:244::/56", 56, "--subnet-len6 56"},
		{"fd00:10:244::/56", 129, "--subnet-len6 129"},
		{"10.0.0.0/8", 64, "must be IPv6"},
	} {
		if err := CheckRoom6(p("10.244.0.0/16"), 24, p(tt.n6), tt.len6); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s /%d: want %q, have %v", tt.n6, tt.len6, tt.err, err)
		}
	}
}
