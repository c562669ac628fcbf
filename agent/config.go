package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/weftnet/weft/kube"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/node"
)

// Config is one agent's configuration: the data plane's and what the agent
// wires around it. Its fields mirror `weft up`'s flags, and validation errors
// name the flag.
type Config struct {
	Node        node.Config
	StateDir    string        // --state-dir: persistent state (the lease table); default /var/lib/weft
	RunDir      string        // --run-dir: control socket and subnet.env; default /run/weft
	Join        []string      // --join: gossip seeds host[:port]; none for a cluster's first node
	GossipPort  int           // --gossip-port: gossip TCP/UDP port; 0 turns gossip off (static peers only)
	LeaseTTL    time.Duration // --lease-ttl: how long a gone node's subnet stays reserved; default 24h
	MetricsAddr string        // --metrics-addr: serve Prometheus metrics at host:port; "" is off
	Version     string        // the weft version, for weft_build_info
	Kube        *kube.Config  // --kube: subnet and peers from the cluster's Nodes (agent/kube.go); nil is off

	Log *slog.Logger // default slog.Default()
	// OpenTun creates the TUN device; nil is tunnel.Open. Tests pass an
	// in-memory device.
	OpenTun node.OpenTun
	// Gossip, if set, adjusts the membership configuration after the agent
	// filled it in (tests use it for fast timing).
	Gossip func(*membership.Config)
}

// DefaultConfig returns the defaults of `weft up`.
func DefaultConfig() Config {
	return Config{
		Node:       node.DefaultConfig(),
		StateDir:   "/var/lib/weft",
		RunDir:     "/run/weft",
		GossipPort: membership.DefaultGossipPort,
		LeaseTTL:   membership.DefaultConfig().LeaseTTL,
		Version:    "dev",
	}
}

// Validate checks the configuration without touching the system.
func (c *Config) Validate() error {
	if err := c.validateKube(); err != nil {
		return err
	}
	switch {
	case c.GossipPort < 0 || c.GossipPort > 65535:
		return fmt.Errorf("--gossip-port %d: want 0 to 65535", c.GossipPort)
	case c.GossipPort == 0 && c.Kube == nil && !c.Node.Subnet.IsValid():
		return errors.New("--subnet is required with --gossip-port 0 (without gossip nobody leases a subnet)")
	case c.GossipPort == 0 && len(c.Join) > 0:
		return errors.New("--join needs gossip: drop --gossip-port 0")
	case c.LeaseTTL <= 0:
		return fmt.Errorf("--lease-ttl %v: must be positive", c.LeaseTTL)
	case c.RunDir == "" || c.StateDir == "":
		return errors.New("--run-dir and --state-dir must not be empty")
	}
	if err := c.validateFamilies(); err != nil {
		return err
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr %q: want host:port, e.g. 127.0.0.1:9586: %v", c.MetricsAddr, err)
		}
	}
	return c.Node.Validate()
}
