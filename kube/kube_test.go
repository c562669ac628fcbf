package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
)

const waitTimeout = 10 * time.Second

func node(name, podCIDR, endpoint string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: podCIDR}}
	if podCIDR != "" {
		n.Spec.PodCIDRs = []string{podCIDR}
	}
	if endpoint != "" {
		n.Annotations = map[string]string{AnnotationEndpoint: endpoint}
	}
	return n
}

// start makes a Kube for node "a" over a fake clientset holding objs and
// starts its informer.
func start(t *testing.T, objs ...*corev1.Node) (*Kube, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	for _, o := range objs {
		if _, err := client.CoreV1().Nodes().Create(t.Context(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	k, err := NewForClient(client, Config{
		NodeName: "a",
		Announce: Announcement{Endpoint: netip.MustParseAddrPort("192.0.2.1:6081"), KeyID: "7", Version: "test"},
		Log:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return k, client
}

// Subnet waits for the Node to exist and to get a podCIDR, saying why.
func TestSubnetWaits(t *testing.T) {
	k, client := start(t)
	reasons := make(chan string, 10)
	got := make(chan netip.Prefix, 1)
	go func() {
		p, err := k.Subnet(t.Context(), func(r string) { reasons <- r })
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	expectReason(t, reasons, "to exist")
	if _, err := client.CoreV1().Nodes().Create(t.Context(), node("a", "", ""), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectReason(t, reasons, "--allocate-node-cidrs")
	n := node("a", "10.244.3.0/24", "")
	if _, err := client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != netip.MustParsePrefix("10.244.3.0/24") {
			t.Fatalf("subnet %s, want 10.244.3.0/24", p)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Subnet did not return after the podCIDR was set")
	}
}

func expectReason(t *testing.T, reasons chan string, want string) {
	t.Helper()
	select {
	case r := <-reasons:
		if !strings.Contains(r, want) {
			t.Fatalf("reason %q, want one mentioning %q", r, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no reason mentioning %q", want)
	}
}

// Subnet ends with ctx, naming what it waited for.
func TestSubnetCanceled(t *testing.T) {
	k, _ := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := k.Subnet(ctx, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `Node "a"`) {
		t.Fatalf("err %v, want a deadline naming the Node", err)
	}
}

// runPeers runs k as a peer source and returns the peer sets it publishes.
func runPeers(t *testing.T, k *Kube) (<-chan []peer.Info, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	sets := make(chan []peer.Info, 100)
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx, func(p []peer.Info) { sets <- p }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return sets, done
}

// waitPeers waits for a published peer set that reads as want.
func waitPeers(t *testing.T, sets <-chan []peer.Info, want string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	last := "(none)"
	for {
		select {
		case s := <-sets:
			if last = fmt.Sprint(s); last == want {
				return
			}
		case <-timeout:
			t.Fatalf("peer set never became %s; last %s", want, last)
		}
	}
}

// Peers are the other weft Nodes with a podCIDR, from the watch: added,
// changed and deleted Nodes show up in the next set.
func TestPeers(t *testing.T) {
	k, client := start(t,
		node("a", "10.244.1.0/24", ""),
		node("b", "10.244.2.0/24", "192.0.2.2:6081"),
		node("c", "", "192.0.2.3:6081"),           // no podCIDR yet
		node("d", "10.244.4.0/24", ""),            // not running weft
		node("e", "10.244.5.0/24", "not-an-addr"), // broken annotation
		node("f", "10.244.6.0/24", "[fd00::6]:7000"),
	)
	if _, err := k.Subnet(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	sets, _ := runPeers(t, k)
	waitPeers(t, sets, "[{b 10.244.2.0/24 invalid Prefix 192.0.2.2:6081 alive 0001-01-01 00:00:00 +0000 UTC} {f 10.244.6.0/24 invalid Prefix [fd00::6]:7000 alive 0001-01-01 00:00:00 +0000 UTC}]")

	// Run announced this node on its own Node.
	err := testenv.Poll(t.Context(), waitTimeout, "annotations on Node a", func() error {
		n, err := client.CoreV1().Nodes().Get(t.Context(), "a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := map[string]string{AnnotationEndpoint: "192.0.2.1:6081", AnnotationKeyID: "7", AnnotationVersion: "test"}
		for key, v := range want {
			if n.Annotations[key] != v {
				return fmt.Errorf("annotations %v, want %v", n.Annotations, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	c := node("c", "10.244.3.0/24", "192.0.2.3:6081")
	if _, err := client.CoreV1().Nodes().Update(t.Context(), c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Nodes().Delete(t.Context(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, sets, "[{c 10.244.3.0/24 invalid Prefix 192.0.2.3:6081 alive 0001-01-01 00:00:00 +0000 UTC} {f 10.244.6.0/24 invalid Prefix [fd00::6]:7000 alive 0001-01-01 00:00:00 +0000 UTC}]")
}

// Someone else's edit of this node's annotations is undone: Run owns them.
func TestReannounce(t *testing.T) {
	k, client := start(t, node("a", "10.244.1.0/24", ""))
	if _, err := k.Subnet(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	runPeers(t, k)
	endpoint := func() error {
		n, err := client.CoreV1().Nodes().Get(t.Context(), "a", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := n.Annotations[AnnotationEndpoint]; got != "192.0.2.1:6081" {
			return fmt.Errorf("endpoint annotation %q", got)
		}
		return nil
	}
	if err := testenv.Poll(t.Context(), waitTimeout, "announced", endpoint); err != nil {
		t.Fatal(err)
	}
	n := node("a", "10.244.1.0/24", "192.0.2.99:1")
	if _, err := client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.Poll(t.Context(), waitTimeout, "announced again", endpoint); err != nil {
		t.Fatal(err)
	}
}

// A node cannot move subnet under its pods: a new podCIDR stops Run.
func TestPodCIDRChanged(t *testing.T) {
	k, client := start(t, node("a", "10.244.1.0/24", ""))
	if _, err := k.Subnet(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- k.Run(t.Context(), func([]peer.Info) {}) }()
	n := node("a", "10.244.9.0/24", "")
	if _, err := client.CoreV1().Nodes().Update(t.Context(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrPodCIDRChanged) {
			t.Fatalf("Run: %v, want ErrPodCIDRChanged", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run kept going on a moved podCIDR")
	}
}

func TestPeerOf(t *testing.T) {
	deleting := node("x", "10.244.1.0/24", "192.0.2.1:6081")
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	for _, tc := range []struct {
		n    *corev1.Node
		want string
	}{
		{node("x", "10.244.1.0/24", "192.0.2.1:6081"), ""},
		{node("x", "10.244.1.0/24", "[::ffff:192.0.2.1]:6081"), ""},
		{node("x", "10.244.1.0/24", ""), "not a weft node"},
		{node("x", "", "192.0.2.1:6081"), "no podCIDR yet"},
		{deleting, "being deleted"},
		{node("x", "10.244.1.0/24", "192.0.2.1"), "want IP:PORT"},
		{node("x", "10.244.1.0/24", "192.0.2.1:0"), "want IP:PORT"},
		{node("x", "10.244.1.1/24", "192.0.2.1:6081"), "not a network prefix"},
	} {
		p, problem := PeerOf(tc.n)
		if !strings.Contains(problem, tc.want) || (tc.want == "") != (problem == "") {
			t.Errorf("%v %v: problem %q, want %q", tc.n.Spec.PodCIDR, tc.n.Annotations, problem, tc.want)
		}
		if problem == "" && (p.Endpoint.String() != "192.0.2.1:6081" || p.State != peer.Alive || p.Name != "x") {
			t.Errorf("peer %+v", p)
		}
	}
}
