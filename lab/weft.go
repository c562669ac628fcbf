package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/subnetenv"
)

// WeftConfig describes weft nodes to run on a lab's hosts.
type WeftConfig struct {
	// Binary is the weft executable. Required.
	Binary string
	// Dir holds each node's run and state directories (hosts share one
	// filesystem, so each needs its own). Required.
	Dir string
	// Network is the overlay; default 10.244.0.0/16. Host i gets the /24
	// with third byte i.
	Network netip.Prefix
	// Network6 makes the overlay dual-stack: a second --network. Statically
	// peered hosts get the IPv6 subnets derived from their IPv4 ones (the
	// same rule as gossip's, subnetenv.Subnet6, with /64 subnets).
	Network6 netip.Prefix
	// IPv6Underlay makes the nodes talk over the lab's IPv6 underlay only
	// (Config.Underlay6): --advertise the host's Addr6, --listen [::],
	// --join and --peer IPv6 endpoints.
	IPv6Underlay bool
	// Driver is the --tun-driver; empty means weft's default.
	Driver string
	// Gossip makes the nodes find each other by gossip: h1 starts a cluster
	// and the others join it; subnets are leased, not given. Without it
	// every node gets the /24 with third byte i and static --peer flags for
	// all others, and gossip is off (--gossip-port 0).
	Gossip bool
	// Kubeconfig runs the nodes in Kubernetes mode (--kube --kubeconfig
	// Kubeconfig): each takes its subnet from the Node named for its host
	// and finds its peers there, and neither gossip nor --peer is used.
	Kubeconfig string
	// Insecure runs the nodes with --insecure; by default the lab makes a
	// cluster key (weft keygen) and starts every node with --key-file.
	Insecure bool
	// Args are added to every node's `weft up` command line.
	Args []string
}

// Weft is one weft node running on a lab host.
type Weft struct {
	Host   *Host
	Name   string
	Subnet netip.Prefix // as the running node reports it
	Addr   netip.Addr   // overlay address: the subnet's network address
	// Subnet6 and Addr6 are the IPv6 ones of a dual-stack node; zero without.
	Subnet6 netip.Prefix
	Addr6   netip.Addr
	RunDir  string
	Args    []string // the full `weft up` arguments
	Proc    *Proc
	binary  string
}

// StartWeft runs `weft up` on every host of the lab (PrepareWeft), one after
// the other, each waiting until it answers `weft status`.
func (l *Lab) StartWeft(ctx context.Context, cfg WeftConfig) ([]*Weft, error) {
	nodes, err := l.PrepareWeft(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if err := n.Start(ctx); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// PrepareWeft returns a node for every host of the lab with its `weft up`
// arguments, started by nothing yet: with Gossip h1 starts a cluster and the
// others join it, without it each is statically peered with all others. It
// makes the cluster key unless Insecure.
func (l *Lab) PrepareWeft(ctx context.Context, cfg WeftConfig) ([]*Weft, error) {
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("lab: WeftConfig needs Binary and Dir")
	}
	if !cfg.Network.IsValid() {
		cfg.Network = netip.MustParsePrefix("10.244.0.0/16")
	}
	security := []string{"--insecure"}
	if !cfg.Insecure {
		keyFile := filepath.Join(cfg.Dir, "cluster.key")
		if _, err := os.Stat(keyFile); err != nil {
			if out, err := exec.CommandContext(ctx, cfg.Binary, "keygen", "--out", keyFile).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("lab: weft keygen: %w\n%s", err, out)
			}
		}
		security = []string{"--key-file", keyFile}
	}
	if cfg.IPv6Underlay && !l.Underlay6.IsValid() {
		return nil, errors.New("lab: WeftConfig.IPv6Underlay needs a lab with Config.Underlay6")
	}
	base := cfg.Network.Addr().As4()
	nodes := make([]*Weft, len(l.Hosts))
	for i, h := range l.Hosts {
		sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1], byte(i + 1), 0}), 24)
		nodes[i] = &Weft{Host: h, Name: h.Name, Subnet: sub, Addr: sub.Addr(),
			RunDir: filepath.Join(cfg.Dir, h.Name, "run"), binary: cfg.Binary}
		if cfg.Network6.IsValid() {
			s6, err := subnetenv.Subnet6(cfg.Network, sub, cfg.Network6, 64)
			if err != nil {
				return nil, fmt.Errorf("lab: %w", err)
			}
			nodes[i].Subnet6, nodes[i].Addr6 = s6, subnetenv.NodeAddress(s6)
		}
	}
	for i, n := range nodes {
		n.Args = append([]string{"up", "--name", n.Name}, security...)
		n.Args = append(n.Args, "--network", cfg.Network.String(), "--run-dir", n.RunDir,
			"--state-dir", filepath.Join(cfg.Dir, n.Name, "state"))
		if cfg.Network6.IsValid() {
			n.Args = append(n.Args, "--network", cfg.Network6.String())
		}
		if cfg.IPv6Underlay {
			n.Args = append(n.Args, "--advertise", n.Host.Addr6.String(), "--listen", "[::]:6081")
		}
		if cfg.Driver != "" {
			n.Args = append(n.Args, "--tun-driver", cfg.Driver)
		}
		switch {
		case cfg.Kubeconfig != "":
			n.Args = append(n.Args, "--kube", "--kubeconfig", cfg.Kubeconfig)
		case cfg.Gossip && i > 0:
			n.Args = append(n.Args, "--join", seedOf(nodes[0].Host, cfg.IPv6Underlay))
		case !cfg.Gossip:
			n.Args = append(n.Args, "--gossip-port", "0", "--subnet", n.Subnet.String())
			for _, p := range nodes {
				if p != n {
					n.Args = append(n.Args, "--peer", staticPeer(p, cfg.IPv6Underlay))
				}
			}
		}
		n.Args = append(n.Args, cfg.Args...)
	}
	return nodes, nil
}

// seedOf is h's gossip address for --join: IPv6 ones as [addr]:port.
func seedOf(h *Host, ipv6 bool) string {
	if ipv6 {
		return netip.AddrPortFrom(h.Addr6, 7946).String()
	}
	return h.Addr.String()
}

// staticPeer is p as a --peer flag: NAME=SUBNET[,SUBNET6]@IP, the IP in
// brackets over an IPv6 underlay.
func staticPeer(p *Weft, ipv6 bool) string {
	subnets, ep := p.Subnet.String(), p.Host.Addr.String()
	if p.Subnet6.IsValid() {
		subnets += "," + p.Subnet6.String()
	}
	if ipv6 {
		ep = "[" + p.Host.Addr6.String() + "]"
	}
	return fmt.Sprintf("%s=%s@%s", p.Name, subnets, ep)
}

// Launch runs the node with its Args and returns at once.
func (w *Weft) Launch() error {
	p, err := w.Host.Start(context.Background(), w.binary, w.Args...)
	if err != nil {
		return err
	}
	w.Proc = p
	return nil
}

// Start runs the node with its Args and waits until it answers status as up
// (a gossip node answers "joining" before it holds its subnet).
func (w *Weft) Start(ctx context.Context) error {
	if err := w.Launch(); err != nil {
		return err
	}
	p := w.Proc
	// Stop waiting as soon as the node exits: it will not come up.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return WaitFor(ctx, 30*time.Second, w.Name+" answering status", func() error {
		select {
		case <-p.Done():
			return fmt.Errorf("weft exited: %v\n%s", p.Wait(), p.Output())
		default:
		}
		s, err := w.Status(ctx)
		switch {
		case err == nil && !s.Up(): // still joining its cluster: no subnet yet
			err = fmt.Errorf("%s is %s: %+v", w.Name, s.State, s.Join)
		case err == nil:
			w.Subnet, w.Addr = s.Subnet, s.Address // leased, with gossip
			w.Subnet6, w.Addr6 = s.Subnet6, s.Address6
		}
		return err
	})
}

// Status asks the node for its status.
func (w *Weft) Status(ctx context.Context) (*api.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return api.NewClient(w.RunDir).Status(ctx)
}

// Stop sends SIGTERM and waits for a clean exit; a node that needs SIGKILL
// or exits non-zero is an error.
func (w *Weft) Stop() error {
	if w.Proc == nil {
		return nil
	}
	return w.Proc.Stop(syscall.SIGTERM, 15*time.Second)
}

// RunFiles lists what the node left in its run dir.
func (w *Weft) RunFiles() ([]string, error) {
	ents, err := os.ReadDir(w.RunDir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}
