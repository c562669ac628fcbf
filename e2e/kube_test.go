package e2e

// weft --kube against a real control plane (issue 14): etcd, kube-apiserver
// and kube-controller-manager (nodeipam) on their own lab host; three Nodes
// registered as kubelets would; weft agents on three hosts, authenticated
// as weft's service account with only the RBAC that the manifest grants.

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
)

// kubeTimeout bounds the control plane's start and the cluster settling
// (podCIDRs, watches); a limit, not a speed requirement.
const kubeTimeout = 2 * time.Minute

const manifest = "../deploy/kubernetes/weft.yaml"

func TestKube(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping", "nft")
	testenv.Need(t, lab.RequireKube())
	cnitool, plugins := needCNI(t)

	// h1..h3 run weft, h4 the control plane; h5 is outside the overlay.
	l := newLab(t, "kube", 5)
	cp := startControlPlane(t, l, l.Host(4))
	client := kubeClient(t, cp)

	// weft on h1..h3 will run with --kube --kubeconfig, as the service
	// account; PrepareWeft makes the cluster key.
	dir := t.TempDir()
	prepared, err := l.PrepareWeft(t.Context(), lab.WeftConfig{Binary: weftBin, Dir: dir, Kubeconfig: cp.WeftKubeconfig, Args: []string{"--ip-masq"}})
	if err != nil {
		t.Fatal(err)
	}
	nodes := prepared[:3]

	// The install steps of the manifest's header: namespace and key Secret,
	// then the manifest, which passes the API server's own validation.
	// Applying it for real creates the RBAC the agents run with.
	kubectl(t, cp, "create", "namespace", "weft-system")
	kubectl(t, cp, "-n", "weft-system", "create", "secret", "generic", "weft-cluster-key", "--from-file=cluster.key="+filepath.Join(dir, "cluster.key"))
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

	// Three Nodes, registered as kubelets do; nodeipam gives each a podCIDR.
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
	podCIDRs := waitPodCIDRs(t, client, hosts)

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
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// Each took exactly its Node's podCIDR and lists the others by Node
	// name, with the endpoints they announced on their Nodes.
	for _, w := range nodes {
		if w.Subnet != podCIDRs[w.Name] {
			t.Errorf("%s: subnet %s, its Node's podCIDR is %s", w.Name, w.Subnet, podCIDRs[w.Name])
		}
	}
	for _, w := range nodes {
		waitKubePeers(t, w, nodes, "")
		s, _ := cliStatusJSON(t, w)
		for _, p := range s.Peers {
			if p.Subnet != podCIDRs[p.Name] || p.Endpoint != netip.AddrPortFrom(l.Host(hostIndex(p.Name)).Addr, 6081) {
				t.Errorf("%s: peer %+v: want subnet %s and endpoint %s:6081", w.Name, p, podCIDRs[p.Name], l.Host(hostIndex(p.Name)).Addr)
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
	}

	checkEgress(t, l.Host(5), nodes[0], pods[0].Host, pods[0].addr)

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
	if out, err := nodes[1].Host.Run(t.Context(), "nft", "list", "table", "ip", "weft"); err != nil {
		t.Fatalf("--ip-masq table missing while weft runs: %v\n%s", err, out)
	}
	if err := nodes[1].Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := nodes[1].Host.Run(t.Context(), "nft", "list", "table", "ip", "weft"); err == nil {
		t.Errorf("--ip-masq table left after a clean stop:\n%s", out)
	}
}

// startControlPlane starts the control plane on h, stopped when the test
// ends (after the weft nodes, which are registered later); its output goes
// to the log of a failed test.
func startControlPlane(t *testing.T, l *lab.Lab, h *lab.Host) *lab.ControlPlane {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), kubeTimeout)
	defer cancel()
	cp, err := l.StartControlPlane(ctx, h, lab.ControlPlaneConfig{Dir: t.TempDir()})
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

// waitPodCIDRs waits until every host's Node has a podCIDR and returns them
// by Node name.
func waitPodCIDRs(t *testing.T, client kubernetes.Interface, hosts []*lab.Host) map[string]netip.Prefix {
	t.Helper()
	cidrs := map[string]netip.Prefix{}
	err := testenv.Poll(t.Context(), kubeTimeout, "podCIDRs from kube-controller-manager", func() error {
		for _, h := range hosts {
			n, err := client.CoreV1().Nodes().Get(t.Context(), h.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if n.Spec.PodCIDR == "" {
				return fmt.Errorf("Node %s has no podCIDR", h.Name)
			}
			cidrs[h.Name] = netip.MustParsePrefix(n.Spec.PodCIDR)
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
