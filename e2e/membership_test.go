package e2e

// Gossip membership with the real binary: nodes join through one seed, lease
// distinct subnets, withdraw a killed node's routes, give a restarted node
// its subnet back (also at a new underlay address) and heal a partition.
// Membership does not depend on the TUN driver: default driver only.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// convergeTimeout bounds how long gossip may take to agree; failure
// detection with weft's defaults takes a few seconds.
const convergeTimeout = 45 * time.Second

// gossipLab starts weft on hosts hosts, h1 seeding a gossip cluster.
func gossipLab(t *testing.T, name string, hosts int) (*lab.Lab, []*lab.Weft) {
	t.Helper()
	l := newLab(t, name, hosts)
	return l, startWeftCfg(t, l, lab.WeftConfig{Gossip: true})
}

// waitPeers waits until w routes to exactly the nodes in want (alive peers
// with their current subnets) and no others.
func waitPeers(t *testing.T, w *lab.Weft, want ...*lab.Weft) {
	t.Helper()
	err := testenv.Poll(t.Context(), convergeTimeout, w.Name+" routing to its peers", func() error {
		s, err := w.Status(t.Context())
		if err != nil {
			return err
		}
		routed := map[string]netip.Prefix{}
		for _, p := range s.Peers {
			if p.State.Routable() {
				routed[p.Name] = p.Subnet
			}
		}
		for _, o := range want {
			if routed[o.Name] != o.Subnet {
				return fmt.Errorf("%s: peer %s routed as %v, want %v (peers %+v)", w.Name, o.Name, routed[o.Name], o.Subnet, s.Peers)
			}
		}
		if len(routed) != len(want) {
			return fmt.Errorf("%s routes %d peers, want %d: %v", w.Name, len(routed), len(want), routed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func others(nodes []*lab.Weft, w *lab.Weft) []*lab.Weft {
	var o []*lab.Weft
	for _, n := range nodes {
		if n != w {
			o = append(o, n)
		}
	}
	return o
}

func pingAll(t *testing.T, nodes []*lab.Weft) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				ping(t, a, b, 1)
			}
		}
	}
}

func TestGossipFiveHosts(t *testing.T) {
	requireTools(t, "ping")
	_, nodes := gossipLab(t, "g5", 5)
	seen := map[netip.Prefix]string{}
	for _, n := range nodes {
		if o, dup := seen[n.Subnet]; dup {
			t.Fatalf("%s and %s both have %s", n.Name, o, n.Subnet)
		}
		seen[n.Subnet] = n.Name
	}
	for _, n := range nodes {
		waitPeers(t, n, others(nodes, n)...)
	}
	pingAll(t, nodes)
	if r := runWeft(t, nodes[0].Host, "lease", "list", "--run-dir", nodes[0].RunDir); r.code != 0 || !strings.Contains(r.stdout, "h5") || !strings.Contains(r.stdout, nodes[4].Subnet.String()) {
		t.Fatalf("weft lease list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Two nodes started at once that both ask for the same subnet end with
// distinct ones and reach each other.
func TestGossipSameSubnetAtOnce(t *testing.T) {
	requireTools(t, "ping")
	_, nodes := gossipLab(t, "gc", 3)
	// Restart h2 and h3 together under new names (no lease yet), both asking
	// for 10.244.9.0/24.
	for _, w := range nodes[1:] {
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		w.Name = w.Name + "b"
		w.Args = append(w.Args, "--name", w.Name, "--subnet", "10.244.9.0/24")
	}
	errs := make(chan error, 2)
	for _, w := range nodes[1:] {
		go func() { errs <- w.Start(t.Context()) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if nodes[1].Subnet == nodes[2].Subnet {
		t.Fatalf("both got %s", nodes[1].Subnet)
	}
	if nodes[1].Subnet.String() != "10.244.9.0/24" && nodes[2].Subnet.String() != "10.244.9.0/24" {
		t.Errorf("neither kept the requested 10.244.9.0/24: %s, %s", nodes[1].Subnet, nodes[2].Subnet)
	}
	for _, n := range nodes {
		waitPeers(t, n, others(nodes, n)...)
	}
	pingAll(t, nodes)
}

func TestGossipFailureRestartAndMove(t *testing.T) {
	requireTools(t, "ping")
	_, nodes := gossipLab(t, "gf", 3)
	h1, h2, h3 := nodes[0], nodes[1], nodes[2]
	waitPeers(t, h1, h2, h3)
	subnet := h3.Subnet

	// SIGKILL: the others withdraw h3's route.
	h3.Proc.Stop(syscall.SIGKILL, 5*time.Second)
	waitPeers(t, h1, h2)
	waitPeers(t, h2, h1)

	// Restart with the same name: the same subnet comes back.
	if err := h3.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h3.Subnet != subnet {
		t.Fatalf("restarted h3 got %s, had %s", h3.Subnet, subnet)
	}
	waitPeers(t, h1, h2, h3)
	ping(t, h1, h3, 1)

	// Move h3 to a new underlay address: same subnet, traffic follows.
	if err := h3.Stop(); err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddr("192.168.77.33")
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	for _, argv := range [][]string{
		{"ip", "addr", "flush", "dev", h3.Host.Link},
		{"ip", "addr", "add", moved.String() + "/24", "dev", h3.Host.Link},
		{"ip", "route", "add", "default", "via", "192.168.77.254", "dev", h3.Host.Link},
	} {
		if out, err := h3.Host.Run(ctx, argv[0], argv[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
	if err := h3.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h3.Subnet != subnet {
		t.Fatalf("moved h3 got %s, had %s", h3.Subnet, subnet)
	}
	err := testenv.Poll(t.Context(), convergeTimeout, "h1 sending to h3's new address", func() error {
		s, err := h1.Status(t.Context())
		if err != nil {
			return err
		}
		for _, p := range s.Peers {
			if p.Name == "h3" && p.Endpoint.Addr() == moved && p.State == "alive" {
				return nil
			}
		}
		return fmt.Errorf("peers %+v", s.Peers)
	})
	if err != nil {
		t.Fatal(err)
	}
	ping(t, h1, h3, 1)
	ping(t, h3, h2, 1)
}

// A partition between h1 and h2 (nftables drops everything between their
// underlay addresses) heals without restarts once lifted.
func TestGossipPartitionHeals(t *testing.T) {
	requireTools(t, "ping", "nft")
	_, nodes := gossipLab(t, "gp", 2)
	h1, h2 := nodes[0], nodes[1]
	waitPeers(t, h1, h2)
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	for _, argv := range [][]string{
		{"add", "table", "inet", "weftpart"},
		{"add", "chain", "inet", "weftpart", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "weftpart", "in", "ip", "saddr", h2.Host.Addr.String(), "drop"},
	} {
		if out, err := h1.Host.Run(ctx, "nft", argv...); err != nil {
			t.Fatalf("nft %v: %v\n%s", argv, err, out)
		}
	}
	waitPeers(t, h1) // h1 no longer routes to h2
	waitPeers(t, h2) // and h2 no longer to h1
	if out, err := h1.Host.Run(ctx, "nft", "delete", "table", "inet", "weftpart"); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	waitPeers(t, h1, h2)
	waitPeers(t, h2, h1)
	ping(t, h1, h2, 1)
	ping(t, h2, h1, 1)
}

// A node without gossip has no leases, and `weft lease` says so.
func TestLeaseWithoutGossip(t *testing.T) {
	_, nodes := weftLab(t, "lg", 1, "")
	for _, args := range [][]string{{"list"}, {"release", "h2"}} {
		r := runWeft(t, nodes[0].Host, append([]string{"lease"}, append(args, "--run-dir", nodes[0].RunDir)...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "without gossip") {
			t.Errorf("weft lease %v on a static node: exit %d, %q", args, r.code, r.stderr)
		}
	}
}
