package e2e

// Bad command lines: `weft up` exits non-zero with one line naming the flag
// to fix, and leaves nothing on the host. It runs inside a lab host, so the
// default-route underlay detection behind --advertise has a route to find.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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
