package e2e

// A node whose leased subnet is taken after it started (issue 13): two
// halves of a cluster that each leased the same subnet meet. The node whose
// claim ranks second leases another subnet in process when it has handed
// out no address from the lost one, and stops, as before, when it has.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/lab"
)

func TestSubnetLostAfterStart(t *testing.T) {
	requireTools(t, "ip", "ping")
	for _, served := range []bool{false, true} {
		t.Run(fmt.Sprintf("served=%v", served), func(t *testing.T) {
			l := newLab(t, "rl", 3)
			nodes, err := l.PrepareWeft(t.Context(), lab.WeftConfig{Binary: weftBin, Dir: t.TempDir(), Gossip: true})
			if err != nil {
				t.Fatal(err)
			}
			stopAtEnd(t, nodes)
			h1, h2, h3 := nodes[0], nodes[1], nodes[2]
			// h1 and h2 each start a cluster of their own and lease its
			// first subnet; h3 joins both, which merges them.
			h2.Args = withoutJoin(h2.Args)
			h3.Args = append(withoutJoin(h3.Args), "--join", h1.Host.Addr.String(), "--join", h2.Host.Addr.String())
			ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
			defer cancel()
			for _, w := range []*lab.Weft{h1, h2} {
				if err := w.Start(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if h1.Subnet != h2.Subnet {
				t.Fatalf("the premise: two lone first nodes lease the same subnet; got %s and %s", h1.Subnet, h2.Subnet)
			}
			lost := h2.Subnet // the contest falls to the name: h1's claim ranks first
			if served {
				// What a CNI bridge looks like after its first pod.
				gw := lost.Addr().Next().Next()
				for _, args := range [][]string{{"link", "add", "cni0", "type", "bridge"}, {"addr", "add", gw.String() + "/24", "dev", "cni0"}} {
					if out, err := h2.Host.Run(t.Context(), "ip", args...); err != nil {
						t.Fatalf("ip %v: %v\n%s", args, err, out)
					}
				}
			}
			if err := h3.Start(ctx); err != nil {
				t.Fatal(err)
			}

			if served {
				select {
				case <-h2.Proc.Done():
				case <-ctx.Done():
					t.Fatalf("h2 kept running on a subnet h1 holds:\n%s", h2.Proc.Output())
				}
				if err := h2.Proc.Wait(); err == nil || !strings.Contains(h2.Proc.Output(), "cni0 holds") {
					t.Fatalf("h2 exited with %v; want an error naming the served address:\n%s", err, h2.Proc.Output())
				}
				h2.Proc = nil // exited as it should; stopAtEnd must not stop it
				waitPeers(t, h1, h3)
				return
			}
			err = lab.WaitFor(t.Context(), convergeTimeout, "h2 on another subnet", func() error {
				s, err := h2.Status(t.Context())
				if err != nil {
					return err
				}
				if s.Subnet == lost || !s.Subnet.IsValid() {
					return fmt.Errorf("h2 holds %s", s.Subnet)
				}
				h2.Subnet, h2.Addr = s.Subnet, s.Address
				return nil
			})
			if err != nil {
				t.Fatalf("%v\n%s", err, h2.Proc.Output())
			}
			if !strings.Contains(h2.Proc.Output(), "leasing another") {
				t.Errorf("h2 did not say why it changed subnets:\n%s", h2.Proc.Output())
			}
			for _, w := range nodes {
				waitPeers(t, w, others(nodes, w)...)
			}
			pingAll(t, nodes)
			// The node that changed subnets is one process throughout.
			select {
			case <-h2.Proc.Done():
				t.Fatalf("h2 exited: %v", h2.Proc.Wait())
			default:
			}
			if files, _ := h2.RunFiles(); !slices.Contains(files, "subnet.env") {
				t.Errorf("h2's run dir after the new lease: %v, want subnet.env", files)
			}
		})
	}
}

// withoutJoin returns args without their --join flags.
func withoutJoin(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--join" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}
