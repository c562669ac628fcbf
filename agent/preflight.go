package agent

// Local prerequisites, checked before the node touches the cluster: a node
// that joined gossip has leased a subnet, which the cluster then reserves
// for --lease-ttl (24 h), so every failure that is this host's own (no
// privilege, a port taken, a read-only state dir) must come first, in one
// line naming what to fix. The data and metrics ports are bound here and
// held, so nothing takes them while the node joins.

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"github.com/weftnet/weft/metrics"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/tunnel"
)

// held is what preflight bound for the node; the agent hands each part on,
// or closes it if the start fails.
type held struct {
	conns   []node.Transport // --listen, one per queue
	metrics net.Listener     // --metrics-addr; nil without it
}

func (h *held) close() {
	for _, c := range h.conns {
		c.Close()
	}
	if h.metrics != nil {
		h.metrics.Close()
	}
}

// checkAccess fails unless this process can create the TUN device (root or
// CAP_NET_ADMIN, /dev/net/tun). Skipped when a test supplies its own TUN.
func checkAccess(cfg *Config) error {
	if cfg.OpenTun != nil {
		return nil
	}
	return tunnel.CheckAccess()
}

// preflight binds the data and metrics ports and checks the gossip port and
// the state dir, before the node joins the cluster.
func preflight(cfg *Config, advertise netip.Addr) (_ *held, err error) {
	h := &held{}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.conns, err = node.Listen(cfg.Node, advertise, cfg.Log); err != nil {
		return nil, err
	}
	if cfg.MetricsAddr != "" {
		if h.metrics, err = metrics.Listen(cfg.MetricsAddr); err != nil {
			return nil, err
		}
	}
	if cfg.GossipPort != 0 {
		if err := checkGossipPort(advertise, cfg.GossipPort); err != nil {
			return nil, err
		}
		if err := checkWritable(cfg.StateDir); err != nil {
			return nil, fmt.Errorf("--state-dir %s: %w (the lease table is kept there)", cfg.StateDir, err)
		}
	}
	return h, nil
}

// checkGossipPort binds the gossip port, TCP and UDP, as memberlist will,
// and lets go of it again: memberlist binds its own sockets when it starts.
func checkGossipPort(advertise netip.Addr, port int) error {
	addr := net.JoinHostPort(advertise.String(), strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", addr); err == nil {
			pc.Close()
		}
	}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("--gossip-port %d: port already in use on %s (another weft, or Consul/Serf?); pick another with --gossip-port", port, advertise)
	case err != nil:
		return fmt.Errorf("--gossip-port %d: %w", port, err)
	}
	return nil
}

// checkWritable makes dir if it is missing and writes a file in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".weft-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
