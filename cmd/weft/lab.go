package main

import (
	"context"
	"io"

	"github.com/weftnet/weft/internal/cli"
	"github.com/weftnet/weft/lab"
)

// cmdLab builds hosts in network namespaces, runs this weft binary on each,
// passes traffic between them and prints what it sees (lab.Demo).
func cmdLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lab.DemoConfig{}
	fs := cli.NewFlagSet("weft lab", "usage: weft lab [flags]\n\nBuilds hosts in network namespaces, runs this weft on each, passes traffic between them and prints what\nit sees. Needs root, ip, ping, ethtool and iperf3 (scripts/setup.sh); takes under a minute.")
	fs.IntVar(&c.Hosts, "hosts", 3, "number of `hosts`")
	fs.StringVar(&c.Driver, "tun-driver", "", "TUN `driver` for every node (default: weft's default)")
	fs.StringVar(&c.Prefix, "prefix", "weft-lab", "network namespace name `prefix`")
	fs.IntVar(&c.IperfSeconds, "iperf-seconds", 3, "`seconds` of iperf3 TCP traffic between the first two hosts (0: none)")
	fs.BoolVar(&c.Static, "static", false, "give every node its subnet and static --peer flags instead of gossip and leases")
	fs.BoolVar(&c.IPv6, "ipv6", false, "dual-stack overlay (10.244.0.0/16 and fd00:10:244::/56) over the hosts' IPv6 underlay (fd00:77::/64)")
	fs.BoolVar(&c.Offloads, "offloads", false, "keep the veth offloads on the underlay (default: off, 1500-byte frames as on a real NIC)")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	if err := orSelf(&c.Binary); err != nil {
		return err
	}
	return lab.Demo(ctx, c, stdout)
}
