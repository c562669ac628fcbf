package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
)

// startMany launches nodes concurrently and fails the test if any fails.
func startMany(t *testing.T, cfgs ...Config) []*testNode {
	t.Helper()
	nodes := make([]*testNode, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() { nodes[i], errs[i] = launch(t, c) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return nodes
}

func TestFiveMembers(t *testing.T) {
	seed := mustLaunch(t, testConfig("n0", t.TempDir()))
	var cfgs []Config
	for i := 1; i < 5; i++ {
		cfgs = append(cfgs, testConfig(fmt.Sprintf("n%d", i), t.TempDir(), seed.seed()))
	}
	all := append([]*testNode{seed}, startMany(t, cfgs...)...)

	subnets := map[netip.Prefix]string{}
	for _, n := range all {
		if o, dup := subnets[n.subnet]; dup {
			t.Fatalf("%s and %s both have %s", o, n.cfg.Name, n.subnet)
		}
		subnets[n.subnet] = n.cfg.Name
	}
	for _, n := range all {
		var others []*testNode
		for _, o := range all {
			if o != n {
				others = append(others, o)
			}
		}
		testenv.WaitFor(t, 15*time.Second, n.cfg.Name+" sees the other 4 with their subnets and endpoints", func() bool { return n.sees(others...) })
		for _, p := range n.peerSet() {
			if p.State != peer.Alive || p.LastSeen.IsZero() {
				t.Errorf("%s sees %s as %q, last seen %v", n.cfg.Name, p.Name, p.State, p.LastSeen)
			}
		}
	}
	if seed.subnet != netip.MustParsePrefix("10.244.1.0/24") {
		t.Errorf("first node got %s, want the first subnet after the network's own, 10.244.1.0/24", seed.subnet)
	}
	// LastHeard keeps moving with gossip probes, with no new peer set.
	other := all[1].cfg.Name
	first, ok := seed.m.LastHeard(other)
	if !ok {
		t.Fatalf("LastHeard(%s): unknown member", other)
	}
	testenv.WaitFor(t, 15*time.Second, "the seed hearing from "+other+" again", func() bool {
		t, _ := seed.m.LastHeard(other)
		return t.After(first)
	})
	if _, ok := seed.m.LastHeard("nobody"); ok {
		t.Error("LastHeard of no member succeeded")
	}
	t.Logf("subnets: %v", subnets)
}

// Two nodes that claim one subnet from the same view tie on the claim order,
// so the name decides, and it decides the same way every time.
func TestConcurrentClaims(t *testing.T) {
	want := netip.MustParsePrefix("10.244.9.0/24")
	for run := range 3 {
		t.Run(fmt.Sprintf("requested/%d", run), func(t *testing.T) {
			seed := mustLaunch(t, testConfig("seed", t.TempDir()))
			a := testConfig("a", t.TempDir(), seed.seed())
			b := testConfig("b", t.TempDir(), seed.seed())
			a.Subnet, b.Subnet = want, want
			ns := startMany(t, b, a)
			if ns[1].subnet != want || ns[0].subnet == want || ns[0].subnet == seed.subnet {
				t.Fatalf("a got %s, b got %s (seed %s); want a to keep %s and b elsewhere", ns[1].subnet, ns[0].subnet, seed.subnet, want)
			}
			testenv.WaitFor(t, 10*time.Second, "seed routes both", func() bool { return seed.sees(ns...) })
		})
		t.Run(fmt.Sprintf("picked/%d", run), func(t *testing.T) {
			seed := mustLaunch(t, testConfig("seed", t.TempDir()))
			ns := startMany(t, testConfig("b", t.TempDir(), seed.seed()), testConfig("a", t.TempDir(), seed.seed()))
			if ns[1].subnet != netip.MustParsePrefix("10.244.2.0/24") || ns[0].subnet == ns[1].subnet {
				t.Fatalf("a got %s, b got %s; want a to keep the first free subnet 10.244.2.0/24", ns[1].subnet, ns[0].subnet)
			}
		})
	}
}

func TestFailureAndLeave(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	ns := startMany(t, testConfig("n1", t.TempDir(), seed.seed()),
		testConfig("n2", t.TempDir(), seed.seed()), testConfig("n3", t.TempDir(), seed.seed()))
	n1, n2, n3 := ns[0], ns[1], ns[2]
	for _, n := range []*testNode{seed, n1, n2, n3} {
		testenv.WaitFor(t, 10*time.Second, n.cfg.Name+" sees 3 peers", func() bool { return len(n.peerSet()) == 3 })
	}

	n1.kill()
	took := testenv.WaitFor(t, 20*time.Second, "the others drop the killed n1", func() bool {
		for _, n := range []*testNode{seed, n2, n3} {
			if _, ok := n.peer("n1"); ok {
				return false
			}
		}
		return true
	})
	t.Logf("killed node dropped by all after %v (fast test timing)", took)
	if s, _ := seed.member("n1"); s.State != peer.Dead {
		t.Errorf("n1 after a kill: state %q, want dead", s.State)
	}
	testenv.WaitFor(t, 5*time.Second, "the dead n1 shown in the peer set for status", func() bool {
		for _, p := range seed.allPeers() {
			if p.Name == "n1" {
				return p.State == peer.Dead
			}
		}
		return false
	})
	if !seed.hasLease("n1") {
		t.Error("the dead n1's lease is gone; it must stay reserved")
	}

	if err := n2.stop(); err != nil {
		t.Fatalf("leave: %v", err)
	}
	took = testenv.WaitFor(t, 10*time.Second, "the others see n2 left", func() bool {
		for _, n := range []*testNode{seed, n3} {
			s, _ := n.member("n2")
			if _, routed := n.peer("n2"); routed || s.State != peer.Left {
				return false
			}
		}
		return true
	})
	t.Logf("graceful leave seen by all after %v", took)
	if got := seed.m.Stats()["duplicate_name"]; got != 0 {
		t.Errorf("duplicate_name = %d without duplicates", got)
	}
}

func TestRestart(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	dir := t.TempDir()
	cfg := testConfig("n1", dir, seed.seed())
	n1 := mustLaunch(t, cfg)
	want := n1.subnet
	testenv.WaitFor(t, 10*time.Second, "seed sees n1", func() bool { return seed.sees(n1) })

	t.Run("graceful, new address", func(t *testing.T) {
		if err := n1.stop(); err != nil {
			t.Fatal(err)
		}
		cfg.DataEndpoint = uniqueEndpoint() // and GossipPort 0 gives a new gossip port
		n1 = mustLaunch(t, cfg)
		if n1.subnet != want {
			t.Fatalf("restarted n1 got %s, had %s", n1.subnet, want)
		}
		testenv.WaitFor(t, 10*time.Second, "seed sees n1's new endpoint", func() bool { return seed.sees(n1) })
	})
	t.Run("crash, new address", func(t *testing.T) {
		n1.kill()
		cfg.DataEndpoint = uniqueEndpoint()
		n1 = mustLaunch(t, cfg)
		if n1.subnet != want {
			t.Fatalf("restarted n1 got %s, had %s", n1.subnet, want)
		}
		testenv.WaitFor(t, 10*time.Second, "seed sees n1's new endpoint", func() bool { return seed.sees(n1) })
	})
	t.Run("state dir lost", func(t *testing.T) {
		if err := n1.stop(); err != nil {
			t.Fatal(err)
		}
		cfg.StateDir = t.TempDir()
		n1 = mustLaunch(t, cfg)
		if n1.subnet != want {
			t.Fatalf("n1 without its lease file got %s; the cluster's table says %s", n1.subnet, want)
		}
	})
}

func TestLeaseTTL(t *testing.T) {
	t.Run("reserved before TTL", func(t *testing.T) {
		seed := mustLaunch(t, testConfig("seed", t.TempDir()))
		n1 := mustLaunch(t, testConfig("n1", t.TempDir(), seed.seed()))
		n1.kill()
		testenv.WaitFor(t, 20*time.Second, "seed sees n1 dead", func() bool { s, _ := seed.member("n1"); return s.State == peer.Dead })
		n2 := mustLaunch(t, testConfig("n2", t.TempDir(), seed.seed()))
		if n2.subnet.Overlaps(n1.subnet) {
			t.Fatalf("n2 got the dead n1's %s before its TTL", n1.subnet)
		}
	})
	t.Run("free after TTL", func(t *testing.T) {
		short := func(name string, seeds ...string) Config {
			c := testConfig(name, t.TempDir(), seeds...)
			c.LeaseTTL = 500 * time.Millisecond
			return c
		}
		seed := mustLaunch(t, short("seed"))
		n1 := mustLaunch(t, short("n1", seed.seed()))
		n1.kill()
		testenv.WaitFor(t, 20*time.Second, "n1's lease expires at seed", func() bool { return !seed.hasLease("n1") })
		n2 := mustLaunch(t, short("n2", seed.seed()))
		if n2.subnet != n1.subnet {
			t.Fatalf("n2 got %s; the expired %s is the first free subnet", n2.subnet, n1.subnet)
		}
	})
}

func TestRelease(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	ns := startMany(t, testConfig("n1", t.TempDir(), seed.seed()), testConfig("n2", t.TempDir(), seed.seed()),
		testConfig("n3", t.TempDir(), seed.seed()))
	n1, n2, n3 := ns[0], ns[1], ns[2]
	for _, n := range []*testNode{seed, n1, n2} {
		testenv.WaitFor(t, 10*time.Second, n.cfg.Name+" knows n3's lease", func() bool { return n.hasLease("n3") })
	}
	n3.kill()
	testenv.WaitFor(t, 20*time.Second, "seed sees n3 dead", func() bool { s, _ := seed.member("n3"); return s.State == peer.Dead })

	if err := seed.m.Release("n1"); !errors.Is(err, ErrLeaseInUse) {
		t.Errorf("release of live n1: %v, want ErrLeaseInUse", err)
	}
	if err := seed.m.Release("seed"); !errors.Is(err, ErrLeaseInUse) {
		t.Errorf("release of our own: %v, want ErrLeaseInUse", err)
	}
	if err := seed.m.Release("nobody"); !errors.Is(err, ErrNoLease) {
		t.Errorf("release of unknown: %v, want ErrNoLease", err)
	}
	if err := seed.m.Release("n3"); err != nil {
		t.Fatalf("release of dead n3: %v", err)
	}
	for _, n := range []*testNode{seed, n1, n2} {
		testenv.WaitFor(t, 10*time.Second, n.cfg.Name+" forgets n3's lease", func() bool { return !n.hasLease("n3") })
	}
	// The released subnet is free again: a node that asks for it gets it.
	// (Nodes started together spread over the first free subnets, so n3's
	// need not be the first free one.)
	c4 := testConfig("n4", t.TempDir(), seed.seed())
	c4.Subnet = n3.subnet
	if n4 := mustLaunch(t, c4); n4.subnet != n3.subnet {
		t.Errorf("n4 asked for the released %s and got %s", n3.subnet, n4.subnet)
	}
}

func TestFullNetwork(t *testing.T) {
	small := func(name string, seeds ...string) Config {
		c := testConfig(name, t.TempDir(), seeds...)
		c.Network = netip.MustParsePrefix("10.9.0.0/22")
		return c
	}
	seed := mustLaunch(t, small("seed"))
	mustLaunch(t, small("n1", seed.seed()))
	mustLaunch(t, small("n2", seed.seed()))
	_, err := launch(t, small("n3", seed.seed()))
	if !errors.Is(err, ErrNetworkFull) {
		t.Fatalf("fourth node in a /22 of /24s: %v, want ErrNetworkFull", err)
	}
	if want := "no free /24 left in 10.9.0.0/22: 3 leased"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestCorruptLeaseFile(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	dir := t.TempDir()
	cfg := testConfig("n1", dir, seed.seed())
	n1 := mustLaunch(t, cfg)
	want := n1.subnet
	n1.stop()
	file := filepath.Join(dir, LeaseFile)
	if err := os.WriteFile(file, []byte(`{"v":1,"leases":[{"name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	n1 = mustLaunch(t, cfg)
	if n1.subnet != want {
		t.Errorf("n1 with a corrupt lease file got %s; the cluster's table says %s", n1.subnet, want)
	}
	aside, _ := filepath.Glob(file + ".corrupt-*")
	if len(aside) != 1 {
		t.Errorf("corrupt file not moved aside: %v", aside)
	}
	if n1.logs.count("lease file is corrupt") != 1 {
		t.Errorf("no clear log line about the corrupt file:\n%s", n1.logs)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("no fresh lease file written: %v", err)
	}
}
