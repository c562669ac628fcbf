package e2e

// Bad command lines: `weft up` exits non-zero with one line naming the flag
// to fix, and leaves nothing on the host; help is on stdout for every
// command. It runs inside a lab host, so the
// default-route underlay detection behind --advertise has a route to find.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
)

func TestBadFlags(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, driver, tag string) {
		l := newLab(t, "bf"+tag, 1)
		h := l.Host(1)
		dir := t.TempDir()
		good := []string{"up", "--name", "h1", "--insecure", "--tun-driver", driver, "--subnet", "10.244.1.0/24",
			"--run-dir", filepath.Join(dir, "run"), "--state-dir", filepath.Join(dir, "state")}
		for _, c := range []struct {
			name    string
			flag    string   // what the error line must contain
			args    []string // added to the good command line
			without string   // removed from it
		}{
			// The flag package names flags with one dash.
			{"bad CIDR", "-subnet", []string{"--subnet", "10.244.1.0/33"}, ""},
			{"CIDR without length", "-network", []string{"--network", "10.244.0.0"}, ""},
			{"bad endpoint", "-peer", []string{"--peer", "h2=10.244.2.0/24@nowhere"}, ""},
			{"subnet not a network address", "--subnet", []string{"--subnet", "10.244.1.1/24"}, ""},
			{"subnet outside network", "--subnet", []string{"--subnet", "10.245.1.0/24"}, ""},
			{"overlapping peer subnets", "--peer", []string{
				"--peer", "h2=10.244.2.0/24@192.168.77.2", "--peer", "h3=10.244.2.0/23@192.168.77.3"}, ""},
			{"peer overlapping own subnet", "--peer", []string{"--peer", "h2=10.244.1.128/25@192.168.77.2"}, ""},
			{"peer outside network", "--peer", []string{"--peer", "h2=10.245.2.0/24@192.168.77.2"}, ""},
			{"advertise not on this host", "--advertise", []string{"--advertise", "192.168.77.99"}, ""},
			{"iface an address", "--iface", []string{"--iface", "192.168.77.1"}, ""},
			{"iface a bad glob", "--iface", []string{"--iface", "eth["}, ""},
			{"iface matching nothing", "--iface", []string{"--iface", "eth9", "--iface", "10.9.0.0/16"}, ""},
			{"iface and listen disagree", "--listen", []string{"--iface", "eth0", "--listen", "127.0.0.1:6081"}, ""},
			{"static peer at our own address", "--peer", []string{"--peer", "h2=10.244.2.0/24@192.168.77.1"}, ""},
			{"unknown TUN driver", "--tun-driver", []string{"--tun-driver", "bogus"}, ""},
			{"unknown flag", "-bogus", []string{"--bogus"}, ""},
			{"unknown log format", "--log-format", []string{"--log-format", "xml"}, ""},
			{"metrics address without port", "--metrics-addr", []string{"--metrics-addr", "127.0.0.1"}, ""},
			{"metrics address not on this host", "--metrics-addr", []string{"--metrics-addr", "192.168.77.99:9586"}, ""},
			{"probe interval too short", "--probe-interval", []string{"--probe-interval", "1ms"}, ""},
			{"rekey interval too short", "--rekey-after", []string{"--rekey-after", "100ms"}, ""},
			{"rekey interval too long", "--rekey-after", []string{"--rekey-after", "48h"}, ""},
			{"missing --insecure", "--insecure", nil, "--insecure"},
		} {
			args := slices.DeleteFunc(slices.Concat(good, c.args), func(s string) bool { return s == c.without })
			checkRefused(t, c.name, runWeft(t, h, args...), c.flag)
		}
		if out, err := h.Run(t.Context(), "ip", "link", "show", "weft0"); err == nil {
			t.Errorf("a refused weft left weft0 behind:\n%s", out)
		}

		// The common part alone is a good command line: the node comes up.
		// So each case above failed for its own flag.
		p, err := h.Start(context.Background(), weftBin, good...)
		if err != nil {
			t.Fatal(err)
		}
		err = testenv.Poll(t.Context(), waitTimeout, "weft up with good flags to answer status", func() error {
			select {
			case <-p.Done():
				return fmt.Errorf("exited: %v\n%s", p.Wait(), p.Output())
			default:
			}
			ctx, cancel := context.WithTimeout(t.Context(), ioTimeout)
			defer cancel()
			_, err := api.NewClient(filepath.Join(dir, "run")).Status(ctx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(syscall.SIGTERM, cmdTimeout); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// TestHelp: help is uniform (issue 17 item 8). Asked for, by -h, --help or
// `weft help CMD`, it goes to stdout and exits 0, for every command and
// verb; a usage error goes to stderr and exits 2, a bad flag in one line.
func TestHelp(t *testing.T) {
	testenv.Require(t) // for the binary TestMain built
	verbs := map[string][]string{"key": {"list", "add", "use", "remove"}, "lease": {"list", "release"}}
	cmds := []string{"up", "status", "doctor", "trace", "env", "keygen", "key", "lease", "lab", "bench", "version"}
	// Every command the general help lists is in cmds.
	_, general, _ := weftCLI(t, "help")
	for line := range strings.Lines(general) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "weft" && !slices.Contains(cmds, f[1]) {
			t.Errorf("weft help lists %q, which this test does not cover", f[1])
		}
	}
	type call struct {
		args []string
		want string // in the help text
	}
	calls := []call{{[]string{"help"}, "Usage:"}, {[]string{"--help"}, "Usage:"},
		{[]string{"bench", "--help"}, "Needs root (namespaces, veth, TUN) and\niperf3"}, {[]string{"bench", "-h"}, "takes about 10 minutes"}}
	for _, name := range cmds {
		want := "usage: weft " + name
		calls = append(calls, call{[]string{name, "--help"}, want}, call{[]string{name, "-h"}, want}, call{[]string{"help", name}, want})
		for _, verb := range verbs[name] {
			calls = append(calls, call{[]string{name, verb, "--help"}, "weft " + name + " " + verb}, call{[]string{name, verb, "-h"}, "weft " + name + " " + verb})
		}
	}
	for _, c := range calls {
		code, out, errOut := weftCLI(t, c.args...)
		if code != 0 || errOut != "" || !strings.Contains(out, c.want) {
			t.Errorf("weft %s: exit %d, stderr %q; want exit 0 and help with %q on stdout:\n%s", strings.Join(c.args, " "), code, errOut, c.want, out)
		}
	}
	_, a, _ := weftCLI(t, "up", "--help")
	_, b, _ := weftCLI(t, "help", "up")
	if _, c, _ := weftCLI(t, "up", "-h"); a != b || a != c || !strings.Contains(a, "--gossip-port port") {
		t.Errorf("weft up's help differs between --help, -h and 'weft help up', or lacks the flags:\n%s", a)
	}

	// Usage errors: stderr, exit 2, nothing on stdout.
	bad := [][]string{{"key", "list", "--no-such-flag"}, {"lease", "release", "n1", "--no-such-flag"}}
	for _, name := range cmds {
		if verbs[name] == nil {
			bad = append(bad, []string{name, "--no-such-flag"})
		}
	}
	for _, args := range bad {
		code, out, errOut := weftCLI(t, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "--no-such-flag") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("weft %s: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr", strings.Join(args, " "), code, out, errOut)
		}
	}
	for _, args := range [][]string{nil, {"key"}, {"key", "--no-such-flag"}, {"lease", "frob"}, {"key", "use"}, {"help", "nosuch"}} {
		if code, out, errOut := weftCLI(t, args...); code != 2 || out != "" || errOut == "" {
			t.Errorf("weft %s: exit %d, stdout %q, stderr %q; want exit 2 and the usage on stderr", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// weftCLI runs the weft binary with args on this host (for commands that
// touch nothing) and returns its exit code, stdout and stderr.
func weftCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, weftBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee) && ctx.Err() == nil:
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}
