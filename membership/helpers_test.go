package membership

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/weftnet/weft/peer"
)

// fastTiming makes failure detection take about a second on loopback while
// staying clear of false suspicions under the race detector.
func fastTiming(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.SuspicionMult = 2
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = time.Second
	c.GossipToTheDeadTime = 2 * time.Second
}

var nextEndpoint atomic.Uint32

func uniqueEndpoint() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+nextEndpoint.Add(1)))
}

// logBuf keeps log lines so tests can check what was logged and how often.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, strings.TrimSpace(string(p)))
	l.mu.Unlock()
	return len(p), nil
}

// count returns how many lines contain every one of subs.
func (l *logBuf) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func testConfig(name, dir string, seeds ...string) Config {
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.Advertise = netip.MustParseAddr("127.0.0.1")
	cfg.GossipPort = 0
	cfg.Join = seeds
	cfg.DataEndpoint = uniqueEndpoint()
	cfg.StateDir = dir
	cfg.SettleWindow = 300 * time.Millisecond
	cfg.JoinRetry = 100 * time.Millisecond
	cfg.JoinRetryMax = 500 * time.Millisecond
	cfg.RejoinInterval = time.Second
	cfg.NameConflictWait = 5 * time.Second
	cfg.LeaveTimeout = 2 * time.Second
	cfg.Memberlist = fastTiming
	return cfg
}

// testNode is a started Membership whose Run records every peer set.
type testNode struct {
	m      *Membership
	cfg    Config
	subnet netip.Prefix
	logs   *logBuf
	peers  atomic.Pointer[[]peer.Info]
	calls  atomic.Int64
	cancel context.CancelFunc
	done   chan error
}

// launch creates, starts and runs a node; it is safe from any goroutine.
// The node is closed by t.Cleanup even when Start fails.
func launch(t testing.TB, cfg Config) (*testNode, error) {
	tn := &testNode{cfg: cfg, logs: &logBuf{}, done: make(chan error, 1)}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(tn.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		tn.cfg.Log = cfg.Log
	}
	m, err := New(cfg)
	if err != nil {
		return nil, err
	}
	tn.m = m
	t.Cleanup(func() { tn.stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	subnet, err := m.Start(ctx)
	cancel()
	if err != nil {
		return tn, err
	}
	tn.subnet = subnet
	rctx, rcancel := context.WithCancel(context.Background())
	tn.cancel = rcancel
	go func() {
		tn.done <- m.Run(rctx, func(ps []peer.Info) {
			tn.peers.Store(&ps)
			tn.calls.Add(1)
		})
	}()
	return tn, nil
}

func mustLaunch(t testing.TB, cfg Config) *testNode {
	t.Helper()
	tn, err := launch(t, cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Name, err)
	}
	return tn
}

// stop ends Run (which leaves the cluster), or closes a node that never ran.
func (tn *testNode) stop() error {
	if tn.cancel == nil {
		return tn.m.Close()
	}
	tn.cancel()
	select {
	case err := <-tn.done:
		tn.done <- err // keep it for a second stop
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: Run did not return", tn.cfg.Name)
	}
}

// kill stops the node as a crash does: no leave message, no final save.
func (tn *testNode) kill() {
	tn.m.closeOnce.Do(func() { tn.m.closeErr = tn.m.shutdown(false) })
}

func (tn *testNode) seed() string { return tn.m.GossipAddr().String() }

// peerSet is the routed part of the last peer set Run delivered: alive
// members (gone ones ride along for status only).
func (tn *testNode) peerSet() []peer.Info {
	var routed []peer.Info
	for _, p := range tn.allPeers() {
		if p.State.Routable() {
			routed = append(routed, p)
		}
	}
	return routed
}

// allPeers is the last peer set Run delivered, gone members included.
func (tn *testNode) allPeers() []peer.Info {
	if p := tn.peers.Load(); p != nil {
		return *p
	}
	return nil
}

func (tn *testNode) peer(name string) (peer.Info, bool) {
	for _, p := range tn.peerSet() {
		if p.Name == name {
			return p, true
		}
	}
	return peer.Info{}, false
}

func (tn *testNode) member(name string) (MemberStatus, bool) {
	for _, s := range tn.m.Members() {
		if s.Name == name {
			return s, true
		}
	}
	return MemberStatus{}, false
}

func (tn *testNode) hasLease(name string) bool {
	return slices.ContainsFunc(tn.m.Leases(), func(l Lease) bool { return l.Name == name })
}

// sees reports whether tn's peer set is exactly others, with their subnets
// and endpoints.
func (tn *testNode) sees(others ...*testNode) bool {
	ps := tn.peerSet()
	if len(ps) != len(others) {
		return false
	}
	for _, o := range others {
		p, ok := tn.peer(o.cfg.Name)
		if !ok || p.Subnet != o.subnet || p.Endpoint != o.cfg.DataEndpoint {
			return false
		}
	}
	return true
}

// rawNode is a bare memberlist speaking weft's label with crafted metadata,
// to play a broken or hostile node.
type rawNode struct{ meta []byte }

func (r rawNode) NodeMeta(int) []byte           { return r.meta }
func (rawNode) NotifyMsg([]byte)                {}
func (rawNode) GetBroadcasts(int, int) [][]byte { return nil }
func (rawNode) LocalState(bool) []byte          { return nil }
func (rawNode) MergeRemoteState([]byte, bool)   {}
func joinRaw(t *testing.T, name string, meta []byte, seed string) *memberlist.Memberlist {
	t.Helper()
	c := memberlist.DefaultLocalConfig()
	c.Name, c.Label = name, label
	c.BindAddr, c.BindPort, c.AdvertisePort = "127.0.0.1", 0, 0
	c.Delegate = rawNode{meta}
	c.Logger = log.New(io.Discard, "", 0)
	fastTiming(c)
	c.PushPullInterval = 300 * time.Millisecond
	ml, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Shutdown() })
	if _, err := ml.Join([]string{seed}); err != nil {
		t.Fatalf("raw node %s: join: %v", name, err)
	}
	return ml
}
