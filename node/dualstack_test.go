package node

import (
	"bytes"
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
)

var (
	testNet6 = netip.MustParsePrefix("fd00:10:244::/56")
	ownNet6  = netip.MustParsePrefix("fd00:10:244:1::/64")
)

func testPeer6(name, subnet, subnet6, ep string) peer.Info {
	p := testPeer(name, subnet, ep)
	p.Subnet6 = netip.MustParsePrefix(subnet6)
	return p
}

func TestNetworksFlag(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		network, four6 string // want Network, Network6 ("" zero)
		err            string
	}{
		{nil, "10.244.0.0/16", "", ""},
		{[]string{"--network", "10.9.0.0/16"}, "10.9.0.0/16", "", ""},
		{[]string{"--network", "10.9.0.0/16", "--network", "fd00:9::/56"}, "10.9.0.0/16", "fd00:9::/56", ""},
		{[]string{"--network", "fd00:9::/56", "--network", "10.9.0.0/16"}, "10.9.0.0/16", "fd00:9::/56", ""},
		{[]string{"--network", "fd00:9::/56"}, "fd00:9::/56", "", ""},
		{[]string{"--network", "10.9.0.0/16", "--network", "10.8.0.0/16"}, "", "", "a second IPv4 network"},
		{[]string{"--network", "fd00:9::/56", "--network", "fd00:8::/56"}, "", "", "a second IPv6 network"},
		{[]string{"--network", "10.9.0.0"}, "", "", "-network"},
	} {
		cfg := DefaultConfig()
		fs := flag.NewFlagSet("up", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(NetworksFlag(&cfg), "network", "")
		err := fs.Parse(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "network") {
				t.Errorf("%v: want error %q, have %v", tc.args, tc.err, err)
			}
			continue
		}
		var want6 netip.Prefix
		if tc.four6 != "" {
			want6 = netip.MustParsePrefix(tc.four6)
		}
		if err != nil || cfg.Network != netip.MustParsePrefix(tc.network) || cfg.Network6 != want6 {
			t.Errorf("%v: have %s %s, %v", tc.args, cfg.Network, cfg.Network6, err)
		}
	}
}

func TestValidateDualStack(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.Insecure, c.Network6 = true, testNet6
		return c
	}
	c := base()
	c.Subnet = ownNet
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.DeriveSubnet6(); err != nil || c.Subnet6 != ownNet6 || c.Address6() != netip.MustParseAddr("fd00:10:244:1::") {
		t.Fatalf("derived %s (%s), %v", c.Subnet6, c.Address6(), err)
	}
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Network6 = netip.MustParsePrefix("fd00:10:244::/60") }, "--subnet-len6"},
		{func(c *Config) { c.SubnetLen6 = 56 }, "--subnet-len6 56"},
		{func(c *Config) { c.Advertise = addr("fd00::1") }, "--listen '[::]:6081'"},
		{func(c *Config) { c.Advertise, c.Listen = addr("192.0.2.1"), netip.MustParseAddrPort("[fd00::1]:6081") }, "cannot receive"},
		{func(c *Config) { c.Network6 = netip.MustParsePrefix("fd00:10:244::1/56") }, "not a network address"},
		{func(c *Config) { c.Network, c.SubnetLen = netip.MustParsePrefix("fd01::/48"), 64 }, "one IPv4 and one IPv6"},
		{func(c *Config) { c.Subnet6 = netip.MustParsePrefix("fd00:10:245::/64") }, "not a subnet of --network"},
		{func(c *Config) { c.Subnet = netip.MustParsePrefix("10.244.1.0/25") }, "every node's subnet is a /24"},
		{func(c *Config) { c.Network6 = netip.Prefix{}; c.Subnet6 = ownNet6 }, "needs an IPv6 --network"},
		{func(c *Config) {
			c.Network6 = netip.Prefix{}
			c.Peers = []peer.Info{testPeer6("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081")}
		}, "give the IPv6 --network too"},
		{func(c *Config) {
			c.Peers = []peer.Info{testPeer6("b", "10.244.2.0/24", "fd00:10:245:2::/64", "192.0.2.2:6081")}
		}, "--peer"},
	} {
		c := base()
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want %q, have %v", tc.want, err)
		}
	}
}

func TestTableDualStack(t *testing.T) {
	ov := overlay{network: testNet, subnet: ownNet, network6: testNet6, subnet6: ownNet6}
	tb, errs := buildTableIn([]peer.Info{
		testPeer6("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081"),
		testPeer6("c", "10.244.3.0/24", "fd00:10:244:3::/64", "[fd00::3]:6081"),
		testPeer("d", "10.244.4.0/24", "192.0.2.4:6081"), // IPv4 only
		testPeer6("e", "10.244.128.0/17", "fd00:10:244:80::/57", "192.0.2.5:6081"),
	}, ov, plain, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	for dst, want := range map[string]string{
		"fd00:10:244:2::9": "b", "fd00:10:244:3:ffff::1": "c", "10.244.3.1": "c", "fd00:10:244:4::1": "",
		"fd00:10:244:81::1": "e", "fd00:10:244:1::5": "", "fd00:10:245:2::1": "", "::ffff:10.244.2.1": "",
	} {
		got := ""
		if p := tb.lookup(netip.MustParseAddr(dst)); p != nil {
			got = p.Name
		}
		if got != want {
			t.Errorf("lookup(%s) = %q, want %q", dst, got, want)
		}
	}
	b := tb.lookup(addr("10.244.2.1"))
	for src, want := range map[string]bool{"10.244.2.7": true, "fd00:10:244:2::7": true, "fd00:10:244:3::7": false, "10.244.3.7": false} {
		if b.sourceOK(addr(src)) != want {
			t.Errorf("b.sourceOK(%s) = %v", src, !want)
		}
	}

	bad := map[string]peer.Info{
		"outside network6":   testPeer6("x", "10.244.5.0/24", "fd00:10:245:5::/64", "192.0.2.9:6081"),
		"overlaps own6":      testPeer6("x", "10.244.5.0/24", "fd00:10:244:1::/80", "192.0.2.9:6081"),
		"overlaps peer6":     testPeer6("x", "10.244.5.0/24", "fd00:10:244:2::/64", "192.0.2.9:6081"),
		"wider than network": testPeer6("x", "10.244.5.0/24", "fd00:10:244::/48", "192.0.2.9:6081"),
	}
	for name, in := range bad {
		tb, errs := buildTableIn([]peer.Info{testPeer6("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081"), in}, ov, plain, nil)
		if len(errs) != 1 || len(tb.byEndpoint) != 1 || tb.lookup(addr("10.244.5.1")) != nil {
			t.Errorf("%s: errs %v, %d routed", name, errs, len(tb.byEndpoint))
		}
	}
	// A single-stack node routes a dual-stack peer's IPv4 subnet only.
	tb, errs = buildTableIn([]peer.Info{testPeer6("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081")}, overlay{network: testNet, subnet: ownNet}, plain, nil)
	if errs != nil || tb.lookup(addr("10.244.2.1")) == nil || tb.lookup(addr("fd00:10:244:2::1")) != nil {
		t.Errorf("single-stack node: %v", errs)
	}
}

// pair6 starts dual-stack nodes a and b, peered with each other.
func pair6(t *testing.T) (*simNet, *simNode, *simNode) {
	sn := &simNet{}
	start := func(name, subnet, subnet6, ep string, p peer.Info) *simNode {
		cfg := DefaultConfig()
		cfg.Subnet, cfg.Network6, cfg.Subnet6 = netip.MustParsePrefix(subnet), testNet6, netip.MustParsePrefix(subnet6)
		codec, _ := encap.NewPlain(1)
		return startSimConfig(t, sn, cfg, name, ep, codec, p)
	}
	a := start("a", "10.244.1.0/24", "fd00:10:244:1::/64", "192.0.2.1:6081", testPeer6("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081"))
	b := start("b", "10.244.2.0/24", "fd00:10:244:2::/64", "192.0.2.2:6081", testPeer6("a", "10.244.1.0/24", "fd00:10:244:1::/64", "192.0.2.1:6081"))
	return sn, a, b
}

func udp6(src, dst string, n int) []byte {
	return packettest.IPv6Len(addr(src), addr(dst), packettest.ProtoUDP, n)
}

func TestSimDualStack(t *testing.T) {
	sn, a, b := pair6(t)
	// Both families flow both ways.
	for _, pkt := range [][]byte{
		udp6("fd00:10:244:1::5", "fd00:10:244:2::6", 1000),
		udp6("fd00:10:244:1::5", "fd00:10:244:2::6", 1464-40),
		packettest.UDP4Len(addr("10.244.1.5"), addr("10.244.2.6"), 100, false),
	} {
		a.tun.Inject(pkt)
		if got := recv(t, b.tun); !bytes.Equal(got, pkt) {
			t.Fatalf("b's TUN got a different packet")
		}
	}
	reply := udp6("fd00:10:244:2::6", "fd00:10:244:1::", 100)
	b.tun.Inject(reply)
	if got := recv(t, a.tun); !bytes.Equal(got, reply) {
		t.Fatal("reply differs")
	}
	st := a.Status()
	if st.Address6 != addr("fd00:10:244:1::") || st.Subnet6 != ownNet6 || st.Network6 != testNet6 || st.Peers[0].Subnet6 != netip.MustParsePrefix("fd00:10:244:2::/64") {
		t.Fatalf("status %+v", st)
	}

	// The sender refuses, with ICMPv6 where one is due.
	for _, tc := range []struct {
		pkt    []byte
		reason string
		icmp   byte // ICMPv6 type expected back, 0 none
	}{
		{udp6("fd00:10:244:7::5", "fd00:10:244:2::6", 60), "foreign_source", 0},
		{udp6("fd00:10:244:1::5", "fd00:10:244:9::6", 60), "no_route", 1},
		{udp6("fd00:10:244:1::5", "fd00:10:244:1::6", 60), "local_destination", 0},
		{udp6("fd00:10:244:1::5", "2001:db8::1", 60), "not_overlay", 0},
		{udp6("::", "ff02::16", 60), "multicast", 0}, // where the kernel's MLD reports go
		{udp6("fd00:10:244:1::5", "fd00:10:244:2::6", 1464-40+1), "too_big", 2},
	} {
		before := drop(a, tc.reason)
		a.tun.Inject(tc.pkt)
		testenv.WaitFor(t, patience, tc.reason, func() bool { return drop(a, tc.reason) == before+1 })
		if tc.icmp == 0 {
			continue
		}
		r := recv(t, a.tun)
		ip, ok := parseIP(r)
		if !ok || ip.proto != 58 || r[40] != tc.icmp || ip.dst != addr("fd00:10:244:1::5") || ip.src != netip.AddrFrom16([16]byte(tc.pkt[24:40])) {
			t.Fatalf("%s: ICMPv6 reply %+v type %d", tc.reason, ip, r[40])
		}
		if tc.icmp == 2 && int(r[44])<<24|int(r[45])<<16|int(r[46])<<8|int(r[47]) != 1464 {
			t.Fatalf("Packet Too Big reports MTU % x", r[44:48])
		}
	}

	// The receiver drops a peer's packet from outside both its subnets.
	codec, _ := encap.NewPlain(1)
	seal := func(pkt []byte) []byte {
		d, err := codec.Seal(append(make([]byte, encap.HeaderLen), pkt...), encap.HeaderLen, len(pkt))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		pkt    []byte
		reason string
	}{
		{udp6("fd00:10:244:3::5", "fd00:10:244:2::6", 60), "spoofed_source"},
		{udp6("fd00:10:244:2::5", "fd00:10:244:2::6", 60), "spoofed_source"}, // b's own subnet
		{udp6("fd00:10:244:1::5", "fd00:10:244:3::6", 60), "not_our_subnet"},
	} {
		before := drop(b, tc.reason)
		sn.send(a.conn.ep, b.conn.ep, seal(tc.pkt))
		testenv.WaitFor(t, patience, tc.reason, func() bool { return drop(b, tc.reason) == before+1 })
	}
	good := udp6("fd00:10:244:1::5", "fd00:10:244:2::6", 60)
	sn.send(a.conn.ep, b.conn.ep, seal(good))
	nextIs(t, b.tun, good)
}

// A node listening on IPv4 refuses peers reachable over IPv6 only, and one
// bound to an IPv6 address those over IPv4: mixed clusters are refused by
// peer, with the flags to change.
func TestTableEndpointFamily(t *testing.T) {
	v6peer := testPeer("c", "10.244.3.0/24", "[fd00::3]:6081")
	v4peer := testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")
	for _, tc := range []struct {
		listen string
		peer   peer.Info
		err    string
	}{
		{"0.0.0.0", v4peer, ""},
		{"0.0.0.0", v6peer, "listens on IPv4"},
		{"192.0.2.1", v6peer, "listens on IPv4"},
		{"::", v6peer, ""},
		{"::", v4peer, ""},
		{"fd00::1", v6peer, ""},
		{"fd00::1", v4peer, "listens on fd00::1 only"},
	} {
		_, errs := buildTableIn([]peer.Info{tc.peer}, overlay{network: testNet, subnet: ownNet, listen: addr(tc.listen)}, plain, nil)
		if (tc.err == "") != (errs == nil) || tc.err != "" && !strings.Contains(errs[0].Error(), tc.err) {
			t.Errorf("listen %s, peer %s: %v, want %q", tc.listen, tc.peer.Endpoint, errs, tc.err)
		}
	}
}
