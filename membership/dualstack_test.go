package membership

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

var (
	testNetwork6 = netip.MustParsePrefix("fd00:10:244::/56")
)

func dualMeta() meta {
	return meta{
		Name: "node-a", Network: netip.MustParsePrefix("10.244.0.0/16"),
		Subnet: netip.MustParsePrefix("10.244.7.0/24"), Address: netip.MustParseAddr("10.244.7.0"),
		Endpoint: netip.MustParseAddrPort("[fd00::a]:6081"), LeaseTTL: time.Hour,
		Network6: testNetwork6, Subnet6: netip.MustParsePrefix("fd00:10:244:7::/64"),
	}
}

// Version 3 only appends: a version 2 decoder reads the same fields from
// the front, and a version 3 decoder reads version 2 metadata as IPv4-only.
func TestMetaV3(t *testing.T) {
	md := dualMeta()
	b := md.encode()
	got, err := decodeMeta(b)
	md.Version = 3
	if err != nil || got != md {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, md)
	}
	v4 := md
	v4.Network6, v4.Subnet6 = netip.Prefix{}, netip.Prefix{}
	b4 := v4.encode()
	v2 := append([]byte{2}, b4[1:len(b4)-2]...) // two empty prefixes are two zero bytes
	if !bytes.Equal(b[1:len(v2)], v2[1:]) {
		t.Fatalf("v3 does not start with the v2 fields:\n% x\n% x", b, v2)
	}
	old, err := decodeMeta(v2)
	if err != nil || old.Network6.IsValid() || old.Subnet6.IsValid() || old.Subnet != md.Subnet || old.LeaseTTL != time.Hour {
		t.Fatalf("v2 metadata: %+v, %v", old, err)
	}
	for name, change := range map[string]func(*meta){
		"subnet6 without subnet":   func(m *meta) { m.Subnet, m.Address = netip.Prefix{}, netip.Addr{} },
		"subnet6 outside network6": func(m *meta) { m.Subnet6 = netip.MustParsePrefix("fd00:10:245:7::/64") },
		"subnet6 without network6": func(m *meta) { m.Network6 = netip.Prefix{} },
		"network6 is IPv4":         func(m *meta) { m.Network6 = netip.MustParsePrefix("10.0.0.0/8") },
	} {
		m := dualMeta()
		change(&m)
		if _, err := decodeMeta(m.encode()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func dualConfig(name, dir string, seeds ...string) Config {
	c := testConfig(name, dir, seeds...)
	c.Network6 = testNetwork6
	return c
}

// Dual-stack members announce the IPv6 twin of their lease and become
// peers with both subnets; members of another IPv6 network, IPv4-only ones,
// ones announcing a wrong twin and ones with a subnet of another size are
// rejected.
func TestDualStackGossip(t *testing.T) {
	seed := mustLaunch(t, dualConfig("seed", t.TempDir()))
	n1 := mustLaunch(t, dualConfig("n1", t.TempDir(), seed.seed()))
	testenv.WaitFor(t, 10*time.Second, "seed and n1 see each other", func() bool { return seed.sees(n1) && n1.sees(seed) })
	want6 := seed.cfg.subnet6(n1.subnet)
	if !want6.IsValid() {
		t.Fatalf("no IPv6 twin of %s", n1.subnet)
	}
	if p, ok := seed.peer("n1"); !ok || p.Subnet6 != want6 {
		t.Fatalf("seed's peer n1: %+v, want subnet6 %s", p, want6)
	}

	good := func(name, subnet string) meta {
		m := meta{Name: name, Network: seed.cfg.Network, Endpoint: uniqueEndpoint(), Network6: testNetwork6}
		m.Subnet = netip.MustParsePrefix(subnet)
		m.Address, m.Subnet6 = m.Subnet.Addr(), seed.cfg.subnet6(m.Subnet)
		return m
	}
	othernet6 := good("othernet6", "10.244.201.0/24")
	othernet6.Network6 = netip.MustParsePrefix("fd00:99::/56")
	othernet6.Subnet6 = netip.MustParsePrefix("fd00:99:0:c9::/64")
	v4only := good("v4only", "10.244.202.0/24")
	v4only.Network6, v4only.Subnet6 = netip.Prefix{}, netip.Prefix{}
	wrongTwin := good("wrongtwin", "10.244.203.0/24")
	wrongTwin.Subnet6 = netip.MustParsePrefix("fd00:10:244:1::/64")
	// A /25 and the /24 of the same number would share an IPv6 twin.
	otherLen := good("otherlen", "10.244.204.128/25")
	for name, m := range map[string]meta{"othernet6": othernet6, "v4only": v4only, "wrongtwin": wrongTwin, "otherlen": otherLen} {
		joinRaw(t, name, m.encode(), seed.seed())
	}
	testenv.WaitFor(t, 15*time.Second, "seed rejects the four", func() bool {
		s := seed.m.Stats()
		return s["wrong_network"] >= 3 && s["bad_meta"] >= 1
	})
	for _, name := range []string{"othernet6", "v4only", "wrongtwin", "otherlen"} {
		if _, ok := seed.peer(name); ok {
			t.Errorf("%s became a peer", name)
		}
	}
}
