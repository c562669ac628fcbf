package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/weftnet/weft/peer"
)

// Demo builds a lab, runs weft on every host, passes traffic between them,
// prints every node's status and tears it all down: `weft lab`, the quickest
// way to see weft work and the README's first command.

// DemoConfig is what `weft lab`'s flags say.
type DemoConfig struct {
	Hosts        int    // 2 to 200
	Driver       string // TUN driver; "" is weft's default
	Prefix       string // network namespace name prefix
	IperfSeconds int    // seconds of iperf3 between the first two hosts; 0 none
	Static       bool   // static subnets and --peer flags instead of gossip
	Offloads     bool   // keep the underlay veths' offloads on
	IPv6         bool   // dual-stack overlay over the underlay's IPv6 addresses
	Binary       string // the weft executable to run
}

// Demo runs the lab c describes, printing each step to stdout.
func Demo(ctx context.Context, c DemoConfig, stdout io.Writer) error {
	if c.Hosts < 2 || c.Hosts > 200 {
		return fmt.Errorf("--hosts %d: want 2 to 200", c.Hosts)
	}
	tools := []string{"ip", "ping"}
	if c.IperfSeconds > 0 {
		tools = append(tools, "iperf3")
	}
	if !c.Offloads {
		tools = append(tools, "ethtool")
	}
	if err := Require(tools...); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "weft-lab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }
	if err := Cleanup(c.Prefix); err != nil {
		return fmt.Errorf("remove a previous lab's leftovers: %w", err)
	}
	step("building %d hosts in network namespaces %s-h1..h%d on a bridge underlay", c.Hosts, c.Prefix, c.Hosts)
	lc := Config{Hosts: c.Hosts, Prefix: c.Prefix, Offloads: c.Offloads, LogDir: dir,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	wc := WeftConfig{Binary: c.Binary, Dir: dir, Driver: c.Driver, Gossip: !c.Static}
	if c.IPv6 {
		lc.Underlay6 = netip.MustParsePrefix("fd00:77::/64")
		wc.Network6, wc.IPv6Underlay = netip.MustParsePrefix("fd00:10:244::/56"), true
	}
	l, err := New(ctx, lc)
	if err != nil {
		return err
	}
	defer func() {
		step("tearing down")
		l.Close()
	}()

	if c.Static {
		step("starting weft on every host, with static peers")
	} else {
		step("starting weft on every host: h1 starts a cluster, the others join it by gossip and lease subnets")
	}
	nodes, err := l.StartWeft(ctx, wc)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		fmt.Fprintf(stdout, "    %s  underlay %s  subnet %s  overlay address %s\n", n.Name, n.Host.Addr, n.Subnet, n.Addr)
		if c.IPv6 {
			fmt.Fprintf(stdout, "    %s  underlay %s  subnet6 %s  overlay address %s\n", n.Name, n.Host.Addr6, n.Subnet6, n.Addr6)
		}
	}
	if !c.Static {
		step("waiting for every node to route to every other")
		for _, n := range nodes {
			err := WaitFor(ctx, 30*time.Second, n.Name+" seeing every peer", func() error {
				s, err := n.Status(ctx)
				if err != nil {
					return err
				}
				alive := 0
				for _, p := range s.Peers {
					if p.State == peer.Alive {
						alive++
					}
				}
				if alive != len(nodes)-1 {
					return fmt.Errorf("%d of %d peers alive", alive, len(nodes)-1)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}

	step("pinging every host's overlay address from every other host")
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			for _, to := range []netip.Addr{b.Addr, b.Addr6} {
				if !to.IsValid() {
					continue
				}
				if err := a.Host.Ping(ctx, to, 3); err != nil {
					return fmt.Errorf("%s → %s (%s): %w", a.Name, b.Name, to, err)
				}
				fmt.Fprintf(stdout, "    %s → %s (%s): ok\n", a.Name, b.Name, to)
			}
		}
	}

	if c.IperfSeconds > 0 {
		a, b := nodes[0], nodes[1]
		step("iperf3 TCP %s → %s over the overlay for %ds", a.Name, b.Name, c.IperfSeconds)
		srv, err := b.Host.Start(ctx, "iperf3", "-s", "-1", "-B", b.Addr.String())
		if err != nil {
			return err
		}
		defer srv.Stop(os.Interrupt, 5*time.Second)
		var out string
		err = WaitFor(ctx, 10*time.Second, "iperf3 client run", func() error {
			out, err = a.Host.Run(ctx, "iperf3", "-c", b.Addr.String(), "-t", fmt.Sprint(c.IperfSeconds), "-f", "m")
			return err
		})
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "sender") || strings.Contains(line, "receiver") {
				fmt.Fprintf(stdout, "    %s\n", strings.TrimSpace(line))
			}
		}
	}

	for _, n := range nodes {
		step("weft status on %s", n.Name)
		s, err := n.Status(ctx)
		if err != nil {
			return err
		}
		s.WriteText(stdout)
	}
	first := nodes[0]
	step("weft doctor on %s", first.Name)
	out, err := first.Host.Run(ctx, c.Binary, "doctor", "--run-dir", first.RunDir)
	for line := range strings.Lines(out) {
		fmt.Fprintf(stdout, "    %s", line)
	}
	if err != nil {
		return fmt.Errorf("weft doctor on %s found problems: %w", first.Name, err)
	}

	step("stopping weft (SIGTERM) and checking it cleaned up")
	var errs []error
	for _, n := range nodes {
		if err := n.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
		}
		if left, _ := n.RunFiles(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("%s left %v in its run dir", n.Name, left))
		}
		if _, err := n.Host.Run(ctx, "ip", "link", "show", "weft0"); err == nil {
			errs = append(errs, fmt.Errorf("%s: weft0 still exists", n.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	step("lab passed")
	return nil
}
