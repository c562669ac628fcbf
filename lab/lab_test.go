package lab_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/lab/labtest"
)

// TestMain closes every lab on SIGINT/SIGTERM, so an interrupted run leaves
// no namespaces behind.
func TestMain(m *testing.M) {
	lab.CloseOnSignal("lab tests", nil)
	os.Exit(m.Run())
}

// prefix is unique per test process and test; interface names stay short
// because they never contain it.
func prefix(suffix string) string { return fmt.Sprintf("wl%d%s", os.Getpid()%100000, suffix) }

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	testenv.Need(t, lab.Require(tools...))
}

func newLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return labtest.New(t, cfg)
}

// runRoot runs a read-only command (ip netns list/pids) in the root namespace.
func runRoot(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	// Not t.Context(): this also runs in t.Cleanup, after it is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return string(out), err
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && !strings.HasPrefix(rest, "Z")
}

// netnsPids lists the processes inside a namespace.
func netnsPids(t *testing.T, netns string) []int {
	t.Helper()
	out, err := runRoot(t, "ip", "netns", "pids", netns)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestThreeHosts(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ping")
	p := prefix("a")
	l := newLab(t, lab.Config{Hosts: 3, Prefix: p, Offloads: true})
	ctx := t.Context()

	if len(l.Hosts) != 3 || l.Host(1) != l.Hosts[0] || l.Host(3).Netns != p+"-h3" {
		t.Fatalf("hosts: %v", l.Hosts)
	}
	for i, h := range l.Hosts {
		want := fmt.Sprintf("192.168.77.%d/24", i+1)
		out, err := h.Run(ctx, "ip", "-o", "addr", "show", "dev", h.Link)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("%s: ip -o addr: want %s, got %q, %v", h, want, out, err)
		}
		out, err = h.Run(ctx, "ip", "route", "show", "default")
		if err != nil || !strings.Contains(out, "via 192.168.77.254 dev eth0") {
			t.Errorf("%s: default route: %q, %v", h, out, err)
		}
		if out, err := h.Run(ctx, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "1" {
			t.Errorf("%s: ip_forward = %q, %v; want 1", h, out, err)
		}
	}
	if out, err := l.Switch.Run(ctx, "cat", "/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(out) != "0" {
		t.Errorf("underlay: ip_forward = %q, %v; want 0", out, err)
	}

	var wg sync.WaitGroup
	for _, a := range l.Hosts {
		for _, b := range l.Hosts {
			if a != b {
				wg.Go(func() {
					if err := a.Ping(ctx, b.Addr, 2); err != nil {
						t.Errorf("ping %s → %s: %v", a, b, err)
					}
				})
			}
		}
	}
	wg.Wait()
	// 1472 bytes of payload + 28 of headers is exactly the 1500-byte MTU.
	if err := l.Host(1).PingDF(ctx, l.Host(2).Addr, 1, 1472); err != nil {
		t.Errorf("ping -M do -s 1472: %v", err)
	}
	if err := l.Host(1).PingDF(ctx, l.Host(2).Addr, 1, 1473); err == nil {
		t.Errorf("ping -M do -s 1473 passed a 1500-byte MTU")
	}

	// An extra namespace (a pod's) belongs to the lab: Close deletes it.
	pod, err := l.AddNetns(ctx, "x1")
	if err != nil || pod.Netns != p+"-px1" {
		t.Fatalf("AddNetns: %+v, %v", pod, err)
	}
	if out, err := pod.Run(ctx, "ip", "-o", "link", "show", "lo"); err != nil || !strings.Contains(out, "UP") {
		t.Errorf("%s: lo: %q, %v", pod, out, err)
	}
	if _, err := l.AddNetns(ctx, "x-1"); err == nil {
		t.Error("AddNetns accepted a name with '-'")
	}
	if got := labtest.Namespaces(t, p); len(got) != 5 {
		t.Errorf("Namespaces(%q) = %v, want u, h1-h3 and px1", p, got)
	}

	// A process with a grandchild: Close must kill the whole group.
	sleeper, err := l.Host(2).Start(context.Background(), "sh", "-c", "sleep 600 & sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	if err := testenv.Poll(ctx, 5*time.Second, "two sleeps in h2", func() error {
		if pids = netnsPids(t, l.Host(2).Netns); len(pids) < 3 {
			return fmt.Errorf("pids %v", pids)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sleeper.Done():
	default:
		t.Errorf("%v still running after Close", sleeper)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d survived Close", pid)
		}
	}
	if left := labtest.Namespaces(t, p); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.Host(1).Start(ctx, "true"); !errors.Is(err, lab.ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
	if _, err := l.AddNetns(ctx, "late"); !errors.Is(err, lab.ErrClosed) {
		t.Errorf("AddNetns after Close: %v, want ErrClosed", err)
	}
	if left := labtest.Namespaces(t, p); len(left) > 0 {
		t.Errorf("AddNetns after Close left %v", left)
	}
}

func TestOffloadsOff(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ethtool")
	l := newLab(t, lab.Config{Prefix: prefix("b"), MTU: 1400})
	ctx := t.Context()
	for _, h := range l.Hosts {
		for _, dev := range []struct {
			host *lab.Host
			link string
		}{{h, h.Link}, {l.Switch, h.Port}} {
			out, err := dev.host.Run(ctx, "ethtool", "-k", dev.link)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"generic-segmentation-offload", "tcp-segmentation-offload", "generic-receive-offload"} {
				if !strings.Contains(out, f+": off") {
					t.Errorf("%s %s: %s not off:\n%s", dev.host, dev.link, f, out)
				}
			}
			out, err = dev.host.Run(ctx, "ip", "-o", "link", "show", "dev", dev.link)
			if err != nil || !strings.Contains(out, "mtu 1400 ") {
				t.Errorf("%s %s: want mtu 1400: %q, %v", dev.host, dev.link, out, err)
			}
		}
	}
}

// TestVethQueues: both ends of every underlay veth have Config.Queues
// transmit and receive queues, as sysfs lists them.
func TestVethQueues(t *testing.T) {
	testenv.Require(t)
	l := newLab(t, lab.Config{Prefix: prefix("q"), Queues: 3})
	for _, h := range l.Hosts {
		for _, dev := range []struct {
			host *lab.Host
			link string
		}{{h, h.Link}, {l.Switch, h.Port}} {
			// ip netns exec mounts the namespace's own sysfs.
			out, err := dev.host.Run(t.Context(), "ls", "/sys/class/net/"+dev.link+"/queues")
			if err != nil {
				t.Fatal(err)
			}
			if rx, tx := strings.Count(out, "rx-"), strings.Count(out, "tx-"); rx != 3 || tx != 3 {
				t.Errorf("%s %s: %d rx and %d tx queues, want 3 each: %q", dev.host, dev.link, rx, tx, out)
			}
		}
	}
}

func TestCleanupAfterCrash(t *testing.T) {
	testenv.Require(t)
	p := prefix("c")
	// A neighbour whose name extends the prefix must survive Cleanup(p).
	newLab(t, lab.Config{Prefix: p + "0", Hosts: 1, Offloads: true})
	l, err := lab.New(t.Context(), lab.Config{Prefix: p, Offloads: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Cleanup(p) })
	sleeper, err := l.Host(1).Start(context.Background(), "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	// A second lab with the same prefix must refuse and point at Cleanup.
	if _, err := lab.New(t.Context(), lab.Config{Prefix: p, Offloads: true}); !errors.Is(err, lab.ErrExists) {
		t.Errorf("second New with the same prefix: %v, want ErrExists", err)
	}

	if _, err := l.AddNetns(t.Context(), "pod"); err != nil {
		t.Fatal(err)
	}

	// Simulate a crash: no Close, only Cleanup.
	if err := lab.Cleanup(p); err != nil {
		t.Fatal(err)
	}
	if left := labtest.Namespaces(t, p); len(left) > 0 {
		t.Errorf("after Cleanup(%q): namespaces %v left", p, left)
	}
	if kept := labtest.Namespaces(t, p+"0"); len(kept) != 2 {
		t.Errorf("Cleanup(%q) touched %s's namespaces: %v left", p, p+"0", kept)
	}
	if err := testenv.Poll(t.Context(), 5*time.Second, "sleep to die", func() error {
		if alive(sleeper.Pid()) {
			return errors.New("alive")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if err := lab.Cleanup(p); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after Cleanup: %v", err)
	}
}

// TestNewTearsDownOnError makes the last build step fail (a fake ethtool)
// and checks New leaves nothing behind.
func TestNewTearsDownOnError(t *testing.T) {
	testenv.Require(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "ethtool"), []byte("#!/bin/sh\necho fake ethtool fails >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	p := prefix("e")
	t.Cleanup(func() { lab.Cleanup(p) })
	_, err := lab.New(t.Context(), lab.Config{Prefix: p, Hosts: 2})
	if err == nil || !strings.Contains(err.Error(), "fake ethtool fails") {
		t.Fatalf("New with a failing ethtool: %v", err)
	}
	t.Logf("New failed as expected: %v", err)
	if left := labtest.Namespaces(t, p); len(left) > 0 {
		t.Errorf("namespaces left after failed New: %v", left)
	}
}

func TestProc(t *testing.T) {
	testenv.Require(t)
	dir := t.TempDir()
	l := newLab(t, lab.Config{Prefix: prefix("d"), Hosts: 1, Offloads: true, LogDir: dir})
	h, ctx := l.Host(1), t.Context()

	echo, err := h.Start(ctx, "sh", "-c", "echo hello; echo oops >&2")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-echo.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("echo did not finish")
	}
	if err := echo.Wait(); err != nil || !strings.Contains(echo.Output(), "hello\n") || !strings.Contains(echo.Output(), "oops\n") {
		t.Errorf("echo: %q, %v", echo.Output(), err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, h.Netns+"-sh-*.log"))
	if len(logs) != 1 {
		t.Fatalf("log files: %v", logs)
	}
	if b, _ := os.ReadFile(logs[0]); !strings.Contains(string(b), "hello") {
		t.Errorf("log file: %q", b)
	}

	sleeper, err := h.Start(ctx, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Stop(syscall.SIGTERM, 5*time.Second); err != nil {
		t.Errorf("Stop(SIGTERM) of sleep: %v", err)
	}
	if err := sleeper.Stop(syscall.SIGTERM, time.Second); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	stubborn, err := h.Start(ctx, "sh", "-c", `trap "" TERM; echo ready; sleep 600`)
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.Poll(ctx, 5*time.Second, "trap set", func() error {
		if !strings.Contains(stubborn.Output(), "ready") {
			return errors.New("not ready")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := stubborn.Stop(syscall.SIGTERM, 200*time.Millisecond); !errors.Is(err, lab.ErrKilled) {
		t.Errorf("Stop of a process ignoring SIGTERM: %v, want ErrKilled", err)
	}

	failing, err := h.Run(ctx, "sh", "-c", "echo why; exit 3")
	if err == nil || !strings.Contains(err.Error(), "why") || !strings.Contains(err.Error(), h.Netns) {
		t.Errorf("Run of a failing command: %q, %v", failing, err)
	}
}

func TestRequireNamesPackage(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := lab.Require("ethtool", "ping", "ip", "bridge")
	if !errors.Is(err, lab.ErrMissingTool) {
		t.Fatalf("Require with empty PATH: %v", err)
	}
	for _, want := range []string{"ethtool (Debian package ethtool)", "ping (Debian package iputils-ping)", "apt-get install ethtool iputils-ping iproute2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
