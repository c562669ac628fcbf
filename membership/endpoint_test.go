package membership

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
)

// endpointTwin finds a live member of another name at our data endpoint or
// gossip address, and nothing else: not ourselves, not a gone member, not a
// member on our address at other ports.
func TestEndpointTwin(t *testing.T) {
	shared := netip.MustParseAddr("10.0.2.15")
	at := func(c *Config) { c.DataEndpoint = netip.AddrPortFrom(shared, 6081) }
	for _, tc := range []struct {
		name  string
		other func(*leaseState)
		state peer.State
		twin  string // "" for none
	}{
		{"same data endpoint and gossip address", nil, peer.Alive, "10.0.2.15:6081"},
		{"same gossip address only", func(o *leaseState) { o.cfg.DataEndpoint = netip.MustParseAddrPort("10.0.2.15:7000") }, peer.Alive, "10.0.2.15:7946"},
		{"same data endpoint only", func(o *leaseState) { o.gossip = netip.MustParseAddrPort("10.0.2.15:8000") }, peer.Alive, "10.0.2.15:6081"},
		{"same address, other ports", func(o *leaseState) {
			o.cfg.DataEndpoint = netip.MustParseAddrPort("10.0.2.15:7000")
			o.gossip = netip.MustParseAddrPort("10.0.2.15:8000")
		}, peer.Alive, ""},
		{"dead twin", nil, peer.Dead, ""},
	} {
		a, b := simNode("a", 1, at), simNode("b", 2, at)
		a.gossip, b.gossip = netip.AddrPortFrom(shared, 7946), netip.AddrPortFrom(shared, 7946)
		if tc.other != nil {
			tc.other(a)
		}
		b.member(b.event(peer.Alive), t0)
		b.member(a.event(tc.state), t0)
		b.member(simNode("c", 3, nil).event(peer.Alive), t0)
		name, ep, ok := b.endpointTwin()
		switch {
		case tc.twin == "" && ok:
			t.Errorf("%s: twin %s at %s, want none", tc.name, name, ep)
		case tc.twin != "" && (!ok || name != "a" || ep.String() != tc.twin):
			t.Errorf("%s: twin %q at %s (%v), want a at %s", tc.name, name, ep, ok, tc.twin)
		}
	}
}

// A node that joins with the data endpoint of a live member of another name
// stops with ErrEndpointInUse naming that member, soon; the cluster's
// members and routes stay as they were.
func TestJoinRefusesDuplicateEndpoint(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	n1 := mustLaunch(t, testConfig("n1", t.TempDir(), seed.seed()))
	testenv.WaitFor(t, 10*time.Second, "seed and n1 see each other", func() bool { return seed.sees(n1) && n1.sees(seed) })

	twin := testConfig("twin", t.TempDir(), seed.seed())
	twin.DataEndpoint = n1.cfg.DataEndpoint
	start := time.Now()
	tn, err := launch(t, twin)
	if !errors.Is(err, ErrEndpointInUse) || !strings.Contains(err.Error(), `"n1"`) || !strings.Contains(err.Error(), n1.cfg.DataEndpoint.String()) {
		t.Fatalf("twin: %v, want ErrEndpointInUse naming n1 and %s", err, n1.cfg.DataEndpoint)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("twin took %v to refuse", took) // a bound, not a speed requirement
	}
	if tn.subnet.IsValid() || tn.logs.count("subnet leased") > 0 {
		t.Errorf("twin leased %v before refusing:\n%s", tn.subnet, tn.logs)
	}
	if !seed.sees(n1) || !n1.sees(seed) {
		t.Errorf("routes disturbed: seed sees %v, n1 sees %v", seed.peerSet(), n1.peerSet())
	}
	for _, l := range seed.m.Leases() {
		if l.Name == "twin" {
			t.Errorf("the twin left a lease: %+v", l)
		}
	}
}
