package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// A firewall that drops only the data port (UDP 6081) while gossip flows:
// status and doctor report the path unreachable with that reason, and
// lifting the rule clears it.
func TestPathBlockedDataPort(t *testing.T) {
	requireTools(t, "ping", "nft")
	_, nodes := gossipLab(t, "pb", 2)
	h1, h2 := nodes[0], nodes[1]
	waitPeers(t, h1, h2)
	waitPath(t, h1, "h2", api.PathOK)
	if r := runWeft(t, h1.Host, "doctor", "--run-dir", h1.RunDir); r.code != 0 || !strings.Contains(r.stdout, "path to h2") {
		t.Fatalf("doctor on a healthy node: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	} else {
		t.Logf("weft doctor on a healthy node:\n%s", r.stdout)
	}

	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	for _, argv := range [][]string{
		{"add", "table", "inet", "weftblock"},
		{"add", "chain", "inet", "weftblock", "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", "weftblock", "in", "udp", "dport", "6081", "drop"},
	} {
		if out, err := h2.Host.Run(ctx, "nft", argv...); err != nil {
			t.Fatalf("nft %v: %v\n%s", argv, err, out)
		}
	}
	p := waitPath(t, h1, "h2", api.PathUnreachable)
	if !strings.Contains(p.Path.Reason, "gossip still hears") {
		t.Fatalf("reason %q does not say gossip still works", p.Path.Reason)
	}
	if p.State != "alive" {
		t.Fatalf("gossip state of h2 is %s while only the data port is blocked", p.State)
	}
	r := runWeft(t, h1.Host, "doctor", "--run-dir", h1.RunDir)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  path to h2") || !strings.Contains(r.stdout, "allow UDP port 6081") {
		t.Fatalf("doctor with the data port blocked: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out := cliStatus(t, h1); !strings.Contains(out, "path to h2 unreachable") {
		t.Fatalf("weft status does not show the broken path:\n%s", out)
	}
	t.Logf("weft doctor with the data port blocked:\n%s", r.stdout)

	if out, err := h2.Host.Run(ctx, "nft", "delete", "table", "inet", "weftblock"); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	waitPath(t, h1, "h2", api.PathOK)
	waitPath(t, h2, "h1", api.PathOK)
	ping(t, h1, h2, 1)
}

// A peer killed with -9 stays alive in gossip for a few seconds while its
// probes go unanswered; its path's reason must not blame a firewall, as
// gossip last heard it before the probes failed (issue 17 item 5).
func TestPathCrashedPeer(t *testing.T) {
	_, nodes := gossipLab(t, "pk", 2)
	h1, h2 := nodes[0], nodes[1]
	waitPeers(t, h1, h2)
	waitPath(t, h1, "h2", api.PathOK)
	if err := h2.Proc.Stop(syscall.SIGKILL, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Traffic to the dead peer makes its path urgent (an idle one waits for
	// the slow sweep), so it turns unreachable while gossip still lists h2.
	// The pings fail; only their packets matter. -w bounds them to 10 s.
	pingCtx, stopPing := context.WithCancel(t.Context())
	pinged := make(chan error, 1)
	go func() { pinged <- h1.Host.Ping(pingCtx, h2.Addr, 40) }()
	defer func() { stopPing(); <-pinged }()
	var reasons []string
	err := testenv.Poll(t.Context(), convergeTimeout, "h2 dead in h1's gossip", func() error {
		s, err := h1.Status(t.Context())
		if err != nil {
			return err
		}
		for _, p := range s.Peers {
			if p.Name != "h2" {
				continue
			}
			if p.Path.State == api.PathUnreachable && p.State.Routable() {
				if len(reasons) == 0 || reasons[len(reasons)-1] != p.Path.Reason {
					reasons = append(reasons, p.Path.Reason)
				}
			}
			if !p.State.Routable() {
				return nil
			}
			return fmt.Errorf("h2 %s, path %s", p.State, p.Path.State)
		}
		return nil // gone from the table
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reasons) == 0 {
		t.Log("gossip declared h2 dead before its path was unreachable: no reason to check")
	}
	for _, r := range reasons {
		if strings.Contains(r, "still hears") || !strings.Contains(r, "may be down") {
			t.Errorf("h2 was killed, but h1 says: %s", r)
		}
	}
	t.Logf("reasons while h2 was still alive in gossip: %q", reasons)
}

// waitPath waits until w's status shows its path to peer in state, and
// returns that peer's status.
func waitPath(t *testing.T, w *lab.Weft, peer, state string) api.PeerStatus {
	t.Helper()
	var got api.PeerStatus
	err := testenv.Poll(t.Context(), convergeTimeout, fmt.Sprintf("%s's path to %s %s", w.Name, peer, state), func() error {
		s, err := w.Status(t.Context())
		if err != nil {
			return err
		}
		for _, p := range s.Peers {
			if p.Name == peer {
				got = p
				if p.Path.State == state {
					return nil
				}
				return fmt.Errorf("path %+v", p.Path)
			}
		}
		return fmt.Errorf("no peer %s", peer)
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}
