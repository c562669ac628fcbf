// Package agent wires a weft node together: it finds the underlay once,
// joins gossip and leases the node's subnet (membership), opens the data
// plane (node), and serves the control socket (api), subnet.env (subnetenv)
// and metrics, then runs until its context ends. `weft up` is a thin main
// around Run; tests start whole agents in process with it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/metrics"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/subnetenv"
)

// Run starts the agent and runs it until ctx ends or a part fails, then
// shuts it down cleanly: gossip leaves, the TUN and socket close, and the
// control socket and subnet.env are removed from the run dir.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Log
	// Local prerequisites come first, before anything touches the
	// cluster (preflight.go): privileges here, sockets below.
	if err := checkAccess(&cfg); err != nil {
		return err
	}
	if cfg.Node.Insecure {
		log.Warn("--insecure: OVERLAY TRAFFIC IS NEITHER AUTHENTICATED NOR ENCRYPTED; anyone who can reach the UDP port can inject packets into every container, and anyone on the underlay can read them")
	}
	// One underlay decision for gossip and the data plane alike.
	under, err := node.FindUnderlay(&cfg.Node)
	if err != nil {
		return err
	}
	log.Info("underlay chosen", "interface", under.Interface, "address", under.Addr, "why", under.Why,
		"candidates", candidateList(under.Candidates))
	if err := node.CheckPeers(&cfg.Node, under); err != nil {
		return err
	}
	var sources []peer.Source
	if len(cfg.Node.Peers) > 0 {
		sources = append(sources, peer.StaticSet(cfg.Node.Peers))
	}
	// The control socket comes first: it refuses a run dir another node
	// uses before this one touches the cluster, and answers status while
	// the node joins, which may take long (a seed that does not answer).
	srv := api.NewServer()
	srv.Handle("/debug/pprof/", api.Profiles())
	var m *membership.Membership
	if cfg.GossipPort != 0 {
		if m, err = newMembership(&cfg, under.Addr); err != nil {
			return err
		}
		// The node's own status handler replaces this one once it is up.
		handleJoining(srv, &cfg, under, m)
	}
	handleLeases(srv, m)
	closeSrv, err := srv.Serve(ctx, cfg.RunDir)
	if err != nil {
		closeGossip(m)
		return err
	}
	defer closeSrv()
	local, err := preflight(&cfg, under.Addr)
	if err != nil {
		closeGossip(m)
		return err
	}
	started := false
	defer func() {
		if !started {
			local.close()
		}
	}()
	requested := cfg.Node.Subnet.IsValid()
	if m != nil {
		subnet, err := m.Start(ctx)
		if err != nil {
			if ctx.Err() != nil {
				log.Info("stopped while joining the cluster", "err", err)
				return nil
			}
			if errors.Is(err, membership.ErrEndpointInUse) {
				return fmt.Errorf("%w; this node took %s from %s (%s): say which address the nodes share with --iface (an interface name, glob or CIDR) or --advertise",
					err, under.Addr, under.Interface, under.Why)
			}
			return err
		}
		cfg.Node.Subnet = subnet
		sources = append(sources, m)
	}
	if cfg.Kube != nil {
		k, err := startKube(ctx, &cfg, under.Addr, srv)
		if err != nil || k == nil {
			return err // nil: stopped while waiting for the podCIDR
		}
		sources = append(sources, k)
	}
	removeMasq, err := installMasq(&cfg)
	if err != nil {
		closeGossip(m)
		return err
	}
	defer removeMasq()
	// A node whose leased subnet is lost after it started, and who handed
	// out none of its addresses, leases another and runs again (relet.go).
	relet := m != nil && !requested && cfg.Kube == nil
	var current atomic.Pointer[node.Node] // what metrics read
	routes := &nodeRoutes{srv: srv, h: map[string]http.HandlerFunc{}}
	for {
		n, err := startNode(ctx, &cfg, under, routes, m, local, &current)
		if err != nil {
			closeGossip(m)
			return err
		}
		started = true // the node owns the sockets, the metrics server its listener
		err = n.Run(ctx, sources...)
		n.removeEnv()
		log.Info("node stopped")
		if !relet || ctx.Err() != nil || !errors.Is(err, membership.ErrSubnetLost) {
			closeGossip(m) // Run left the cluster already, unless our subnet was lost
			return err
		}
		if local.conns, err = reletSubnet(ctx, &cfg, under, m, n.Node, err); err != nil || ctx.Err() != nil {
			closeGossip(m)
			return err // nil when stopped while leasing
		}
	}
}

// running is a started node and what takes its subnet.env away.
type running struct {
	*node.Node
	removeEnv func()
}

// startNode builds the data plane on local's sockets, which it takes over,
// and makes it visible: control handlers, subnet.env, and (the first time)
// metrics on local's listener, which read the node current holds.
func startNode(ctx context.Context, cfg *Config, under node.Underlay, routes api.Mux, m *membership.Membership, local *held, current *atomic.Pointer[node.Node]) (running, error) {
	if err := cfg.Node.DeriveSubnet6(); err != nil {
		return running{}, err
	}
	n, err := node.New(cfg.Node, under, cfg.Log, cfg.OpenTun, local.conns)
	local.conns = nil // New closes them on failure, the node on its stop
	if err != nil {
		return running{}, err
	}
	n.Handlers(routes)
	if m != nil && !cfg.Node.Insecure {
		n.SetKeyHook(gossipKeys{m})
	}
	current.Store(n)
	status := func() api.Status { return current.Load().Status() }
	removeEnv, err := publish(ctx, cfg, n.MTU(), status, m, local.metrics)
	if err != nil {
		n.Close()
		return running{}, err
	}
	local.metrics = nil // served until ctx ends
	return running{n, removeEnv}, nil
}

// candidateList is Underlay.Candidates for the log: "eth0=10.0.2.15 eth1=…".
func candidateList(cs []api.Candidate) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Interface + "=" + c.Addr.String()
	}
	return strings.Join(parts, " ")
}

// publish makes the running node visible on the host beside its control
// socket: subnet.env, and metrics on ln (bound by preflight; nil: none).
// remove takes subnet.env away again.
func publish(ctx context.Context, cfg *Config, mtu int, status func() api.Status, m *membership.Membership, ln net.Listener) (remove func(), err error) {
	envFile := filepath.Join(cfg.RunDir, subnetenv.File)
	env := subnetenv.Env{Network: cfg.Node.Network, Subnet: cfg.Node.Subnet, MTU: mtu,
		Network6: cfg.Node.Network6, Subnet6: cfg.Node.Subnet6}
	if err := subnetenv.Write(envFile, env); err != nil {
		return nil, fmt.Errorf("--run-dir: %w", err)
	}
	remove = func() { os.Remove(envFile) }
	if ln != nil {
		var g metrics.Gossip
		if m != nil {
			g = m
		}
		metrics.ServeListener(ctx, ln, metrics.NewRegistry(cfg.Version, status, g), cfg.Log)
	}
	return remove, nil
}

// newMembership configures this node's membership; its Start joins the
// cluster and settles the subnet the node needs before it can create its TUN.
func newMembership(cfg *Config, advertise netip.Addr) (*membership.Membership, error) {
	mc := membership.DefaultConfig()
	mc.Name, mc.Advertise, mc.GossipPort, mc.Join = cfg.Node.Name, advertise, cfg.GossipPort, cfg.Join
	// Gossip listens where the data plane does, all addresses by default,
	// so a seed answers on whichever of its addresses it is given, and a
	// joiner that advertises a member's address learns so
	// (ErrEndpointInUse) rather than finding nobody there.
	mc.Bind = cfg.Node.Listen.Addr()
	if mc.Bind.IsUnspecified() && advertise.Is6() {
		mc.Bind = netip.IPv6Unspecified()
	}
	mc.Network, mc.SubnetLen, mc.Subnet = cfg.Node.Network, cfg.Node.SubnetLen, cfg.Node.Subnet
	mc.Network6, mc.SubnetLen6 = cfg.Node.Network6, cfg.Node.SubnetLen6
	mc.DataEndpoint = netip.AddrPortFrom(advertise, cfg.Node.Listen.Port())
	mc.StateDir, mc.LeaseTTL = cfg.StateDir, cfg.LeaseTTL
	for _, p := range cfg.Node.Peers { // gossip never hands out a static peer's subnet
		mc.Reserved = append(mc.Reserved, p.Subnet)
	}
	mc.Log = cfg.Log
	for _, k := range cfg.Node.Keys {
		gk, err := encap.GossipKey(k)
		if err != nil {
			return nil, fmt.Errorf("--key-file: %w", err)
		}
		mc.Keys = append(mc.Keys, gk)
	}
	if cfg.Gossip != nil {
		cfg.Gossip(&mc)
	}
	return membership.New(mc)
}

// closeGossip leaves the cluster after a failed start.
func closeGossip(m *membership.Membership) {
	if m != nil {
		m.Close()
	}
}

// gossipKeys makes the gossip keyring follow the node's cluster keys: each
// secret's gossip key is derived from it (encap.GossipKey).
type gossipKeys struct{ m *membership.Membership }

func (g gossipKeys) AddKey(secret []byte) error    { return g.do(secret, g.m.AddKey) }
func (g gossipKeys) UseKey(secret []byte) error    { return g.do(secret, g.m.UseKey) }
func (g gossipKeys) RemoveKey(secret []byte) error { return g.do(secret, g.m.RemoveKey) }

func (g gossipKeys) do(secret []byte, f func([]byte) error) error {
	gk, err := encap.GossipKey(secret)
	if err != nil {
		return err
	}
	return f(gk)
}

var _ node.KeyHook = gossipKeys{}
