package agent

// The Kubernetes mode's wiring (Config.Kube, `weft up --kube`): the subnet is
// the Node's podCIDR and the peers are the other weft Nodes, both from the
// kube package's Node informer, instead of gossip. See docs/kubernetes.md.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/kube"
)

// validateKube checks the flags that --kube rules out; Validate calls it.
func (c *Config) validateKube() error {
	switch {
	case c.Kube == nil:
		return nil
	case c.Node.Subnet.IsValid():
		return errors.New("--subnet and --kube exclude each other: with --kube the subnet is the Node's spec.podCIDR")
	case len(c.Join) > 0:
		return errors.New("--join and --kube exclude each other: with --kube the API server is the store, and gossip is off")
	case c.GossipPort != 0:
		return errors.New("Config.Kube runs without gossip: GossipPort must be 0")
	}
	return nil
}

// startKube watches the cluster's Nodes and waits for this Node's podCIDR,
// which becomes cfg.Node.Subnet. While it waits, the control socket answers
// status requests with the reason. The returned source announces the node
// on its Node and publishes the other weft Nodes as peers. It returns nil,
// nil when ctx ends while it waits: a clean stop.
func startKube(ctx context.Context, cfg *Config, advertise netip.Addr, srv *api.Server) (*kube.Kube, error) {
	kc := *cfg.Kube
	kc.NodeName, kc.Log = cfg.Node.Name, cfg.Log
	kc.Announce = kube.Announcement{
		Endpoint: netip.AddrPortFrom(advertise, cfg.Node.Listen.Port()),
		KeyID:    "insecure",
		Version:  cfg.Version,
	}
	if len(cfg.Node.Keys) > 0 {
		kc.Announce.KeyID = strconv.Itoa(int(encap.KeyID(cfg.Node.Keys[0])))
	}
	// client-go logs through klog; send it to our logger instead of stderr.
	klog.SetSlogLogger(cfg.Log.With("subsystem", "client-go"))
	k, err := kube.New(kc)
	if err != nil {
		return nil, err
	}

	var mu sync.Mutex
	reason := "listing the cluster's Nodes from the API server"
	// Without a method the pattern yields to the node's "GET /v1/status"
	// once the node is up (net/http prefers the more specific pattern).
	srv.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		api.WriteError(w, http.StatusServiceUnavailable, fmt.Errorf("node %s is not up yet: %s", cfg.Node.Name, reason))
	})
	err = k.Start(ctx)
	var subnet netip.Prefix
	if err == nil {
		subnet, err = k.Subnet(ctx, func(r string) {
			cfg.Log.Warn(r)
			mu.Lock()
			reason = r
			mu.Unlock()
		})
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !cfg.Node.Network.Contains(subnet.Addr()) || subnet.Bits() <= cfg.Node.Network.Bits() {
		return nil, fmt.Errorf("Node %s's podCIDR %s is not inside --network %s: set --network to the cluster CIDR (kube-controller-manager --cluster-cidr)", cfg.Node.Name, subnet, cfg.Node.Network)
	}
	cfg.Log.Info("subnet from the Node's podCIDR", "subnet", subnet)
	cfg.Node.Subnet = subnet
	if err := kubeSubnet6(cfg, k.Subnet6()); err != nil {
		return nil, err
	}
	return k, nil
}
