package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/tunnel"
)

// upOptions is what `weft up`'s flags say.
type upOptions struct {
	node        node.Config
	join        []string
	gossipPort  int
	leaseTTL    time.Duration
	keyFile     string
	logLevel    slog.Level
	logFormat   string
	metricsAddr string
}

func parseUp(args []string, stderr io.Writer) (upOptions, error) {
	o := upOptions{node: node.DefaultConfig(), gossipPort: membership.DefaultGossipPort, leaseTTL: membership.DefaultConfig().LeaseTTL}
	cfg := &o.node
	fs := newFlagSet("up", stderr)
	fs.StringVar(&cfg.Name, "name", "", "this node's `name` among its peers (default: the hostname)")
	fs.Func("listen", "UDP `address:port` for overlay traffic (default 0.0.0.0:6081)", func(s string) error {
		ap, err := netip.ParseAddrPort(s)
		cfg.Listen = ap
		return err
	})
	fs.Func("advertise", "this node's underlay `IP` (default: the address of the default-route interface)", func(s string) error {
		a, err := netip.ParseAddr(s)
		cfg.Advertise = a
		return err
	})
	fs.Func("network", "the whole overlay `CIDR` (default 10.244.0.0/16)", prefixFlag(&cfg.Network))
	fs.Func("subnet", "this node's `CIDR` inside --network (default: gossip leases a free one)", prefixFlag(&cfg.Subnet))
	fs.IntVar(&cfg.SubnetLen, "subnet-len", cfg.SubnetLen, "prefix `length` of node subnets picked from --network")
	fs.Func("peer", "a static peer `NAME=SUBNET@IP[:PORT]` (repeatable; port default 6081)", func(s string) error {
		p, err := peer.Parse(s, encap.Port)
		cfg.Peers = append(cfg.Peers, p)
		return err
	})
	fs.Func("join", "gossip seeds `host[:port],...` (repeatable; any one live seed is enough; none for a cluster's first node)", func(s string) error {
		for _, seed := range strings.Split(s, ",") {
			if seed = strings.TrimSpace(seed); seed == "" {
				return fmt.Errorf("empty seed in %q", s)
			}
			o.join = append(o.join, seed)
		}
		return nil
	})
	fs.IntVar(&o.gossipPort, "gossip-port", o.gossipPort, "gossip TCP/UDP `port` on the advertise address (0: no gossip, static --peer only)")
	fs.DurationVar(&o.leaseTTL, "lease-ttl", o.leaseTTL, "how long a gone node's subnet stays reserved (`duration`)")
	fs.StringVar(&cfg.TunName, "tun", cfg.TunName, "TUN interface `name`")
	fs.StringVar(&cfg.TunDriver, "tun-driver", cfg.TunDriver, "TUN `driver`: "+strings.Join(tunnel.Drivers, " or "))
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "`directory` for persistent state (subnet leases)")
	fs.StringVar(&cfg.RunDir, "run-dir", cfg.RunDir, "`directory` for the control socket and subnet.env")
	fs.StringVar(&o.keyFile, "key-file", "", "cluster key `file` from 'weft keygen' (mode 0600; one key per line, the first is sent with)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "run without authentication or encryption (instead of --key-file)")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", cfg.ProbeInterval, "how often to probe each peer's data path (`duration`; 100ms to 1m)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`host:port`/metrics (default: off)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return o, err
	}
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return o, fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if o.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.metricsAddr); err != nil {
			return o, fmt.Errorf("--metrics-addr %q: want host:port, e.g. 127.0.0.1:9586: %v", o.metricsAddr, err)
		}
	}
	if cfg.Name == "" {
		cfg.Name = node.DefaultConfig().Name
	}
	switch {
	case o.gossipPort < 0 || o.gossipPort > 65535:
		return o, fmt.Errorf("--gossip-port %d: want 0 to 65535", o.gossipPort)
	case o.gossipPort == 0 && !cfg.Subnet.IsValid():
		return o, errors.New("--subnet is required with --gossip-port 0 (without gossip nobody leases a subnet)")
	case o.gossipPort == 0 && len(o.join) > 0:
		return o, errors.New("--join needs gossip: drop --gossip-port 0")
	case o.leaseTTL <= 0:
		return o, fmt.Errorf("--lease-ttl %v: must be positive", o.leaseTTL)
	}
	if o.keyFile != "" {
		keys, err := readKeyFile(o.keyFile)
		if err != nil {
			return o, err
		}
		cfg.Keys, cfg.KeyFile = keys, o.keyFile
		if abs, err := filepath.Abs(o.keyFile); err == nil {
			cfg.KeyFile = abs // weft doctor may run from another directory
		}
	}
	return o, cfg.Validate()
}

func cmdUp(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parseUp(args, stderr)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// Most of the heap is long-lived packet buffers (tens of MiB of
		// batches); at the default GOGC=100 the little per-datagram garbage
		// (x/net's source addresses) could grow as large again before a
		// collection. A lower target keeps RSS near the buffers' size.
		debug.SetGCPercent(20)
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: o.logLevel})
	if o.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.logLevel})
	}
	log := slog.New(handler)
	if o.node.Insecure {
		log.Warn("--insecure: OVERLAY TRAFFIC IS NEITHER AUTHENTICATED NOR ENCRYPTED; anyone who can reach the UDP port can inject packets into every container, and anyone on the underlay can read them")
	}
	var sources []peer.Source
	if len(o.node.Peers) > 0 {
		sources = append(sources, peer.StaticSet(o.node.Peers))
	}
	var m *membership.Membership
	if o.gossipPort != 0 {
		if m, err = startMembership(ctx, &o, log); err != nil {
			return err
		}
		sources = append(sources, m)
	}
	n, err := node.New(o.node, log)
	if err != nil {
		if m != nil {
			m.Close()
		}
		return err
	}
	handleLeases(n, m)
	if m != nil {
		if !o.node.Insecure {
			n.SetKeyHook(gossipKeys{m})
		}
	}
	if o.metricsAddr != "" {
		if err := serveMetrics(ctx, o.metricsAddr, n, m, log); err != nil {
			n.Close()
			if m != nil {
				m.Close()
			}
			return err
		}
	}
	err = n.Run(ctx, sources...)
	log.Info("node stopped")
	return err
}

// startMembership joins the cluster and settles this node's subnet, which
// the node needs before it can create its TUN.
func startMembership(ctx context.Context, o *upOptions, log *slog.Logger) (*membership.Membership, error) {
	under, err := node.FindUnderlay(o.node.Advertise, o.node.Listen.Addr())
	if err != nil {
		return nil, err
	}
	mc := membership.DefaultConfig()
	mc.Name, mc.Advertise, mc.GossipPort, mc.Join = o.node.Name, under.Addr, o.gossipPort, o.join
	mc.Network, mc.SubnetLen, mc.Subnet = o.node.Network, o.node.SubnetLen, o.node.Subnet
	mc.DataEndpoint = netip.AddrPortFrom(under.Addr, o.node.Listen.Port())
	mc.StateDir, mc.LeaseTTL = o.node.StateDir, o.leaseTTL
	mc.Log = log
	for _, k := range o.node.Keys {
		gk, err := encap.GossipKey(k)
		if err != nil {
			return nil, fmt.Errorf("--key-file: %w", err)
		}
		mc.Keys = append(mc.Keys, gk)
	}
	m, err := membership.New(mc)
	if err != nil {
		return nil, err
	}
	subnet, err := m.Start(ctx)
	if err != nil {
		m.Close()
		return nil, err
	}
	o.node.Subnet = subnet
	return m, nil
}

func prefixFlag(dst *netip.Prefix) func(string) error {
	return func(s string) error {
		p, err := netip.ParsePrefix(s)
		*dst = p
		return err
	}
}
