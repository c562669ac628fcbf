package e2e

// A node's life: a clean stop leaves nothing behind, a restart or a crash
// and restart bring traffic back, a second weft on the same host refuses
// to start on a TUN name, port, overlay route or run dir already taken,
// saying which, and a node missing a local prerequisite fails before it
// joins its cluster.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

func TestLifecycle(t *testing.T) {
	forEachDriver(t, []string{"ping"}, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "lc"+tag, 2, driver)
		a, b := nodes[0], nodes[1]
		ping(t, a, b, 2)

		// SIGTERM: exit status 0 and nothing left.
		if err := b.Stop(); err != nil {
			t.Fatalf("stop: %v\n%s", err, b.Proc.Output())
		}
		if err := b.Proc.Wait(); err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
		checkNothingLeft(t, b)

		restart(t, b)
		ping(t, a, b, 2)
		ping(t, b, a, 2)

		// SIGKILL: the crash leaves its run files (the socket is dead), the
		// TUN device goes with the process; neither blocks a restart.
		if err := b.Proc.Stop(syscall.SIGKILL, 5*time.Second); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		left, _ := b.RunFiles()
		t.Logf("run dir after SIGKILL: %v", left)
		restart(t, b)
		ping(t, a, b, 2)
		ping(t, b, a, 2)

		if err := b.Stop(); err != nil {
			t.Fatalf("stop after the restart: %v", err)
		}
		checkNothingLeft(t, b)
	})
}

// restart starts w again with the same arguments.
func restart(t *testing.T, w *lab.Weft) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatalf("restart %s: %v", w.Name, err)
	}
}

// checkNothingLeft checks that a stopped node left no TUN link, no route to
// the overlay and an empty run dir.
func checkNothingLeft(t *testing.T, w *lab.Weft) {
	t.Helper()
	ctx := t.Context()
	if out, err := w.Host.Run(ctx, "ip", "link", "show", "weft0"); err == nil {
		t.Errorf("%s: weft0 still exists after stop:\n%s", w.Name, out)
	}
	out, err := w.Host.Run(ctx, "ip", "-4", "route", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, overlayNet.String()) || strings.Contains(out, "weft0") {
		t.Errorf("%s: overlay route left after stop:\n%s", w.Name, out)
	}
	if left, err := w.RunFiles(); err != nil || len(left) > 0 {
		t.Errorf("%s: run dir after stop: %v, %v; want it empty", w.Name, left, err)
	}
}

// TestSecondWeftRefused starts a second weft next to a running one, sharing
// one resource at a time, and checks it exits with a one-line error naming
// the flag, leaving the first node and its traffic alone.
func TestSecondWeftRefused(t *testing.T) {
	forEachDriver(t, []string{"ping"}, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "cf"+tag, 2, driver)
		a, b := nodes[0], nodes[1]
		dir := t.TempDir()
		second := []string{"up", "--name", "again", "--insecure", "--tun-driver", driver,
			"--subnet", "10.244.9.0/24", "--run-dir", filepath.Join(dir, "run"), "--state-dir", filepath.Join(dir, "state")}
		for _, c := range []struct {
			name, flag string
			args       []string
		}{
			{"same TUN name", "--tun", []string{"--listen", "0.0.0.0:6091"}}, // --tun weft0 is the default
			{"same port", "--listen", []string{"--tun", "weft9"}},            // --listen 0.0.0.0:6081 is the default
			// Two nodes cannot both route the overlay; the line names it.
			{"same network", overlayNet.String(), []string{"--tun", "weft8", "--listen", "0.0.0.0:6092"}},
			{"same run dir", "--run-dir", []string{"--tun", "weft7", "--listen", "0.0.0.0:6093",
				"--network", "10.250.0.0/16", "--subnet", "10.250.9.0/24", "--run-dir", b.RunDir}},
		} {
			r := runWeft(t, b.Host, slices.Concat(second, c.args)...)
			checkRefused(t, c.name, r, c.flag)
		}
		for _, tun := range []string{"weft9", "weft8", "weft7"} {
			if out, err := b.Host.Run(t.Context(), "ip", "link", "show", tun); err == nil {
				t.Errorf("a refused weft left %s behind:\n%s", tun, out)
			}
		}
		select {
		case <-b.Proc.Done():
			t.Fatalf("the first weft exited: %v", b.Proc.Wait())
		default:
		}
		if files, err := b.RunFiles(); err != nil || len(files) != 2 {
			t.Errorf("the first weft's run dir: %v, %v; want its socket and subnet.env", files, err)
		}
		ping(t, a, b, 2)
		ping(t, b, a, 2)
	})
}

// checkRefused checks that r exited by itself with a non-zero status and
// that besides its log lines (time=…) stderr holds one line, "weft up: …",
// naming flag.
func checkRefused(t *testing.T, what string, r weftRun, flag string) {
	t.Helper()
	switch r.code {
	case 0:
		t.Errorf("%s: weft up exited 0\nstderr:\n%s", what, r.stderr)
		return
	case -1:
		t.Errorf("%s: weft up still running after %v\nstderr:\n%s", what, cmdTimeout, r.stderr)
		return
	}
	var errLines []string
	for line := range strings.Lines(r.stderr) {
		if !strings.HasPrefix(line, "time=") {
			errLines = append(errLines, strings.TrimSpace(line))
		}
	}
	if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "weft up: ") || !strings.Contains(errLines[0], flag) {
		t.Errorf("%s: exit %d; want one line \"weft up: …%s…\", got %q\nstderr:\n%s", what, r.code, flag, errLines, r.stderr)
		return
	}
	t.Logf("%s: exit %d: %s", what, r.code, errLines[0])
}

// TestPrerequisitesBeforeJoin: a node whose host lacks something it needs
// (the privilege, a free data, metrics or gossip port, a writable state dir)
// fails in one line naming it before it joins the cluster, so no lease is
// taken for it (issue 17 item 4). h1 and h2 run a gossip cluster; h3 tries
// to join it, once per missing prerequisite, then with everything in place.
func TestPrerequisitesBeforeJoin(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "unshare", "setpriv", "mount")
	l := newLab(t, "pre", 3)
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	nodes, err := l.PrepareWeft(ctx, lab.WeftConfig{Binary: weftBin, Dir: t.TempDir(), Gossip: true})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, nodes)
	h1, h3 := nodes[0], nodes[2]
	for _, w := range nodes[:2] {
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// What each case takes away on h3.
	listenUDP(t, h3.Host, netip.MustParseAddrPort("0.0.0.0:6091"))
	listenTCP(t, h3.Host, netip.MustParseAddrPort("127.0.0.1:9599"))
	listenTCP(t, h3.Host, netip.AddrPortFrom(h3.Host.Addr, 7947))
	state := filepath.Join(t.TempDir(), "ro-state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		wrap       []string // runs weft
		args       []string // added to h3's command line (the last of a flag wins)
	}{
		{"no CAP_NET_ADMIN", "needs root or CAP_NET_ADMIN", []string{"setpriv", "--inh-caps=-all", "--bounding-set=-all"}, nil},
		{"data port in use", "--listen", nil, []string{"--listen", "0.0.0.0:6091"}},
		{"metrics port in use", "--metrics-addr", nil, []string{"--metrics-addr", "127.0.0.1:9599"}},
		{"gossip port in use", "--gossip-port 7947: port already in use", nil, []string{"--gossip-port", "7947"}},
		// A read-only file system over the state dir, in a mount namespace
		// of weft's own: root writes anywhere else.
		{"read-only state dir", "--state-dir", []string{"unshare", "-m", "sh", "-c", `mount -t tmpfs -o ro tmpfs "$0" && exec "$@"`, state},
			[]string{"--state-dir", state}},
	} {
		argv := slices.Concat(c.wrap, []string{weftBin}, h3.Args, c.args)
		checkRefused(t, c.name, runIn(t, h3.Host, argv[0], argv[1:]...), c.want)
		leases, err := api.NewClient(h1.RunDir).Leases(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, ls := range leases {
			if ls.Name == h3.Name {
				t.Errorf("%s: h3 failed, but only after it leased %s", c.name, ls.Subnet)
			}
		}
	}

	// With everything in place h3 joins: each case failed for its reason.
	if err := h3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	err = testenv.Poll(t.Context(), waitTimeout, "h3's lease at h1", func() error {
		leases, err := api.NewClient(h1.RunDir).Leases(t.Context())
		for _, ls := range leases {
			if ls.Name == h3.Name {
				return nil
			}
		}
		return fmt.Errorf("leases %v (%v)", leases, err)
	})
	if err != nil {
		t.Fatal(err)
	}
}
