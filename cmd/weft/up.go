package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/cli"
	"github.com/weftnet/weft/kube"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/tunnel"
)

// upOptions is what `weft up`'s flags say.
type upOptions struct {
	agent     agent.Config
	logLevel  slog.Level
	logFormat string
}

func parseUp(args []string, stdout, stderr io.Writer) (upOptions, error) {
	o := upOptions{agent: agent.DefaultConfig()}
	a := &o.agent
	cfg := &a.Node
	a.Version = version
	fs := cli.NewFlagSet("weft up", "usage: weft up [flags]\n\nRuns this node in the foreground until SIGTERM or SIGINT. Needs root or CAP_NET_ADMIN and /dev/net/tun.")
	fs.StringVar(&cfg.Name, "name", "", "this node's `name` among its peers, with --kube its Node's (default: the hostname)")
	fs.TextVar(&cfg.Listen, "listen", cfg.Listen, "UDP `address:port` for overlay traffic")
	fs.TextVar(&cfg.Advertise, "advertise", cfg.Advertise, "this node's underlay `IP`; overrides --iface (default: chosen by --iface, else the default-route interface's)")
	fs.Func("iface", "choose the underlay by interface `NAME`, glob (enp0s*), CIDR (192.168.56.0/24) or can-reach=IP (repeatable; the first match wins)", func(s string) error {
		r, err := node.ParseIfaceRule(s)
		cfg.Iface = append(cfg.Iface, r)
		return err
	})
	fs.Var(node.NetworksFlag(cfg), "network", "the whole overlay `CIDR` (with --kube: the cluster CIDR); give an IPv4 and an IPv6 one for dual-stack")
	fs.TextVar(&cfg.Subnet, "subnet", cfg.Subnet, "this node's `CIDR` inside --network (default: gossip leases a free one)")
	fs.IntVar(&cfg.SubnetLen, "subnet-len", cfg.SubnetLen, "prefix `length` of node subnets picked from --network")
	fs.IntVar(&cfg.SubnetLen6, "subnet-len6", cfg.SubnetLen6, "prefix `length` of node subnets in the IPv6 --network (each the same-numbered IPv4 subnet's twin)")
	fs.Func("peer", "a static peer `NAME=SUBNET[,SUBNET6]@IP[:PORT]` (repeatable; port default 6081)", func(s string) error {
		p, err := peer.Parse(s, encap.Port)
		cfg.Peers = append(cfg.Peers, p)
		return err
	})
	fs.Func("join", "gossip seeds `host[:port],...` (repeatable; any one live seed is enough; none for a cluster's first node)", func(s string) error {
		for _, seed := range strings.Split(s, ",") {
			if seed = strings.TrimSpace(seed); seed == "" {
				return fmt.Errorf("empty seed in %q", s)
			}
			a.Join = append(a.Join, seed)
		}
		return nil
	})
	fs.IntVar(&a.GossipPort, "gossip-port", a.GossipPort, "gossip TCP/UDP `port` on the advertise address (0: no gossip, static --peer only)")
	fs.DurationVar(&a.LeaseTTL, "lease-ttl", a.LeaseTTL, "how long a gone node's subnet stays reserved (`duration`)")
	fs.StringVar(&cfg.TunName, "tun", cfg.TunName, "TUN interface `name`")
	fs.StringVar(&cfg.TunDriver, "tun-driver", cfg.TunDriver, "TUN `driver`: "+strings.Join(tunnel.Drivers, " or "))
	fs.IntVar(&cfg.Queues, "queues", 0, "parallel pipelines (TUN queue, socket and loop pair each): `N`, 1 to 64 (default min(cores, 8); water: 1)")
	fs.StringVar(&a.StateDir, "state-dir", a.StateDir, "`directory` for persistent state (subnet leases)")
	fs.StringVar(&a.RunDir, "run-dir", a.RunDir, "`directory` for the control socket and subnet.env")
	keyFile := fs.String("key-file", "", "cluster key `file` from 'weft keygen' (mode 0600; one key per line, the first is sent with)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "run without authentication or encryption (instead of --key-file)")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", cfg.ProbeInterval, "the data-path prober's tick: how often a peer that is sent data but sends none back, or leaves a probe unanswered, is probed, and the pace of the idle sweep (`duration`; 100ms to 1m; at most 20 probes a second in all)")
	fs.DurationVar(&cfg.RekeyAfter, "rekey-after", cfg.RekeyAfter, "start a new sending session, with a new key, this often (`duration`; 1s to 24h; also after 2^28 packets)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	useKube := fs.Bool("kube", false, "take this node's subnet (its Node's podCIDR) and peers from Kubernetes' Nodes; no gossip")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig `file` for --kube, which it implies (default: the in-cluster config)")
	fs.BoolVar(&cfg.IPMasq, "ip-masq", false, "masquerade traffic from the overlay to outside --network (nftables table ip weft)")
	fs.StringVar(&a.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`host:port`/metrics (default: off)")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return o, err
	}
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return o, fmt.Errorf("--log-level %q: want debug, info, warn or error (or a level such as info+2)", *logLevel)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return o, fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	}
	if *useKube || *kubeconfig != "" {
		a.Kube, a.GossipPort = &kube.Config{Kubeconfig: *kubeconfig}, 0
	}
	if cfg.Name == "" {
		cfg.Name = node.DefaultConfig().Name
	}
	if *keyFile != "" {
		keys, err := encap.ReadKeyFile(*keyFile)
		if err != nil {
			return o, fmt.Errorf("--key-file %w", err)
		}
		cfg.Keys, cfg.KeyFile = keys, *keyFile
		if abs, err := filepath.Abs(*keyFile); err == nil {
			cfg.KeyFile = abs // weft doctor may run from another directory
		}
	}
	return o, a.Validate()
}

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseUp(args, stdout, stderr)
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
	o.agent.Log = slog.New(handler)
	return agent.Run(ctx, o.agent)
}
