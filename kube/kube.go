// Package kube is weft's Kubernetes mode (`weft up --kube`): the API server
// is the cluster's store, as flannel's kube subnet manager makes it.
//
//   - Subnet: this node's subnet is its Node's spec.podCIDR, which
//     kube-controller-manager (--allocate-node-cidrs) or the admin allocates.
//     Subnet waits, saying why, while the Node or its podCIDR is missing.
//   - Peers: Kube is a peer.Source fed by one Node informer (a watch, with a
//     periodic resync of its cache; never polling). Every other Node that
//     carries weft's endpoint annotation and has a podCIDR is an Alive peer,
//     named by the Node's name; a Node that goes (deleted, or its annotation
//     removed) is withdrawn from the next peer set.
//   - Announcing: the node writes its own annotations (AnnotationEndpoint,
//     AnnotationKeyID, AnnotationVersion) on its own Node, and only there:
//     Run is their one owner. It patches them at start and again whenever
//     the informer shows them different (the Node was re-registered, someone
//     edited them).
//
// Gossip does not run in this mode: membership would be a second source of
// truth for subnets. Path health comes from the data path's own probes.
//
// Only agent, kube and cmd/weft import client-go; the rest of weft never
// links it.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/peer"
)

// The annotations a weft node writes on its own Node. A Node is a weft peer
// when it has AnnotationEndpoint; the other two are for people and `weft
// doctor` (which key a node sends with, which weft it runs).
const (
	// AnnotationEndpoint is the node's underlay UDP endpoint, "IP:PORT"
	// (IPv6 as "[IP]:PORT"): where peers send its overlay traffic.
	AnnotationEndpoint = "weft.dev/endpoint"
	// AnnotationKeyID is the id (1-255, encap.KeyID) of the cluster key the
	// node sends with, or "insecure".
	AnnotationKeyID = "weft.dev/key-id"
	// AnnotationVersion is the weft version the node runs.
	AnnotationVersion = "weft.dev/version"
)

// ErrPodCIDRChanged is returned by Run when this node's Node was given a
// different podCIDR than the one the node runs with: the node cannot move
// subnet while its pods hold addresses, so it stops (and its DaemonSet
// restarts it on the new one).
var ErrPodCIDRChanged = errors.New("this Node's podCIDR changed")

// Config configures the Kubernetes mode.
type Config struct {
	// Kubeconfig is --kubeconfig: the kubeconfig file to use; "" means the
	// in-cluster config (the pod's service account).
	Kubeconfig string
	// NodeName is the Node this agent runs on (--name). Required.
	NodeName string
	// Resync is how often the informer replays its cache (a safety net;
	// changes arrive through the watch). Default 5 minutes.
	Resync time.Duration
	// Announce is what Run writes on this Node. Run refuses to start
	// without Announce.Endpoint.
	Announce Announcement
	// Log is the logger; nil is slog.Default().
	Log *slog.Logger
}

// Announcement is what a node says about itself in its Node's annotations.
type Announcement struct {
	Endpoint netip.AddrPort
	KeyID    string // "1".."255" or "insecure"
	Version  string
}

func (a Announcement) annotations() map[string]string {
	return map[string]string{
		AnnotationEndpoint: a.Endpoint.String(),
		AnnotationKeyID:    a.KeyID,
		AnnotationVersion:  a.Version,
	}
}

// DefaultResync is Config.Resync's default.
const DefaultResync = 5 * time.Minute

// Kube watches the cluster's Nodes. Create it with New or NewForClient,
// then Start it; Subnet and Run may then be called (Run at most once).
type Kube struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface
	nodes  cache.SharedIndexInformer
	lister listersv1.NodeLister

	mu      sync.Mutex    // guards the fields below
	changed chan struct{} // closed and replaced on every informer event
	subnet  netip.Prefix  // what Subnet returned: Run watches for a change
	subnet6 netip.Prefix  // the IPv6 podCIDR beside it (Subnet6)
}

var _ peer.Source = (*Kube)(nil)

// New connects to the API server named by cfg.Kubeconfig, or the in-cluster
// one. It does not contact it yet.
func New(cfg Config) (*Kube, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		if cfg.Kubeconfig == "" {
			return nil, fmt.Errorf("--kube without --kubeconfig needs the in-cluster config: %w", err)
		}
		return nil, fmt.Errorf("--kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	rc.UserAgent = "weft/" + cfg.Announce.Version
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return NewForClient(client, cfg)
}

// NewForClient is New with a client made elsewhere (tests pass
// client-go's fake clientset).
func NewForClient(client kubernetes.Interface, cfg Config) (*Kube, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("kube: NodeName (--name) is required")
	}
	if cfg.Resync <= 0 {
		cfg.Resync = DefaultResync
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	k := &Kube{cfg: cfg, log: cfg.Log.With("subsystem", "kube"), client: client, changed: make(chan struct{})}
	factory := informers.NewSharedInformerFactory(client, cfg.Resync)
	nodes := factory.Core().V1().Nodes()
	k.nodes, k.lister = nodes.Informer(), nodes.Lister()
	// Keep only what weft reads: a big cluster's Nodes carry image lists
	// and managed fields that would otherwise sit in the cache.
	if err := k.nodes.SetTransform(trimNode); err != nil {
		return nil, err
	}
	poke := func(any) { k.poke() }
	if _, err := k.nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, DeleteFunc: poke,
		UpdateFunc: func(_, _ any) { k.poke() },
	}); err != nil {
		return nil, err
	}
	return k, nil
}

// trimNode drops the parts of a Node weft never reads before the informer
// caches it.
func trimNode(obj any) (any, error) {
	if n, ok := obj.(*corev1.Node); ok {
		n.ManagedFields = nil
		n.Status.Images = nil
		n.Status.VolumesAttached = nil
		n.Status.VolumesInUse = nil
	}
	return obj, nil
}

// poke wakes everyone waiting on a change.
func (k *Kube) poke() {
	k.mu.Lock()
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
}

// changes returns a channel closed at the next informer event.
func (k *Kube) changes() <-chan struct{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.changed
}

// Start runs the Node informer until ctx ends and waits until its cache
// holds the cluster's Nodes. While the API server cannot be reached it
// keeps trying (client-go backs off) until ctx ends.
func (k *Kube) Start(ctx context.Context) error {
	go k.nodes.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), k.nodes.HasSynced) {
		return fmt.Errorf("list the cluster's Nodes: %w", context.Cause(ctx))
	}
	return nil
}

// Subnet waits until this node's Node has a podCIDR and returns it. While it
// waits it calls waiting (if not nil) with the reason, each time the reason
// changes. It returns early only when ctx ends.
func (k *Kube) Subnet(ctx context.Context, waiting func(reason string)) (netip.Prefix, error) {
	last := ""
	for {
		ch := k.changes()
		subnet, subnet6, reason := k.ownSubnet()
		if reason == "" {
			k.mu.Lock()
			k.subnet, k.subnet6 = subnet, subnet6
			k.mu.Unlock()
			return subnet, nil
		}
		if reason != last && waiting != nil {
			waiting(reason)
		}
		last = reason
		select {
		case <-ch:
		case <-ctx.Done():
			return netip.Prefix{}, fmt.Errorf("%s: %w", reason, context.Cause(ctx))
		}
	}
}

// ownSubnet returns this Node's podCIDR and its IPv6 one (zero if none),
// or why there is none.
func (k *Kube) ownSubnet() (netip.Prefix, netip.Prefix, string) {
	name := k.cfg.NodeName
	n, err := k.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return netip.Prefix{}, netip.Prefix{}, fmt.Sprintf("waiting for Node %q to exist (the kubelet registers it; --name must be the Node's name)", name)
	}
	if err != nil {
		return netip.Prefix{}, netip.Prefix{}, fmt.Sprintf("waiting for Node %q: %v", name, err)
	}
	if n.Spec.PodCIDR == "" {
		return netip.Prefix{}, netip.Prefix{}, fmt.Sprintf("waiting for Node %q to get a spec.podCIDR (kube-controller-manager needs --allocate-node-cidrs and --cluster-cidr)", name)
	}
	p, p6, err := podCIDRs(n)
	if err != nil {
		return netip.Prefix{}, netip.Prefix{}, fmt.Sprintf("Node %q: %v", name, err)
	}
	return p, p6, ""
}

// Subnet6 is this Node's IPv6 podCIDR in a dual-stack cluster, as of the
// last Subnet call; zero if it has none.
func (k *Kube) Subnet6() netip.Prefix {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.subnet6
}

// podCIDRs splits a Node's spec.podCIDRs (spec.podCIDR when it lists none)
// into its IPv4 and its IPv6 prefix: a dual-stack cluster lists one of each,
// in the order of the cluster CIDRs. A single-stack IPv6 Node's one prefix
// is the first.
func podCIDRs(n *corev1.Node) (netip.Prefix, netip.Prefix, error) {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var v4, v6 netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || p != p.Masked() {
			return v4, v6, fmt.Errorf("spec.podCIDRs %q: %q is not a network prefix", cidrs, c)
		}
		switch {
		case p.Addr().Is4() && !v4.IsValid():
			v4 = p
		case p.Addr().Is6() && !v6.IsValid():
			v6 = p
		}
	}
	if !v4.IsValid() {
		return v6, netip.Prefix{}, nil
	}
	return v4, v6, nil
}

// Run announces this node on its Node, then calls update with the peer set
// (every other weft Node with a podCIDR) each time it changes, until ctx
// ends. It stops with ErrPodCIDRChanged if this Node's podCIDR changes
// from what Subnet returned. Call Start first.
func (k *Kube) Run(ctx context.Context, update func([]peer.Info)) error {
	if !k.cfg.Announce.Endpoint.IsValid() {
		return errors.New("kube: Config.Announce.Endpoint is required")
	}
	var last []peer.Info
	bad := map[string]string{} // node → the problem last logged for it
	first := true
	for {
		ch := k.changes()
		if err := k.checkSelf(ctx); err != nil {
			return err
		}
		peers := k.peers(bad)
		if first || !slices.Equal(peers, last) {
			update(peers)
			last, first = peers, false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

// checkSelf re-announces this node when its Node's annotations differ from
// the announcement, and fails if the Node's podCIDR moved. A Node that is
// gone is waited for (the kubelet registers it again).
func (k *Kube) checkSelf(ctx context.Context) error {
	n, err := k.lister.Get(k.cfg.NodeName)
	if apierrors.IsNotFound(err) {
		k.log.Warn("this node's Node object is gone; waiting for the kubelet to register it again", "node", k.cfg.NodeName)
		return nil
	}
	if err != nil {
		return err
	}
	k.mu.Lock()
	subnet := k.subnet
	k.mu.Unlock()
	if p, _, reason := k.ownSubnet(); reason == "" && subnet.IsValid() && p != subnet {
		return fmt.Errorf("%w from %s to %s: restarting to take the new one", ErrPodCIDRChanged, subnet, p)
	}
	want := k.cfg.Announce.annotations()
	stale := false
	for key, v := range want {
		if n.Annotations[key] != v {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	return k.announce(ctx, want)
}

// announce patches this node's annotations onto its Node, retrying with
// backoff while the API server fails, until ctx ends.
func (k *Kube) announce(ctx context.Context, ann map[string]string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return err
	}
	delay := 100 * time.Millisecond
	for {
		_, err := k.client.CoreV1().Nodes().Patch(ctx, k.cfg.NodeName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "weft"})
		if err == nil {
			k.log.Info("announced on the Node", "node", k.cfg.NodeName, "endpoint", ann[AnnotationEndpoint])
			return nil
		}
		if apierrors.IsNotFound(err) {
			k.log.Warn("this node's Node object is gone; waiting for the kubelet to register it again", "node", k.cfg.NodeName)
			return nil // the informer pokes Run when it is back
		}
		if apierrors.IsForbidden(err) {
			return fmt.Errorf("annotate Node %q: %w (weft's ClusterRole needs nodes: patch)", k.cfg.NodeName, err)
		}
		k.log.Warn("annotate this Node; retrying", "node", k.cfg.NodeName, "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// peers builds the peer set from the informer's cache, sorted by name.
// Nodes whose annotation or podCIDR does not parse are left out and logged
// once per distinct problem (bad holds what was logged).
func (k *Kube) peers(bad map[string]string) []peer.Info {
	nodes, err := k.lister.List(labels.Everything())
	if err != nil {
		k.log.Warn("list cached Nodes", "err", err)
		return nil
	}
	var out []peer.Info
	seen := map[string]bool{}
	for _, n := range nodes {
		if n.Name == k.cfg.NodeName {
			continue
		}
		p, problem := PeerOf(n)
		if problem == "" {
			out = append(out, p)
			continue
		}
		seen[n.Name] = true
		if !routine[problem] && bad[n.Name] != problem {
			k.log.Warn("Node left out of the peers", "peer", n.Name, "err", problem)
		}
		bad[n.Name] = problem
	}
	for name := range bad {
		if !seen[name] {
			delete(bad, name)
		}
	}
	slices.SortFunc(out, func(a, b peer.Info) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// routine are PeerOf's answers that are no misconfiguration, never logged.
var routine = map[string]bool{"not a weft node": true, "no podCIDR yet": true, "being deleted": true}

// PeerOf is the peer a Node stands for, or why it is none: "not a weft
// node" without AnnotationEndpoint, "no podCIDR yet", "being deleted", or
// a parse problem.
func PeerOf(n *corev1.Node) (peer.Info, string) {
	ep, ok := n.Annotations[AnnotationEndpoint]
	if !ok {
		return peer.Info{}, "not a weft node"
	}
	if n.Spec.PodCIDR == "" {
		return peer.Info{}, "no podCIDR yet"
	}
	if n.DeletionTimestamp != nil {
		return peer.Info{}, "being deleted"
	}
	addr, err := netip.ParseAddrPort(ep)
	if err != nil || addr.Port() == 0 {
		return peer.Info{}, fmt.Sprintf("annotation %s=%q: want IP:PORT", AnnotationEndpoint, ep)
	}
	subnet, subnet6, err := podCIDRs(n)
	if err != nil {
		return peer.Info{}, err.Error()
	}
	return peer.Info{Name: n.Name, Subnet: subnet, Subnet6: subnet6, Endpoint: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), State: peer.Alive}, ""
}
