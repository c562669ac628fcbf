package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/tunnel"
)

func cmdUp(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := node.DefaultConfig()
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
	fs.Func("subnet", "this node's `CIDR` inside --network, e.g. 10.244.1.0/24", prefixFlag(&cfg.Subnet))
	fs.IntVar(&cfg.SubnetLen, "subnet-len", cfg.SubnetLen, "prefix `length` of node subnets picked from --network")
	fs.Func("peer", "a static peer `NAME=SUBNET@IP[:PORT]` (repeatable; port default 6081)", func(s string) error {
		p, err := parsePeer(s)
		cfg.Peers = append(cfg.Peers, p)
		return err
	})
	fs.StringVar(&cfg.TunName, "tun", cfg.TunName, "TUN interface `name`")
	fs.StringVar(&cfg.TunDriver, "tun-driver", cfg.TunDriver, "TUN `driver`: "+strings.Join(tunnel.Drivers, " or "))
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "`directory` for persistent state")
	fs.StringVar(&cfg.RunDir, "run-dir", cfg.RunDir, "`directory` for the control socket and subnet.env")
	keyFile := fs.String("key-file", "", "cluster key `file` from 'weft keygen' (mode 0600; one key per line, the first is sent with)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "run without authentication or encryption (instead of --key-file)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	if cfg.Name == "" {
		cfg.Name = node.DefaultConfig().Name
	}
	if *keyFile != "" {
		keys, err := readKeyFile(*keyFile)
		if err != nil {
			return err
		}
		cfg.Keys = keys
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if cfg.Insecure {
		log.Warn("--insecure: OVERLAY TRAFFIC IS NEITHER AUTHENTICATED NOR ENCRYPTED; anyone who can reach the UDP port can inject packets into every container, and anyone on the underlay can read them")
	}
	n, err := node.New(cfg, log)
	if err != nil {
		return err
	}
	var sources []node.PeerSource
	if len(cfg.Peers) > 0 {
		sources = append(sources, node.StaticPeers(cfg.Peers))
	}
	err = n.Run(ctx, sources...)
	log.Info("node stopped")
	return err
}

func prefixFlag(dst *netip.Prefix) func(string) error {
	return func(s string) error {
		p, err := netip.ParsePrefix(s)
		*dst = p
		return err
	}
}

// parsePeer parses NAME=SUBNET@IP[:PORT].
func parsePeer(s string) (node.PeerInfo, error) {
	name, rest, ok := strings.Cut(s, "=")
	subnet, ep, ok2 := strings.Cut(rest, "@")
	if !ok || !ok2 || name == "" {
		return node.PeerInfo{}, fmt.Errorf("want NAME=SUBNET@IP[:PORT], got %q", s)
	}
	pfx, err := netip.ParsePrefix(subnet)
	if err != nil {
		return node.PeerInfo{}, fmt.Errorf("peer %q: %w", name, err)
	}
	if pfx != pfx.Masked() {
		return node.PeerInfo{}, fmt.Errorf("peer %q: %s is not a network address (did you mean %s?)", name, pfx, pfx.Masked())
	}
	host, port := ep, strconv.Itoa(encap.Port)
	if h, p, err := net.SplitHostPort(ep); err == nil {
		host, port = h, p
	}
	addr, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return node.PeerInfo{}, fmt.Errorf("peer %q: endpoint: %w", name, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil || pn == 0 {
		return node.PeerInfo{}, fmt.Errorf("peer %q: bad port %q", name, port)
	}
	return node.PeerInfo{Name: name, Subnet: pfx, Endpoint: netip.AddrPortFrom(addr.Unmap(), uint16(pn)), State: "static"}, nil
}
