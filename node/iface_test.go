package node

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

func TestParseIfaceRule(t *testing.T) {
	for _, tc := range []struct {
		in, err string // err: a part of the error; "" for none
	}{
		{"eth1", ""},
		{"enp0s*", ""},
		{"eth[12]", ""},
		{"eth0.100", ""}, // a VLAN interface
		{"192.168.56.0/24", ""},
		{"192.168.56.11/24", ""}, // copied from ip addr: means its network
		{"fd00::/64", ""},
		{"can-reach=192.168.56.1", ""},
		{"can-reach=fd00::1", ""},
		{"", "empty"},
		{"192.168.56.10", "--advertise 192.168.56.10"},
		{"fd00::1", "--advertise fd00::1"},
		{"192.168.56.0/33", "not a CIDR"},
		{"can-reach=", "needs an IP address"},
		{"can-reach=gw.example", "needs an IP address"},
		{"interface=eth1", "want an interface name"},
		{"eth 1", "want an interface name"},
		{"eth[", "not a valid glob"},
		{"averyveryverylongname", "at most 15 bytes"},
	} {
		r, err := ParseIfaceRule(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %q", tc.in, err, tc.err)
		case err == nil && r.String() != tc.in:
			t.Errorf("%q: String() is %q", tc.in, r.String())
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%q: error of several lines: %q", tc.in, err)
		}
	}
}

func rules(t *testing.T, vs ...string) []IfaceRule {
	t.Helper()
	var rs []IfaceRule
	for _, v := range vs {
		r, err := ParseIfaceRule(v)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// A VirtualBox VM: the NAT interface with the address every VM has holds
// the default route; the host-only network is the one the nodes share.
var vbox = []hostIface{
	{name: "enp0s3", index: 2, mtu: 1500, up: true, addrs: addrs("10.0.2.15")},
	{name: "enp0s8", index: 3, mtu: 1500, up: true, addrs: addrs("192.168.56.11", "fd00:56::11")},
	{name: "enp0s9", index: 4, mtu: 9000, up: false, addrs: addrs("172.16.0.11")},
	{name: "docker0", index: 5, mtu: 1500, up: true},
}

func TestMatchIface(t *testing.T) {
	routes := map[netip.Addr]struct {
		index int
		src   string
	}{
		netip.MustParseAddr("192.168.56.1"): {3, "192.168.56.11"},
		netip.MustParseAddr("8.8.8.8"):      {2, ""},
		netip.MustParseAddr("172.16.0.1"):   {4, "172.16.0.11"},
		netip.MustParseAddr("10.99.0.1"):    {5, ""},
	}
	route := func(a netip.Addr) (int, netip.Addr, error) {
		r, ok := routes[a]
		if !ok {
			return 0, netip.Addr{}, errors.New("network is unreachable")
		}
		src, _ := netip.ParseAddr(r.src)
		return r.index, src, nil
	}
	for _, tc := range []struct {
		name  string
		rules []string
		iface string // "" for an error
		addr  string
		why   string // a part of Why, or of the error
	}{
		{"name", []string{"enp0s8"}, "enp0s8", "192.168.56.11", "chosen by --iface enp0s8"},
		{"glob picks the first up match", []string{"enp0s[89]"}, "enp0s8", "192.168.56.11", "--iface enp0s[89]"},
		{"glob skips interfaces without address", []string{"*"}, "enp0s3", "10.0.2.15", "--iface *"},
		{"cidr", []string{"192.168.56.0/24"}, "enp0s8", "192.168.56.11", "--iface 192.168.56.0/24"},
		{"cidr of a host address", []string{"192.168.56.200/24"}, "enp0s8", "192.168.56.11", ""},
		{"ipv6 cidr", []string{"fd00:56::/64"}, "enp0s8", "fd00:56::11", ""},
		{"first match wins", []string{"eth1", "10.0.2.0/24", "enp0s8"}, "enp0s3", "10.0.2.15", "--iface 10.0.2.0/24 (of 3 rules)"},
		{"later rule when earlier ones miss", []string{"eth1", "enp0s8"}, "enp0s8", "192.168.56.11", "(of 2 rules)"},
		{"can-reach with source", []string{"can-reach=192.168.56.1"}, "enp0s8", "192.168.56.11", "--iface can-reach=192.168.56.1"},
		{"can-reach without source", []string{"can-reach=8.8.8.8"}, "enp0s3", "10.0.2.15", ""},
		{"can-reach unreachable, next rule", []string{"can-reach=203.0.113.1", "enp0s8"}, "enp0s8", "192.168.56.11", ""},
		{"down interface by name", []string{"enp0s9"}, "", "", "enp0s9 172.16.0.11 (down)"},
		{"down interface by cidr", []string{"172.16.0.0/16"}, "", "", "no interface that is up"},
		{"down interface by route", []string{"can-reach=172.16.0.1"}, "", "", "without a usable address"},
		{"interface without address", []string{"docker0"}, "", "", "docker0 (no address)"},
		{"no such interface", []string{"eth1", "10.1.0.0/16"}, "", "", "--iface eth1, 10.1.0.0/16: no interface"},
		{"unreachable", []string{"can-reach=203.0.113.1"}, "", "", "no route to 203.0.113.1: network is unreachable"},
	} {
		u, err := matchIface(rules(t, tc.rules...), vbox, route)
		if tc.iface == "" {
			if err == nil || !strings.Contains(err.Error(), tc.why) || !strings.Contains(err.Error(), "this host has enp0s3 10.0.2.15") {
				t.Errorf("%s: %+v, %v; want an error with %q listing the interfaces", tc.name, u, err, tc.why)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if u.Interface != tc.iface || u.Addr != netip.MustParseAddr(tc.addr) || !strings.Contains(u.Why, tc.why) ||
			!strings.HasPrefix(u.Rule, "--iface ") || !strings.Contains(u.Why, u.Rule) {
			t.Errorf("%s: %+v, want %s %s with why %q", tc.name, u, tc.iface, tc.addr, tc.why)
		}
		if u.MTU != 1500 {
			t.Errorf("%s: MTU %d, want the interface's", tc.name, u.MTU)
		}
	}
}

func TestCandidates(t *testing.T) {
	ifs := append(vbox, hostIface{name: "cni0", up: true, addrs: addrs("10.244.3.1")})
	got := candidates(ifs, netip.MustParsePrefix("10.244.0.0/16"))
	want := []api.Candidate{
		{Interface: "enp0s3", Addr: netip.MustParseAddr("10.0.2.15")},
		{Interface: "enp0s8", Addr: netip.MustParseAddr("192.168.56.11")},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("candidates %v, want %v (not down, without address, or inside the overlay)", got, want)
	}
}

func TestSelfPeer(t *testing.T) {
	under := Underlay{Interface: "enp0s3", Addr: netip.MustParseAddr("10.0.2.15"), Why: "interface of the default route"}
	local := map[netip.Addr]bool{under.Addr: true, netip.MustParseAddr("127.0.0.1"): true}
	p := func(name, ep string) peer.Info {
		return peer.Info{Name: name, Endpoint: netip.MustParseAddrPort(ep)}
	}
	if err := selfPeer([]peer.Info{p("n2", "192.168.56.12:6081"), p("n3", "10.0.2.15:7000")}, 6081, local, under); err != nil {
		t.Errorf("other hosts, or this one at another port: %v", err)
	}
	for _, ep := range []string{"10.0.2.15:6081", "127.0.0.1:6081"} {
		err := selfPeer([]peer.Info{p("n2", "192.168.56.12:6081"), p("n3", ep)}, 6081, local, under)
		if err == nil || !strings.Contains(err.Error(), "--peer n3: endpoint "+ep+" is this node's own") ||
			!strings.Contains(err.Error(), "--iface") || !strings.Contains(err.Error(), "--advertise") {
			t.Errorf("peer at %s: %v, want a refusal naming --peer n3, --iface and --advertise", ep, err)
		}
	}
}
