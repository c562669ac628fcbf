package node

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/subnetenv"
	"github.com/weftnet/weft/tunnel"
)

// Config is one node's configuration. Its fields mirror `weft up`'s flags,
// and validation errors name the flag, so an operator knows what to change.
type Config struct {
	Name      string         // --name: this node's name among its peers; default the hostname
	Listen    netip.AddrPort // --listen: UDP address for overlay traffic; default 0.0.0.0:6081
	Advertise netip.Addr     // --advertise: this node's underlay IP; overrides Iface; zero = chosen by Iface, else the default-route interface's
	Iface     []IfaceRule    // --iface: rules choosing the underlay, the first match wins (iface.go)
	Network   netip.Prefix   // --network: the whole overlay; default 10.244.0.0/16
	Subnet    netip.Prefix   // --subnet: this node's share of Network; with gossip, a request (New needs it set)
	SubnetLen int            // --subnet-len: prefix length of subnets picked for nodes; default 24
	// Dual-stack (node/dualstack.go): the IPv6 network (a second --network),
	// this node's IPv6 subnet in it (derived from Subnet: DeriveSubnet6;
	// with --kube the Node's IPv6 podCIDR) and the IPv6 subnets' prefix
	// length (--subnet-len6, default 64). Network6 zero: IPv4 only.
	Network6   netip.Prefix
	Subnet6    netip.Prefix
	SubnetLen6 int
	Peers      []peer.Info // --peer: static peers
	TunName    string      // --tun: default weft0
	TunDriver  string      // --tun-driver: tunnel.DriverWireguard (default) or tunnel.DriverWater
	Queues     int         // --queues: parallel pipelines (queue.go), 1 to encap.MaxQueues; 0 = DefaultQueues(TunDriver)
	Insecure   bool        // --insecure: run without authentication or encryption
	Keys       [][]byte    // --key-file: cluster secrets, the first is used to send; none requires Insecure
	KeyFile    string      // --key-file's path, for status (weft doctor checks it)
	IPMasq     bool        // --ip-masq: the agent masquerades overlay → outside (package masq); shown in status
	VNI        uint32      // GENEVE network id; default 1
	// ProbeInterval is the prober's tick (--probe-interval); default 1s.
	// Each tick it probes the peers it sent data to and heard nothing from,
	// those whose last probe is unanswered and new ones, then sweeps the
	// peers checked longest ago, within ProbeBudget (node/probe.go).
	ProbeInterval time.Duration
	// RekeyAfter is how often this node's sending session, and with it
	// the key it seals with, rotates (--rekey-after); default 2m, 1s to
	// 24h. Seal also rotates after RekeyAfterPackets packets (0: the
	// codec's default, 2^28; tests set it low). encap/session.go.
	RekeyAfter        time.Duration
	RekeyAfterPackets uint64
	// ProbeBudget is the most path probes the node sends a second, however
	// many peers it has; at least 1, default 20. Up to ProbeBudget ×
	// ProbeInterval peers are each probed every interval while idle.
	ProbeBudget int
}

// DefaultConfig returns the defaults of `weft up`.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		Name:       host,
		Listen:     netip.AddrPortFrom(netip.IPv4Unspecified(), encap.Port),
		Network:    netip.MustParsePrefix("10.244.0.0/16"),
		SubnetLen:  24,
		SubnetLen6: 64,
		TunName:    "weft0",
		TunDriver:  tunnel.DriverWireguard,
		VNI:        1,

		ProbeInterval: time.Second,
		ProbeBudget:   20,
		RekeyAfter:    DefaultRekeyAfter,
	}
}

// Validate checks the configuration without touching the system.
func (c *Config) Validate() error {
	switch {
	case len(c.Keys) == 0 && !c.Insecure:
		return errors.New("--key-file is required (make a cluster key with 'weft keygen --out FILE' and copy it to every node), or pass --insecure to run without authentication or encryption")
	case len(c.Keys) > 0 && c.Insecure:
		return errors.New("--insecure and --key-file exclude each other")
	}
	if c.Name == "" {
		return errors.New("--name: must not be empty")
	}
	if c.ProbeInterval < 100*time.Millisecond || c.ProbeInterval > time.Minute {
		return fmt.Errorf("--probe-interval %v: want 100ms to 1m", c.ProbeInterval)
	}
	if c.RekeyAfter < time.Second || c.RekeyAfter > 24*time.Hour {
		return fmt.Errorf("--rekey-after %v: want 1s to 24h", c.RekeyAfter)
	}
	if c.ProbeBudget < 1 {
		return fmt.Errorf("probe budget %d: want at least 1 probe a second", c.ProbeBudget)
	}
	if !c.Listen.IsValid() || c.Listen.Port() == 0 {
		return fmt.Errorf("--listen %s: need an address and a non-zero port", c.Listen)
	}
	if !c.Network.IsValid() || c.Network != c.Network.Masked() {
		return fmt.Errorf("--network %s: not a network address (did you mean %s?)", c.Network, c.Network.Masked())
	}
	if c.SubnetLen <= c.Network.Bits() || c.SubnetLen > c.Network.Addr().BitLen() {
		return fmt.Errorf("--subnet-len %d: must be longer than --network's /%d and at most /%d", c.SubnetLen, c.Network.Bits(), c.Network.Addr().BitLen())
	}
	if c.Subnet.IsValid() {
		if c.Subnet != c.Subnet.Masked() {
			return fmt.Errorf("--subnet %s: not a network address (did you mean %s?)", c.Subnet, c.Subnet.Masked())
		}
		if !c.Network.Contains(c.Subnet.Addr()) || c.Subnet.Bits() <= c.Network.Bits() {
			return fmt.Errorf("--subnet %s is not inside --network %s", c.Subnet, c.Network)
		}
	}
	if err := c.validate6(); err != nil {
		return err
	}
	if len(c.TunName) == 0 || len(c.TunName) > 15 {
		return fmt.Errorf("--tun %q: interface names are 1 to 15 bytes", c.TunName)
	}
	known := false
	for _, d := range tunnel.Drivers {
		known = known || d == c.TunDriver
	}
	if !known {
		return fmt.Errorf("--tun-driver %q: must be one of %v", c.TunDriver, tunnel.Drivers)
	}
	if c.Queues < 0 || c.Queues > encap.MaxQueues {
		return fmt.Errorf("--queues %d: want 1 to %d (0 for the default, min(cores, %d))", c.Queues, encap.MaxQueues, maxDefaultQueues)
	}
	if c.Queues > 1 && c.TunDriver == tunnel.DriverWater {
		return fmt.Errorf("--queues %d: the water TUN driver has one queue; use --tun-driver wireguard, or --queues 1", c.Queues)
	}
	if _, errs := buildTableIn(c.Peers, c.overlay(), &encap.Plain{}, nil); len(errs) > 0 {
		return fmt.Errorf("--peer: %w", errs[0])
	}
	return nil
}

// queues is the number of pipelines to run: Queues, or its default.
func (c *Config) queues() int {
	if c.Queues == 0 {
		return DefaultQueues(c.TunDriver)
	}
	return c.Queues
}

// Address is the node's own overlay address: the subnet's network address,
// kept off the subnet's .1 so a container bridge can take that as gateway
// (flannel's convention).
func (c *Config) Address() netip.Addr { return subnetenv.NodeAddress(c.Subnet) }
