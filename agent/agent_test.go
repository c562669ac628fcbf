package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/peer"
	"github.com/weftnet/weft/subnetenv"
	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/tunnel/tunneltest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// patience bounds every wait: gossip on loopback converges in well under a
// second, so only a hang reaches it.
const patience = 20 * time.Second

// testAgent is an agent running in this process: an in-memory TUN, real
// UDP and gossip on loopback, a real control socket in a temporary run dir.
type testAgent struct {
	cfg    Config
	tun    chan *tunneltest.Device
	client *api.Client
	gossip string // host:port to --join
	done   chan error
	cancel context.CancelFunc
}

// freePort returns a port free for both TCP and UDP on loopback (gossip
// takes both).
func freePort(t *testing.T) uint16 {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return uint16(port)
		}
	}
	t.Fatal("no free port")
	return 0
}

// startAgent runs an agent named name with the cluster key key, joining
// seeds; it stops when the test ends.
func startAgent(t *testing.T, name string, key []byte, seeds ...string) *testAgent {
	t.Helper()
	return startAgentOn(t, name, key, freePort(t), seeds...)
}

// startAgentOn is startAgent with gossip on the loopback port gossipPort.
func startAgentOn(t *testing.T, name string, key []byte, gossipPort uint16, seeds ...string) *testAgent {
	t.Helper()
	a := newTestAgent(t, name, key, gossipPort, seeds...)
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- Run(ctx, a.cfg) }()
	t.Cleanup(func() { a.stop(t) })
	return a
}

// newTestAgent configures the agent startAgentOn starts.
func newTestAgent(t *testing.T, name string, key []byte, gossipPort uint16, seeds ...string) *testAgent {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Node.Name = name
	cfg.Node.Advertise = loopback
	cfg.Node.Listen = netip.AddrPortFrom(loopback, freePort(t))
	cfg.Node.Keys = [][]byte{key}
	cfg.Node.ProbeInterval = 100 * time.Millisecond
	cfg.RunDir, cfg.StateDir = t.TempDir(), t.TempDir()
	cfg.GossipPort = int(gossipPort)
	cfg.Join = seeds
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &testAgent{cfg: cfg, tun: make(chan *tunneltest.Device, 1), client: api.NewClient(cfg.RunDir),
		gossip: fmt.Sprintf("127.0.0.1:%d", cfg.GossipPort), done: make(chan error, 1)}
	a.cfg.Node.Queues = 1 // one in-memory device
	a.cfg.OpenTun = func(c tunnel.Config, _ *slog.Logger) ([]tunnel.Device, error) {
		d := tunneltest.New(c.Name, c.MTU, 8)
		a.tun <- d
		return []tunnel.Device{d}, nil
	}
	a.cfg.Gossip = func(mc *membership.Config) {
		mc.SettleWindow = 300 * time.Millisecond
		mc.LeaveTimeout = time.Second
		mc.Memberlist = func(c *memberlist.Config) {
			c.ProbeInterval, c.ProbeTimeout, c.GossipInterval = 200*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
		}
	}
	return a
}

// stop ends the agent once and checks it shut down cleanly.
func (a *testAgent) stop(t *testing.T) {
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	if err := <-a.done; err != nil {
		t.Errorf("%s: Run: %v", a.cfg.Node.Name, err)
	}
}

// status waits for the agent's control socket to answer that it is up,
// with a subnet.
func (a *testAgent) status(t *testing.T) *api.Status {
	t.Helper()
	var s *api.Status
	testenv.WaitFor(t, patience, a.cfg.Node.Name+" up on its control socket", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var err error
		s, err = a.client.Status(ctx)
		return err == nil && s.Up()
	})
	return s
}

func recv(t *testing.T, d *tunneltest.Device) []byte {
	t.Helper()
	p, err := d.Next(patience)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Two whole agents — gossip, leases, the sealed data path, the control
// socket — find each other on loopback and carry a ping both ways.
func TestTwoAgentsPing(t *testing.T) {
	key, err := encap.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "a", key)
	sa := a.status(t)
	b := startAgent(t, "b", key, a.gossip)
	sb := b.status(t)
	if sa.Subnet == sb.Subnet || !sa.Network.Contains(sb.Subnet.Addr()) {
		t.Fatalf("subnets a %s, b %s", sa.Subnet, sb.Subnet)
	}
	tunA, tunB := <-a.tun, <-b.tun
	for _, ag := range []*testAgent{a, b} {
		other := map[*testAgent]string{a: "b", b: "a"}[ag]
		testenv.WaitFor(t, patience, ag.cfg.Node.Name+" routing to "+other+" over a working path", func() bool {
			s, err := ag.client.Status(context.Background())
			return err == nil && len(s.Peers) == 1 && s.Peers[0].Name == other &&
				s.Peers[0].State == peer.Alive && s.Peers[0].Path.State == api.PathOK
		})
	}

	req := packettest.Echo4(packettest.EchoRequest, sa.Address, sb.Address, 7, 1, []byte("weft"))
	tunA.Inject(req)
	if got := recv(t, tunB); !bytes.Equal(got, req) {
		t.Fatalf("b's TUN got %x, want the echo request %x", got, req)
	}
	reply := packettest.Echo4(packettest.EchoReply, sb.Address, sa.Address, 7, 1, []byte("weft"))
	tunB.Inject(reply)
	if got := recv(t, tunA); !bytes.Equal(got, reply) {
		t.Fatalf("a's TUN got %x, want the echo reply %x", got, reply)
	}
	s := a.status(t)
	if p := s.Peers[0]; p.TxPackets != 1 || p.RxPackets != 1 || !s.Encryption.Enabled {
		t.Fatalf("a's view of b after one ping: %+v, encryption %+v", p, s.Encryption)
	}

	// subnet.env says what status says, and stopping takes it and the
	// socket away.
	env, err := subnetenv.Read(filepath.Join(a.cfg.RunDir, subnetenv.File))
	if err != nil || env.Subnet != sa.Subnet || env.MTU != sa.MTU || env.Network != sa.Network {
		t.Fatalf("subnet.env %+v (%v), status subnet %s mtu %d", env, err, sa.Subnet, sa.MTU)
	}
	a.stop(t)
	if left, _ := os.ReadDir(a.cfg.RunDir); len(left) != 0 {
		t.Fatalf("a's run dir still holds %v", left)
	}
	testenv.WaitFor(t, patience, "b seeing a leave", func() bool {
		s, err := b.client.Status(context.Background())
		return err == nil && len(s.Peers) == 1 && s.Peers[0].State == peer.Left
	})
}

// An agent that would advertise the data endpoint of a live member of
// another name stops with one line naming that member and --iface, before
// it touches the data plane; the member goes on.
func TestDuplicateEndpointRefused(t *testing.T) {
	key, err := encap.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "a", key)
	a.status(t)
	b := newTestAgent(t, "b", key, freePort(t), a.gossip)
	// The VM trap: both advertise one address. b binds another loopback
	// address, as a second host would, since both run here.
	b.cfg.Node.Advertise = a.cfg.Node.Listen.Addr()
	b.cfg.Node.Listen = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), a.cfg.Node.Listen.Port())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = Run(ctx, b.cfg)
	if ctx.Err() != nil || !errors.Is(err, membership.ErrEndpointInUse) {
		t.Fatalf("b: %v, want ErrEndpointInUse within 30 s", err)
	}
	for _, want := range []string{`"a"`, a.cfg.Node.Listen.String(), "--iface", "--advertise"} {
		if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("b's error %q: want one line with %q", err, want)
		}
	}
	select {
	case d := <-b.tun:
		t.Errorf("b opened its TUN %s before refusing", d.Name())
	default:
	}
	if s := a.status(t); s.Name != "a" {
		t.Errorf("a after b's refusal: %+v", s)
	}
}

// Two lone first agents lease the same subnet; when a third joins both, b's
// claim ranks second. Having handed out nothing, b leases another subnet
// in the same Run: a new TUN, subnet.env and status follow it, key changes
// made at runtime survive, and it routes to a and c again.
func TestAgentLeasesAgainAfterLosingSubnet(t *testing.T) {
	key, err := encap.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, b := startAgent(t, "a", key), startAgent(t, "b", key)
	sa, sb := a.status(t), b.status(t)
	if sa.Subnet != sb.Subnet {
		t.Fatalf("the premise: two lone first nodes lease one subnet; got %s and %s", sa.Subnet, sb.Subnet)
	}
	<-a.tun
	first := <-b.tun
	added, err := encap.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.AddKey(context.Background(), encap.FormatKey(added)); err != nil {
		t.Fatal(err)
	}
	startAgent(t, "c", key, a.gossip, b.gossip)

	var second *tunneltest.Device
	select {
	case second = <-b.tun:
	case <-time.After(patience):
		t.Fatal("b opened no new TUN after losing its subnet")
	}
	if second == first {
		t.Fatal("b reused its old TUN")
	}
	var s *api.Status
	testenv.WaitFor(t, patience, "b up on a new subnet, routing to a and c", func() bool {
		var err error
		s, err = b.client.Status(context.Background())
		return err == nil && s.Up() && s.Subnet != sa.Subnet && len(s.Peers) == 2 &&
			s.Peers[0].State == peer.Alive && s.Peers[1].State == peer.Alive
	})
	env, err := subnetenv.Read(filepath.Join(b.cfg.RunDir, subnetenv.File))
	if err != nil || env.Subnet != s.Subnet {
		t.Fatalf("b's subnet.env %+v (%v), status subnet %s", env, err, s.Subnet)
	}
	if ids := s.Encryption.KeyIDs; len(ids) != 2 {
		t.Fatalf("b's keys after the new lease: %v, want the one added at runtime kept", ids)
	}
	select {
	case err := <-b.done:
		t.Fatalf("b's Run ended: %v", err)
	default:
	}
}
