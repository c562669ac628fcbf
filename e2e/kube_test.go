package e2e

// weft --kube against a real control plane (issue 14): etcd, kube-apiserver
// and kube-controller-manager (nodeipam) on their own lab host; three Nodes
// registered as kubelets would; weft agents on three hosts, authenticated
// as weft's service account with only the RBAC that the manifest grants.
// The same on a dual-stack cluster (issue 16).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/kube"
	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/lab/labtest"
)

// kubeTimeout bounds the control plane's start and the cluster settling
// (podCIDRs, watches); a limit, not a speed requirement.
const kubeTimeout = 2 * time.Minute

const manifest = "../deploy/kubernetes/weft.yaml"

func TestKube(t *testing.T) { testKube(t, "kube", false) }

// TestKubeDualStack is TestKube on a dual-stack cluster: nodeipam hands
// each Node an IPv4 and an IPv6 podCIDR, weft runs with both --network
// flags and takes both, and pods, hosts and egress work in both families.
func TestKubeDualStack(t *testing.T) { testKube(t, "kd", true) }

func testKube(t *testing.T, name string, dualStack bool) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping", "nft")
	testenv.Need(t, lab.RequireKube())
	cnitool, plugins := needCNI(t)

	// h1..h3 run weft, h4 the control plane; h5 is outside the overlay.
	labCfg, cpCfg := lab.Config{Hosts: 5, Prefix: prefix(name)}, lab.ControlPlaneConfig{Dir: t.TempDir()}
	weftCfg := lab.WeftConfig{Binary: weftBin, Dir: t.TempDir(), Args: []string{"--ip-masq"}}
	if dualStack {
		labCfg.Underlay6, cpCfg.ClusterCIDR6, weftCfg.Network6 = underlayNet6, overlayNet6, overlayNet6
	}
	l := labtest.New(t, labCfg)
	cp := startControlPlane(t, l, l.Host(4), cpCfg)
	client := kubeClient(t, cp)

	// weft on h1..h3 will run with --kube --kubeconfig, as the service
	// account; PrepareWeft makes the cluster key.
	weftCfg.Kubeconfig = cp.WeftKubeconfig
	prepared, err := l.PrepareWeft(t.Context(), weftCfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes := prepared[:3]

	// The install steps of the manifest's header: namespace and key Secret,
	// then the manifest, which passes the API server's own validation.
	// Applying it for real creates the RBAC the agents run with.
	kubectl(t, cp, "create", "namespace", "weft-system")
	kubectl(t, cp, "-n", "weft-system", "create", "secret", "generic", "weft-cluster-key", "--from-file=cluster.key="+filepath.Join(weftCfg.Dir, "cluster.key"))
	kubectl(t, cp, "apply", "--dry-run=server", "-f", manifest)
	kubectl(t, cp, "apply", "-f", manifest)

	// An agent whose Node does not exist yet waits, and status says why.
	stopAtEnd(t, nodes)
	if err := nodes[0].Launch(); err != nil {
		t.Fatal(err)
	}
	err = testenv.Poll(t.Context(), waitTimeout, "h1's status saying what it waits for", func() error {
		r := runWeft(t, nodes[0].Host, "status", "--run-dir", nodes[0].RunDir)
		if r.code != 1 || !strings.Contains(r.stderr, `waiting for Node "h1" to exist`) {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Three Nodes, registered as kubelets do; nodeipam gives each a podCIDR
	// (two, dual-stack).
	hosts := l.Hosts[:3]
	for _, h := range hosts {
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: h.Name, Labels: map[string]string{"kubernetes.io/hostname": h.Name}},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: h.Addr.String()}}},
		}
		if _, err := client.CoreV1().Nodes().Create(t.Context(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	podCIDRs := waitPodCIDRs(t, client, hosts, dualStack)

	ctx, cancel := context.WithTimeout(t.Context(), kubeTimeout)
	defer cancel()
	for _, w := range nodes[1:] {
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	err = testenv.Poll(ctx, waitTimeout, "h1 up on its podCIDR", func() error {
		s, err := nodes[0].Status(ctx)
		if err == nil {
			nodes[0].Subnet, nodes[0].Addr = s.Subnet, s.Address
			nodes[0].Subnet6, nodes[0].Addr6 = s.Subnet6, s.Address6
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Each took exactly its Node's podCIDRs and lists the others by Node
	// name, with their podCIDRs and the endpoints they announced on their
	// Nodes.
	for _, w := range nodes {
		if w.Subnet != podCIDRs[w.Name].v4 || w.Subnet6 != podCIDRs[w.Name].v6 {
			t.Errorf("%s: subnets %s %s, its Node's podCIDRs are %+v", w.Name, w.Subnet, w.Subnet6, podCIDRs[w.Name])
		}
	}
	for _, w := range nodes {
		waitKubePeers(t, w, nodes, "")
		s, _ := cliStatusJSON(t, w)
		for _, p := range s.Peers {
			if want := podCIDRs[p.Name]; p.Subnet != want.v4 || p.Subnet6 != want.v6 || p.Endpoint != netip.AddrPortFrom(l.Host(hostIndex(p.Name)).Addr, 6081) {
				t.Errorf("%s: peer %+v: want subnets %+v and endpoint %s:6081", w.Name, p, want, l.Host(hostIndex(p.Name)).Addr)
			}
		}
		n, err := client.CoreV1().Nodes().Get(t.Context(), w.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := n.Annotations[kube.AnnotationEndpoint], w.Host.Addr.String()+":6081"; got != want {
			t.Errorf("Node %s: %s=%q, want %q", w.Name, kube.AnnotationEndpoint, got, want)
		}
	}
	if dualStack {
		waitPing(t, nodes[0].Host, nodes[1].Addr6)
		waitPing(t, nodes[1].Host, nodes[0].Addr6)
	}

	// Pods made by cnitool through weft-cni reach each other across hosts.
	pods := make([]*pod, len(nodes))
	for i, w := range nodes {
		h := installCNI(t, l, w, plugins, cnitool)
		defaultGateway(t, h)
		pods[i] = h.newPod("a")
		h.add(pods[i])
	}
	for i, p := range pods {
		q := pods[(i+1)%len(pods)]
		waitPing(t, p.Host, q.addr)
		if dualStack {
			waitPing(t, p.Host, q.addr6)
		}
	}

	srcs := []netip.Addr{pods[0].addr}
	if dualStack {
		srcs = append(srcs, pods[0].addr6)
	}
	checkEgress(t, l.Host(5), nodes[0], pods[0].Host, srcs...)

	// Deleting a Node withdraws its routes everywhere.
	if err := client.CoreV1().Nodes().Delete(t.Context(), "h3", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range nodes[:2] {
		waitKubePeers(t, w, nodes, "h3")
	}
	noPing(t, pods[0].Host, pods[2].addr)
	waitPing(t, pods[0].Host, pods[1].addr)

	// A clean stop takes the egress rules away.
	tables := []string{"ip"}
	if dualStack {
		tables = append(tables, "ip6")
	}
	for _, family := range tables {
		if out, err := nodes[1].Host.Run(t.Context(), "nft", "list", "table", family, "weft"); err != nil {
			t.Fatalf("--ip-masq table %s missing while weft runs: %v\n%s", family, err, out)
		}
	}
	if err := nodes[1].Stop(); err != nil {
		t.Fatal(err)
	}
	for _, family := range tables {
		if out, err := nodes[1].Host.Run(t.Context(), "nft", "list", "table", family, "weft"); err == nil {
			t.Errorf("--ip-masq table %s left after a clean stop:\n%s", family, out)
		}
	}
}

// startControlPlane starts the control plane on h, stopped when the test
// ends (after the weft nodes, which are registered later); its output goes
// to the log of a failed test.
func startControlPlane(t *testing.T, l *lab.Lab, h *lab.Host, cfg lab.ControlPlaneConfig) *lab.ControlPlane {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubeTimeout)
	defer cancel()
	cp, err := l.StartControlPlane(ctx, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane output:\n%s", cp.Output())
		}
		if err := cp.Stop(); err != nil {
			t.Errorf("control plane did not stop cleanly: %v", err)
		}
	})
	return cp
}

// kubeClient is a cluster-admin client of cp, dialing from inside its host.
func kubeClient(t *testing.T, cp *lab.ControlPlane) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) { return cp.Dial(ctx, network, addr) }
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubectl runs kubectl as the admin inside the control plane's host.
func kubectl(t *testing.T, cp *lab.ControlPlane, args ...string) string {
	t.Helper()
	bin, err := lab.K8sTool("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	out, err := cp.Host.Run(ctx, bin, append([]string{"--kubeconfig", cp.AdminKubeconfig}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// nodeCIDRs are a Node's podCIDRs: IPv4, and IPv6 on a dual-stack cluster.
type nodeCIDRs struct{ v4, v6 netip.Prefix }

// waitPodCIDRs waits until every host's Node has its podCIDRs, both
// families' with dualStack, and returns them by Node name.
func waitPodCIDRs(t *testing.T, client kubernetes.Interface, hosts []*lab.Host, dualStack bool) map[string]nodeCIDRs {
	t.Helper()
	cidrs := map[string]nodeCIDRs{}
	err := testenv.Poll(t.Context(), kubeTimeout, "podCIDRs from kube-controller-manager", func() error {
		for _, h := range hosts {
			n, err := client.CoreV1().Nodes().Get(t.Context(), h.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			var c nodeCIDRs
			for _, s := range n.Spec.PodCIDRs {
				p, err := netip.ParsePrefix(s)
				switch {
				case err != nil:
					return err
				case p.Addr().Is4():
					c.v4 = p
				default:
					c.v6 = p
				}
			}
			if !c.v4.IsValid() || dualStack && !c.v6.IsValid() {
				return fmt.Errorf("Node %s has podCIDRs %v", h.Name, n.Spec.PodCIDRs)
			}
			cidrs[h.Name] = c
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cidrs
}

// waitKubePeers waits until w lists exactly the other nodes but gone as
// peers, all alive.
func waitKubePeers(t *testing.T, w *lab.Weft, nodes []*lab.Weft, gone string) {
	t.Helper()
	var want []string
	for _, n := range nodes {
		if n != w && n.Name != gone {
			want = append(want, n.Name)
		}
	}
	err := testenv.Poll(t.Context(), waitTimeout, fmt.Sprintf("%s's peers %v", w.Name, want), func() error {
		s, err := w.Status(t.Context())
		if err != nil {
			return err
		}
		var got []string
		for _, p := range s.Peers {
			if p.State == "alive" {
				got = append(got, p.Name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || len(s.Peers) != len(want) {
			return fmt.Errorf("peers %v", s.Peers)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hostIndex is i for a host named "hi".
func hostIndex(name string) int {
	var i int
	fmt.Sscanf(strings.TrimPrefix(name, "h"), "%d", &i)
	return i
}

// checkEgress checks --ip-masq on w: a datagram from each overlay address
// src on host from (a pod's, or w's own) to outside, a host on the
// underlay only, arrives from w's underlay address of src's family, and the
// reply finds its way back; status and doctor report the rules.
func checkEgress(t *testing.T, outside *lab.Host, w *lab.Weft, from *lab.Host, srcs ...netip.Addr) {
	t.Helper()
	for _, src := range srcs {
		dst, node := netip.AddrPortFrom(outside.Addr, 9999), w.Host.Addr
		if src.Is6() {
			dst, node = netip.AddrPortFrom(outside.Addr6, 9999), w.Host.Addr6
		}
		ln := listenUDP(t, outside, dst)
		c := listenUDP(t, from, netip.AddrPortFrom(src, 0))
		sendUDP(t, c, dst, []byte("egress"))
		_, seen, err := recvUDP(ln, ioTimeout)
		if err != nil || seen.Addr() != node {
			t.Fatalf("datagram from %s to %s: from %v (%v), want the node's address %s", src, dst, seen, err, node)
		}
		sendUDP(t, ln, seen, []byte("reply"))
		expectDatagram(t, c, "reply")
	}

	if _, m := cliStatusJSON(t, w); m["ip_masq"] != true {
		t.Errorf("%s: status ip_masq = %v", w.Name, m["ip_masq"])
	}
	if r := runWeft(t, w.Host, "doctor", "--run-dir", w.RunDir); !strings.Contains(r.stdout, "egress masqueraded") {
		t.Errorf("%s: weft doctor does not report the masquerade:\n%s", w.Name, r.stdout)
	}
}

// defaultGateway makes h's pods route everything through the bridge, as
// the shipped conflist does ("isDefaultGateway": true), so they can reach
// outside the overlay.
func defaultGateway(t *testing.T, h *cniHost) {
	t.Helper()
	conf := h.conf("1.1.0", map[string]any{"delegate": map[string]any{
		"isDefaultGateway": true, "ipam": map[string]any{"dataDir": filepath.Dir(h.ipamDir)}}})
	list := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": %q, "plugins": [%s]}`, h.network, conf)
	if err := os.WriteFile(filepath.Join(h.netDir, "10-weft.conflist"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
}
