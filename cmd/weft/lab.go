package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/peer"
)

// cmdLab builds hosts in network namespaces, runs this weft binary on each,
// passes traffic between them, prints every node's status and tears it all
// down: the quickest way to see weft work, and the README's first command.
func cmdLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("lab", stderr)
	hosts := fs.Int("hosts", 3, "number of `hosts`")
	driver := fs.String("tun-driver", "", "TUN `driver` for every node (default: weft's default)")
	prefix := fs.String("prefix", "weft-lab", "network namespace name `prefix`")
	seconds := fs.Int("iperf-seconds", 3, "`seconds` of iperf3 TCP traffic between the first two hosts (0: none)")
	static := fs.Bool("static", false, "give every node its subnet and static --peer flags instead of gossip and leases")
	offloads := fs.Bool("offloads", false, "keep the veth offloads on the underlay (default: off, 1500-byte frames as on a real NIC)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *hosts < 2 || *hosts > 200 {
		return fmt.Errorf("--hosts %d: want 2 to 200", *hosts)
	}
	tools := []string{"ip", "ping"}
	if *seconds > 0 {
		tools = append(tools, "iperf3")
	}
	if !*offloads {
		tools = append(tools, "ethtool")
	}
	if err := lab.Require(tools...); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the weft binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "weft-lab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step := func(format string, a ...any) { fmt.Fprintf(stdout, "==> "+format+"\n", a...) }
	if err := lab.Cleanup(*prefix); err != nil {
		return fmt.Errorf("remove a previous lab's leftovers: %w", err)
	}
	step("building %d hosts in network namespaces %s-h1..h%d on a bridge underlay", *hosts, *prefix, *hosts)
	l, err := lab.New(ctx, lab.Config{Hosts: *hosts, Prefix: *prefix, Offloads: *offloads, LogDir: dir,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer func() {
		step("tearing down")
		l.Close()
	}()

	if *static {
		step("starting weft on every host, with static peers")
	} else {
		step("starting weft on every host: h1 starts a cluster, the others join it by gossip and lease subnets")
	}
	nodes, err := l.StartWeft(ctx, lab.WeftConfig{Binary: self, Dir: dir, Driver: *driver, Gossip: !*static})
	if err != nil {
		return err
	}
	for _, n := range nodes {
		fmt.Fprintf(stdout, "    %s  underlay %s  subnet %s  overlay address %s\n", n.Name, n.Host.Addr, n.Subnet, n.Addr)
	}
	if !*static {
		step("waiting for every node to route to every other")
		for _, n := range nodes {
			err := lab.WaitFor(ctx, 30*time.Second, n.Name+" seeing every peer", func() error {
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
			if err := a.Host.Ping(ctx, b.Addr, 3); err != nil {
				return fmt.Errorf("%s → %s: %w", a.Name, b.Name, err)
			}
			fmt.Fprintf(stdout, "    %s → %s (%s): ok\n", a.Name, b.Name, b.Addr)
		}
	}

	if *seconds > 0 {
		a, b := nodes[0], nodes[1]
		step("iperf3 TCP %s → %s over the overlay for %ds", a.Name, b.Name, *seconds)
		srv, err := b.Host.Start(ctx, "iperf3", "-s", "-1", "-B", b.Addr.String())
		if err != nil {
			return err
		}
		defer srv.Stop(os.Interrupt, 5*time.Second)
		var out string
		err = lab.WaitFor(ctx, 10*time.Second, "iperf3 client run", func() error {
			out, err = a.Host.Run(ctx, "iperf3", "-c", b.Addr.String(), "-t", fmt.Sprint(*seconds), "-f", "m")
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
		printStatus(stdout, s)
	}
	first := nodes[0]
	step("weft doctor on %s", first.Name)
	out, err := first.Host.Run(ctx, self, "doctor", "--run-dir", first.RunDir)
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
