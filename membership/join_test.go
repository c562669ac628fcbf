package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

// pending is a node whose Start runs in the background: it may wait for a
// seed for as long as the test wants.
type pending struct {
	m      *Membership
	cancel context.CancelFunc
	done   chan error // Start's error, once it returned
	subnet netip.Prefix
}

func startPending(t *testing.T, cfg Config) *pending {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pending{m: m, cancel: cancel, done: make(chan error, 1)}
	go func() {
		subnet, err := m.Start(ctx)
		p.subnet = subnet
		p.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		m.Close()
	})
	return p
}

// wait returns Start's result.
func (p *pending) wait(t *testing.T) (netip.Prefix, error) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return p.subnet, err
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return")
		return netip.Prefix{}, nil
	}
}

// started reports whether Start returned.
func (p *pending) started() bool { return len(p.done) > 0 }

// joining waits until the node reports a failed join attempt whose reason
// contains why, and checks that it claimed nothing meanwhile.
func (p *pending) joining(t *testing.T, why string) JoinStatus {
	t.Helper()
	var js JoinStatus
	testenv.WaitFor(t, 10*time.Second, "a failed join attempt saying "+why, func() bool {
		js = p.m.JoinStatus()
		return strings.Contains(js.LastError, why)
	})
	if js.Joined || p.started() || len(p.m.Leases()) != 0 {
		t.Fatalf("while joining: %+v, started %v, leases %v", js, p.started(), p.m.Leases())
	}
	return js
}

func reservePort(t *testing.T) int {
	t.Helper()
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A node whose seed does not answer claims nothing: it keeps trying, says
// why in JoinStatus, and joins as soon as the seed is up, leasing a subnet
// that is not the seed's.
func TestJoinWaitsForSeed(t *testing.T) {
	port := reservePort(t)
	seedAddr := fmt.Sprintf("127.0.0.1:%d", port)
	n1 := startPending(t, testConfig("n1", t.TempDir(), seedAddr))
	js := n1.joining(t, "connection refused")
	if len(js.Seeds) != 1 || js.Seeds[0] != seedAddr || !strings.HasPrefix(js.LastError, "no seed answered: "+seedAddr+": ") || js.Since.IsZero() {
		t.Fatalf("join status %+v", js)
	}
	testenv.WaitFor(t, 10*time.Second, "a second attempt", func() bool { return n1.m.JoinStatus().Attempts >= 2 })

	sc := testConfig("seed", t.TempDir())
	sc.GossipPort = port
	seed, err := launch(t, sc)
	if err != nil {
		t.Skipf("the reserved port was taken meanwhile: %v", err)
	}
	subnet, err := n1.wait(t)
	if err != nil {
		t.Fatal(err)
	}
	if subnet == seed.subnet || !subnet.IsValid() {
		t.Fatalf("n1 leased %s, the seed holds %s", subnet, seed.subnet)
	}
	if js := n1.m.JoinStatus(); !js.Joined || js.LastError != "" {
		t.Fatalf("after joining: %+v", js)
	}
	testenv.WaitFor(t, 10*time.Second, "the seed routing n1", func() bool {
		p, ok := seed.peer("n1")
		return ok && p.Subnet == subnet
	})
}

// A node with another gossip key never joins: it stays joining and says
// the key is probably wrong; the seed never learns of it. Ending Start's
// context stops it.
func TestJoinWrongKey(t *testing.T) {
	keyed := func(name string, key []byte, seeds ...string) Config {
		cfg := testConfig(name, t.TempDir(), seeds...)
		if key != nil {
			cfg.Keys = [][]byte{key}
		}
		return cfg
	}
	seed := mustLaunch(t, keyed("seed", gossipKey(1)))
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"another key", gossipKey(2)}, {"no key", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPending(t, keyed("stranger", tc.key, seed.seed()))
			p.joining(t, "wrong cluster key?")
			if _, ok := seed.member("stranger"); ok {
				t.Fatal("the seed learned of a node with another key")
			}
			p.cancel()
			if _, err := p.wait(t); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "wrong cluster key?") {
				t.Fatalf("Start ended while joining: %v", err)
			}
		})
	}
}

// A restarted node whose --join names nobody who answers joins through the
// members its lease file remembers, and gets its subnet back.
func TestJoinRemembersMembers(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	dir := t.TempDir()
	n1 := mustLaunch(t, testConfig("n1", dir, seed.seed()))
	want := n1.subnet
	if err := n1.stop(); err != nil {
		t.Fatal(err)
	}
	typo := fmt.Sprintf("127.0.0.1:%d", reservePort(t))
	cfg := testConfig("n1", dir, typo)
	logs := &logBuf{}
	cfg.Log = slog.New(slog.NewTextHandler(logs, nil))
	p := startPending(t, cfg)
	subnet, err := p.wait(t)
	if err != nil || subnet != want {
		t.Fatalf("restarted n1 with a dead seed: %s, %v; want its old %s", subnet, err, want)
	}
	if js := p.m.JoinStatus(); len(js.Known) != 1 || js.Known[0] != seed.seed() {
		t.Fatalf("remembered members: %+v, want the seed's %s", js.Known, seed.seed())
	}
	// The log names the member it joined through, not the dead --join seed.
	if logs.count("joined the cluster", "through=\"[seed ("+seed.seed()) != 1 {
		t.Fatalf("join log does not name the seed it joined through:\n%s", logs)
	}
}

func TestDescribeJoinError(t *testing.T) {
	for _, tc := range []struct{ err, want string }{
		{"1 error occurred:\n\t* failed to join 10.0.0.1:7946: dial tcp 10.0.0.1:7946: connect: connection refused\n\n",
			"no seed answered: 10.0.0.1:7946: connection refused"},
		{"2 errors occurred:\n\t* failed to join 10.0.0.1:7946: no installed keys could decrypt the message\n\t* failed to join a:7946: dial tcp: lookup a: no such host\n\n",
			"no seed answered: 10.0.0.1:7946: wrong cluster key? (no installed keys could decrypt the message); a:7946: name does not resolve (no such host)"},
		{"1 error occurred:\n\t* failed to join 10.0.0.1:7946: dial tcp 10.0.0.1:7946: i/o timeout\n\n",
			"no seed answered: 10.0.0.1:7946: timed out"},
	} {
		if got := describeJoinError(errors.New(tc.err)); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
}
