package e2e

// A startup storm: a DaemonSet rollout or a datacenter power-on starts every
// node at once. 20 nodes joining one seed within a second must end as one
// cluster with 20 distinct subnets, and no node may exit on the way.

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// stormTimeout bounds the storm's convergence: 20 nodes on 2 busy cores.
const stormTimeout = 3 * time.Minute

func TestStartupStorm(t *testing.T) {
	const n = 20
	l := newLab(t, "storm", n)
	nodes, err := l.PrepareWeft(t.Context(), lab.WeftConfig{Binary: weftBin, Dir: t.TempDir(), Gossip: true})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, nodes)
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	if err := nodes[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range nodes[1:] {
		if err := w.Launch(); err != nil {
			t.Fatal(err)
		}
	}
	// Every node routes to every other; waitStorm also fails at once if
	// a node exits.
	for _, w := range nodes {
		waitStorm(t, w, nodes)
	}
	subnets := map[netip.Prefix]string{}
	for _, w := range nodes {
		s := status(t, w)
		if o, dup := subnets[s.Subnet]; dup {
			t.Errorf("%s and %s both hold %s", o, w.Name, s.Subnet)
		}
		subnets[s.Subnet] = w.Name
	}
}

// waitStorm waits until w routes to every other node of nodes; it fails as
// soon as any node has exited.
func waitStorm(t *testing.T, w *lab.Weft, nodes []*lab.Weft) {
	t.Helper()
	err := testenv.Poll(t.Context(), stormTimeout, w.Name+" routing to every other node", func() error {
		for _, o := range nodes {
			select {
			case <-o.Proc.Done():
				t.Fatalf("weft on %s exited during the storm: %v\n%s", o.Name, o.Proc.Wait(), o.Proc.Output())
			default:
			}
		}
		s, err := w.Status(t.Context())
		if err != nil {
			return err
		}
		routed := 0
		for _, p := range s.Peers {
			if p.State.Routable() {
				routed++
			}
		}
		if routed != len(nodes)-1 {
			return fmt.Errorf("routes to %d of %d peers", routed, len(nodes)-1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
