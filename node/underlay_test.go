package node

import (
	"net/netip"
	"testing"
)

func TestDataListen(t *testing.T) {
	ap, a := netip.MustParseAddrPort, netip.MustParseAddr
	for _, tc := range []struct {
		listen string
		under  netip.Addr
		want   string
	}{
		{"0.0.0.0:6081", a("192.0.2.1"), "192.0.2.1:6081"},    // the default: bind the advertised address
		{"0.0.0.0:7000", a("192.0.2.1"), "192.0.2.1:7000"},    // keeping the port
		{"192.0.2.9:6081", a("192.0.2.1"), "192.0.2.9:6081"},  // a specific --listen is kept
		{"[::]:6081", a("2001:db8::1"), "[2001:db8::1]:6081"}, // IPv6 alike
		{"0.0.0.0:6081", a("2001:db8::1"), "0.0.0.0:6081"},    // another family: as given
		{"0.0.0.0:6081", netip.Addr{}, "0.0.0.0:6081"},        // no underlay address (tests)
	} {
		if got := dataListen(ap(tc.listen), tc.under); got != ap(tc.want) {
			t.Errorf("dataListen(%s, %s) = %s, want %s", tc.listen, tc.under, got, tc.want)
		}
	}
}
