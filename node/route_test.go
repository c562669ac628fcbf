package node

import (
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/peer"
)

var (
	plain   = &encap.Plain{}
	testNet = netip.MustParsePrefix("10.244.0.0/16")
	ownNet  = netip.MustParsePrefix("10.244.1.0/24")
)

func testPeer(name, subnet, ep string) peer.Info {
	return peer.Info{Name: name, Subnet: netip.MustParsePrefix(subnet), Endpoint: netip.MustParseAddrPort(ep), State: "static"}
}

func TestTableLookup(t *testing.T) {
	tb, errs := buildTable([]peer.Info{
		testPeer("b", "10.244.2.0/24", "192.0.2.2:6081"),
		testPeer("c", "10.244.3.0/24", "192.0.2.3:6081"),
		testPeer("d", "10.244.128.0/17", "192.0.2.4:6081"),
	}, testNet, ownNet, plain, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	for dst, want := range map[string]string{
		"10.244.2.9": "b", "10.244.3.0": "c", "10.244.200.1": "d", "10.244.4.1": "", "10.244.1.5": "", "10.9.0.1": "",
	} {
		got := ""
		if p := tb.lookup(netip.MustParseAddr(dst)); p != nil {
			got = p.Name
		}
		if got != want {
			t.Errorf("lookup(%s) = %q, want %q", dst, got, want)
		}
	}
	if p := tb.byEndpoint[netip.MustParseAddrPort("192.0.2.3:6081")]; p == nil || p.Name != "c" {
		t.Errorf("byEndpoint: %v", p)
	}
	if names := tb.peers[0].Name + tb.peers[1].Name + tb.peers[2].Name; names != "bcd" {
		t.Errorf("peers not sorted: %s", names)
	}
}

func TestTableRejects(t *testing.T) {
	b := testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")
	cases := map[string]struct {
		peers []peer.Info
		want  string
	}{
		"duplicate name":     {[]peer.Info{b, testPeer("b", "10.244.3.0/24", "192.0.2.3:6081")}, "listed twice"},
		"outside network":    {[]peer.Info{testPeer("x", "10.9.0.0/24", "192.0.2.3:6081")}, "not inside the network"},
		"wider than network": {[]peer.Info{testPeer("x", "10.0.0.0/8", "192.0.2.3:6081")}, "not inside the network"},
		"overlaps own":       {[]peer.Info{testPeer("x", "10.244.0.0/20", "192.0.2.3:6081")}, "overlaps this node's"},
		"overlaps peer":      {[]peer.Info{b, testPeer("x", "10.244.2.128/25", "192.0.2.3:6081")}, `overlaps peer "b"`},
		"covers peer":        {[]peer.Info{b, testPeer("x", "10.244.2.0/23", "192.0.2.3:6081")}, `overlaps peer "b"`},
		"same endpoint":      {[]peer.Info{b, testPeer("x", "10.244.3.0/24", "192.0.2.2:6081")}, "endpoint"},
	}
	for name, tc := range cases {
		tb, errs := buildTable(tc.peers, testNet, ownNet, plain, nil)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("%s: got %v, want one error containing %q", name, errs, tc.want)
			continue
		}
		// The bad peer is left out; the good ones stay routed.
		if len(tb.peers) != len(tc.peers)-1 || len(tb.byEndpoint) != len(tb.peers) {
			t.Errorf("%s: %d peers routed, want %d", name, len(tb.byEndpoint), len(tc.peers)-1)
		}
	}
}

func TestTableShowsButDoesNotRouteDeadPeers(t *testing.T) {
	dead := testPeer("d", "10.244.2.0/24", "192.0.2.2:6081")
	dead.State = "dead"
	alive := testPeer("n", "10.244.2.0/24", "192.0.2.3:6081") // reuses the dead peer's subnet
	alive.State = "alive"
	tb, errs := buildTable([]peer.Info{dead, alive}, testNet, ownNet, plain, nil)
	if len(errs) != 0 || len(tb.peers) != 2 {
		t.Fatalf("errs %v, peers %d", errs, len(tb.peers))
	}
	if p := tb.lookup(netip.MustParseAddr("10.244.2.1")); p == nil || p.Name != "n" {
		t.Fatalf("lookup: %v", p)
	}
	if tb.byEndpoint[dead.Endpoint] != nil {
		t.Fatal("a dead peer's endpoint is still accepted")
	}
}

func TestTableKeepsCounters(t *testing.T) {
	b := testPeer("b", "10.244.2.0/24", "192.0.2.2:6081")
	t1, _ := buildTable([]peer.Info{b}, testNet, ownNet, plain, nil)
	t1.peers[0].rxPackets.Add(5)
	b.Endpoint = netip.MustParseAddrPort("192.0.2.9:6081") // the peer moved
	t2, errs := buildTable([]peer.Info{b}, testNet, ownNet, plain, t1)
	if errs != nil {
		t.Fatal(errs)
	}
	t1.peers[0].rxPackets.Add(1) // a loop still holding the old snapshot
	if got := t2.peers[0].rxPackets.Load(); got != 6 {
		t.Fatalf("rx packets after rebuild = %d, want 6", got)
	}
	if t1.peers[0].Endpoint == t2.peers[0].Endpoint {
		t.Fatal("old snapshot was modified")
	}
}

// benchPeers returns n peers with /24s of 10.0.0.0/8.
func benchPeers(n int) []peer.Info {
	var peers []peer.Info
	for i := 1; i <= n; i++ {
		peers = append(peers, peer.Info{
			Name:     fmt.Sprint("n", i),
			Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
			Endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 6081),
		})
	}
	return peers
}

var (
	benchNetwork = netip.MustParsePrefix("10.0.0.0/8")
	benchOwn     = netip.MustParsePrefix("10.255.255.0/24")
)

// BenchmarkLookup measures the route lookup per packet against table size.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			tb, errs := buildTable(benchPeers(n), benchNetwork, benchOwn, plain, nil)
			if errs != nil {
				b.Fatal(errs)
			}
			dst := netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 7})
			b.ReportAllocs()
			for b.Loop() {
				if tb.lookup(dst) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

func TestDropNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, n := range dropNames {
		if n == "" || seen[n] {
			t.Fatalf("drop reason %q empty or listed twice", n)
		}
		seen[n] = true
	}
}

// BenchmarkPeerMemory reports the heap a routing table holds per peer, with
// the sealed codec's receive state (replay window, session keys once
// derived) included: what each cluster member costs every node.
func BenchmarkPeerMemory(b *testing.B) {
	key, _ := encap.GenerateKey()
	codec, err := encap.NewSealed(encap.SealedConfig{VNI: 1, Name: "self", Keys: [][]byte{key}})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", n), func(b *testing.B) {
			peers := benchPeers(n)
			var perPeer float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				tb, errs := buildTable(peers, benchNetwork, benchOwn, codec, nil)
				if errs != nil {
					b.Fatal(errs)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perPeer = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(tb)
			}
			b.ReportMetric(perPeer, "B/peer")
		})
	}
}
