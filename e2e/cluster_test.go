package e2e

// Joining a cluster with the real binary: a node told to --join leases
// nothing until a seed answers, and says why it waits; a lost lease file
// costs no node its subnet; a node with another --lease-ttl adopts the
// cluster's.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/lab"
)

// startJoining runs w with its Args without waiting for it to be up: it
// may stay joining.
func startJoining(t *testing.T, w *lab.Weft) {
	t.Helper()
	p, err := w.Host.Start(context.Background(), weftBin, w.Args...)
	if err != nil {
		t.Fatal(err)
	}
	w.Proc = p
}

// waitJoining waits until w answers status as joining, with no subnet and a
// last error that contains why.
func waitJoining(t *testing.T, w *lab.Weft, why string) {
	t.Helper()
	err := lab.WaitFor(t.Context(), convergeTimeout, w.Name+" joining: "+why, func() error {
		select {
		case <-w.Proc.Done():
			return fmt.Errorf("weft exited: %v\n%s", w.Proc.Wait(), w.Proc.Output())
		default:
		}
		s, err := w.Status(t.Context())
		switch {
		case err != nil:
			return err
		case s.State != "joining" || s.Join == nil || s.Subnet.IsValid():
			return fmt.Errorf("state %q, subnet %s, join %+v", s.State, s.Subnet, s.Join)
		case !strings.Contains(s.Join.LastError, why):
			return fmt.Errorf("last error %q", s.Join.LastError)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := w.RunFiles(); slices.Contains(files, "subnet.env") {
		t.Fatalf("%s wrote subnet.env while joining: %v", w.Name, files)
	}
}

// withArg returns args with the value of flag replaced (or flag added).
func withArg(args []string, flag, value string) []string {
	out := slices.Clone(args)
	if i := slices.Index(out, flag); i >= 0 && i+1 < len(out) {
		out[i+1] = value
		return out
	}
	return append(out, flag, value)
}

func stateDir(w *lab.Weft) string { return filepath.Join(filepath.Dir(w.RunDir), "state") }

// A node whose seed is down, and one with another cluster key, stay joining
// with no subnet and say why; the first joins, with its old subnet, as soon
// as the seed is back; SIGTERM stops the second cleanly while it waits.
func TestClusterJoinWaitsForSeed(t *testing.T) {
	_, nodes := gossipLab(t, "cj", 3)
	h1, h2, h3 := nodes[0], nodes[1], nodes[2]
	waitPeers(t, h1, h2, h3)
	h2Subnet := h2.Subnet
	for _, w := range []*lab.Weft{h3, h2, h1} {
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
	}

	startJoining(t, h2)
	waitJoining(t, h2, "connection refused")
	if out := cliStatus(t, h2); !strings.Contains(out, "joining") || !strings.Contains(out, "connection refused") {
		t.Fatalf("weft status while joining:\n%s", out)
	}
	_, m := cliStatusJSON(t, h2)
	if m["state"] != "joining" {
		t.Fatalf("weft status --json while joining: state %v", m["state"])
	}

	otherKey := filepath.Join(t.TempDir(), "other.key")
	if r := runWeft(t, h3.Host, "keygen", "--out", otherKey); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	h3.Args = withArg(h3.Args, "--key-file", otherKey)
	if err := h1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	startJoining(t, h3)
	waitJoining(t, h3, "wrong cluster key?")

	err := lab.WaitFor(t.Context(), convergeTimeout, "h2 up once the seed is back", func() error {
		s, err := h2.Status(t.Context())
		if err != nil || s.State != "up" {
			return fmt.Errorf("%v %+v", err, s)
		}
		h2.Subnet, h2.Addr = s.Subnet, s.Address
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if h2.Subnet != h2Subnet {
		t.Fatalf("h2 came back with %s, had %s", h2.Subnet, h2Subnet)
	}
	waitPeers(t, h1, h2)
	waitPeers(t, h2, h1)
	waitJoining(t, h3, "wrong cluster key?") // still

	if err := h3.Stop(); err != nil {
		t.Fatalf("SIGTERM while joining: %v", err)
	}
	if files, _ := h3.RunFiles(); len(files) != 0 {
		t.Fatalf("h3 left %v in its run dir", files)
	}
}

// A corrupt lease file: a node with --join learns the table, and its own
// lease by name, from the cluster before it claims; the first node (no
// --join) starts from an empty table and takes the first free subnet,
// which the others do not hold, and the cluster heals.
func TestClusterCorruptLeaseFile(t *testing.T) {
	_, nodes := gossipLab(t, "cc", 3)
	h1, h2, h3 := nodes[0], nodes[1], nodes[2]
	waitPeers(t, h1, h2, h3)
	corrupt := func(w *lab.Weft) {
		t.Helper()
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stateDir(w), "leases.json"), []byte(`{"v":1,"leases":[{"name":`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []*lab.Weft{h2, h1} {
		t.Run(map[*lab.Weft]string{h1: "first node", h2: "with join"}[w], func(t *testing.T) {
			was := w.Subnet
			corrupt(w)
			if err := w.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			if w.Subnet != was {
				t.Fatalf("%s came back with %s, had %s", w.Name, w.Subnet, was)
			}
			for _, n := range nodes {
				waitPeers(t, n, others(nodes, n)...)
			}
			if !strings.Contains(w.Proc.Output(), "lease file is corrupt") {
				t.Errorf("%s did not say its lease file is corrupt:\n%s", w.Name, w.Proc.Output())
			}
		})
	}
}

// A node started with another --lease-ttl adopts the cluster's and says so.
func TestClusterLeaseTTLMismatch(t *testing.T) {
	_, nodes := gossipLab(t, "ct", 2)
	h2 := nodes[1]
	if err := h2.Stop(); err != nil {
		t.Fatal(err)
	}
	h2.Args = withArg(h2.Args, "--lease-ttl", "1h")
	if err := h2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := lab.WaitFor(t.Context(), convergeTimeout, "h2 saying it adopts the cluster's TTL", func() error {
		if out := h2.Proc.Output(); !strings.Contains(out, "using the cluster's") || !strings.Contains(out, "ttl=24h0m0s") {
			return fmt.Errorf("not yet:\n%s", out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitPeers(t, nodes[0], h2)
	s, err := h2.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.LeaseTTL != "24h0m0s" {
		t.Fatalf("h2's up status shows lease TTL %q, want the cluster's 24h0m0s", s.LeaseTTL)
	}
	if out := cliStatus(t, h2); !strings.Contains(out, "leases    ttl 24h0m0s (the cluster's)") {
		t.Fatalf("weft status does not show the adopted TTL:\n%s", out)
	}
}
