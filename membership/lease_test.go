package membership

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestPickFree(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name    string
		network string
		bits    int
		taken   []string
		skip    int
		want    string // or the error text
	}{
		{"empty", "10.244.0.0/16", 24, nil, 0, "10.244.1.0/24"},
		{"exact taken", "10.244.0.0/16", 24, []string{"10.244.1.0/24", "10.244.2.0/24"}, 0, "10.244.3.0/24"},
		{"hole", "10.244.0.0/16", 24, []string{"10.244.1.0/24", "10.244.3.0/24"}, 0, "10.244.2.0/24"},
		{"skip", "10.244.0.0/16", 24, []string{"10.244.1.0/24"}, 2, "10.244.4.0/24"},
		{"covering claim", "10.244.0.0/16", 24, []string{"10.244.0.0/20"}, 0, "10.244.16.0/24"},
		{"claim inside", "10.244.0.0/16", 24, []string{"10.244.1.128/25"}, 0, "10.244.2.0/24"},
		{"ipv6", "fd00:244::/48", 64, []string{"fd00:244:0:1::/64"}, 0, "fd00:244:0:2::/64"},
		{"full", "10.9.0.0/22", 24, []string{"10.9.1.0/24", "10.9.2.0/24", "10.9.3.0/24"}, 0,
			"no free /24 left in 10.9.0.0/22: 3 leased"},
		{"full by skip", "10.9.0.0/22", 24, nil, 3, "no free /24 left in 10.9.0.0/22: 0 leased"},
		{"end of ipv4 space", "255.255.255.0/24", 25, nil, 1, "no free /25 left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &claims{}
			for i, p := range tc.taken {
				cs.add(claim{name: string(rune('a' + i)), subnet: pfx(p), seq: uint64(i)})
			}
			cs.add(claim{name: "me", subnet: pfx(tc.network), seq: 99}) // our own claim never blocks us
			got, err := pickFree(pfx(tc.network), tc.bits, "me", cs, tc.skip)
			if err != nil {
				if !errors.Is(err, ErrNetworkFull) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %q", err, tc.want)
				}
				return
			}
			if got.String() != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestClaimWinner(t *testing.T) {
	cs := &claims{}
	a := claim{"a", netip.MustParsePrefix("10.0.1.0/24"), 5}
	b := claim{"b", netip.MustParsePrefix("10.0.1.0/24"), 5}
	c := claim{"c", netip.MustParsePrefix("10.0.0.0/16"), 9}
	for _, x := range []claim{a, b, c} {
		cs.add(x)
	}
	if w, lost := cs.winner(b); !lost || w.name != "a" {
		t.Errorf("b: winner %v %v, want a (same seq, lower name)", w, lost)
	}
	if _, lost := cs.winner(a); lost {
		t.Error("a should keep its subnet")
	}
	if w, lost := cs.winner(c); !lost || w.name != "a" {
		t.Errorf("c overlaps a and b with a later claim: winner %v %v, want a", w, lost)
	}
}

// Merging the same records in any order gives the same table.
func TestMergeConverges(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var in []Lease
	for i := range 40 {
		in = append(in, Lease{
			Name: string(rune('a' + i%4)), Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i % 7), 0}), 24),
			Seq: uint64(i % 5), Version: uint64(1 + i%3), Released: i%6 == 0, LastSeen: t0.Add(time.Duration(i) * time.Second),
		})
	}
	merge := func(ls []Lease) map[string]Lease {
		out := map[string]Lease{}
		for _, l := range ls {
			cur, have := out[l.Name]
			out[l.Name], _ = mergeLease(cur, have, l)
		}
		return out
	}
	want := merge(in)
	for range 20 {
		ls := append([]Lease(nil), in...)
		rand.Shuffle(len(ls), func(i, j int) { ls[i], ls[j] = ls[j], ls[i] })
		got := merge(ls)
		for name, w := range want {
			if g := got[name]; !sameContent(g, w) || !g.LastSeen.Equal(w.LastSeen) {
				t.Fatalf("%s: order changed the result: %+v vs %+v", name, g, w)
			}
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	md := meta{
		Version: metaVersion, Flags: flagLeaving, Name: "node-a",
		Network: netip.MustParsePrefix("10.244.0.0/16"), Subnet: netip.MustParsePrefix("10.244.7.0/24"),
		Endpoint: netip.MustParseAddrPort("192.0.2.10:6081"), Address: netip.MustParseAddr("10.244.7.0"),
	}
	b := md.encode()
	got, err := decodeMeta(b)
	if err != nil || got != md {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// A later version appends fields; this one reads its own and ignores them.
	future := append([]byte{7}, b[1:]...)
	future = append(future, 1, 2, 3, 4)
	if got, err := decodeMeta(future); err != nil || got.Name != md.Name || got.Subnet != md.Subnet {
		t.Fatalf("future version: %+v, %v", got, err)
	}
	pending := md
	pending.Subnet, pending.Address = netip.Prefix{}, netip.Addr{}
	if _, err := decodeMeta(pending.encode()); err != nil {
		t.Fatalf("a node without a subnet yet: %v", err)
	}
	for i := range b {
		if _, err := decodeMeta(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", i)
		}
	}
	if _, err := decodeMeta(append([]byte{0}, b[1:]...)); err == nil {
		t.Error("version 0 accepted")
	}
	long := md
	long.Name = string(make([]byte, 255))
	for i := range 255 {
		long.Name = long.Name[:i] + "x" + long.Name[i+1:]
	}
	if n := len(long.encode()); n > 512 {
		t.Errorf("largest metadata is %d bytes, memberlist allows 512", n)
	}
}

func TestSeedAddr(t *testing.T) {
	for in, want := range map[string]string{
		"seed.example":     "seed.example:7946",
		"seed.example:100": "seed.example:100",
		"192.0.2.1":        "192.0.2.1:7946",
		"[2001:db8::1]":    "[2001:db8::1]:7946",
		"2001:db8::1":      "[2001:db8::1]:7946",
		"[2001:db8::1]:99": "[2001:db8::1]:99",
	} {
		if got, err := seedAddr(in, 7946); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":7946", "host:0", "host:x"} {
		if _, err := seedAddr(bad, 7946); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := seedAddr("host", 0); err == nil {
		t.Error("a seed without port accepted with a random gossip port")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := testConfig("n", t.TempDir())
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no name":          func(c *Config) { c.Name = "" },
		"space in name":    func(c *Config) { c.Name = "a b" },
		"no advertise":     func(c *Config) { c.Advertise = netip.Addr{} },
		"bad network":      func(c *Config) { c.Network = netip.MustParsePrefix("10.244.1.0/16") },
		"subnet len":       func(c *Config) { c.SubnetLen = 16 },
		"subnet outside":   func(c *Config) { c.Subnet = netip.MustParsePrefix("10.9.0.0/24") },
		"no data endpoint": func(c *Config) { c.DataEndpoint = netip.AddrPort{} },
		"no state dir":     func(c *Config) { c.StateDir = "" },
		"zero ttl":         func(c *Config) { c.LeaseTTL = 0 },
		"bad seed":         func(c *Config) { c.Join = []string{"host:x"} },
	} {
		c := ok
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
