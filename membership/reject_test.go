package membership

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/peer"
)

// Broken or hostile nodes are rejected, counted, and logged once per node,
// and the cluster's routes stay as they were.
func TestRejectBadNodes(t *testing.T) {
	seed := mustLaunch(t, testConfig("seed", t.TempDir()))
	n1 := mustLaunch(t, testConfig("n1", t.TempDir(), seed.seed()))
	testenv.WaitFor(t, 10*time.Second, "seed and n1 see each other", func() bool { return seed.sees(n1) && n1.sees(seed) })

	good := func(name string) meta {
		return meta{Name: name, Network: seed.cfg.Network, Endpoint: uniqueEndpoint()}
	}
	withSubnet := func(md meta, p string) meta {
		md.Subnet = netip.MustParsePrefix(p)
		md.Address = md.Subnet.Addr()
		return md
	}
	outside := withSubnet(good("outside"), "10.99.0.0/24")
	othernet := good("othernet")
	othernet.Network = netip.MustParsePrefix("10.50.0.0/16")
	squatter := withSubnet(good("squatter"), n1.subnet.String())
	copycat := withSubnet(good("copycat"), "10.244.200.0/24")
	copycat.Endpoint = n1.cfg.DataEndpoint
	for name, b := range map[string][]byte{
		"garbage":  {0xff, 0, 1},
		"misnamed": good("someone-else").encode(),
		"outside":  outside.encode(),
		"othernet": othernet.encode(),
		"squatter": squatter.encode(),
		"copycat":  copycat.encode(),
	} {
		joinRaw(t, name, b, seed.seed())
	}

	want := map[string]uint64{"bad_meta": 4, "outside_network": 2, "wrong_network": 2, "overlap": 1, "duplicate_endpoint": 1}
	for _, n := range []*testNode{seed, n1} {
		testenv.WaitFor(t, 15*time.Second, n.cfg.Name+" rejects every bad node, some of them repeatedly", func() bool {
			s := n.m.Stats()
			for k, v := range want {
				if s[k] < v {
					return false
				}
			}
			return true
		})
	}
	for _, name := range []string{"garbage", "misnamed", "outside", "othernet", "squatter", "copycat"} {
		if got := seed.logs.count("rejected", "peer="+name+" "); got != 1 {
			t.Errorf("seed logged the rejection of %s %d times, want once:\n%s", name, got, seed.logs)
		}
	}
	if !seed.sees(n1) || !n1.sees(seed) {
		t.Errorf("routes disturbed: seed sees %v, n1 sees %v", seed.peerSet(), n1.peerSet())
	}
	if s, ok := seed.member("squatter"); !ok || s.State != peer.Alive {
		t.Errorf("squatter should be a member that is not routed: %+v", s)
	}
	if _, ok := seed.member("garbage"); ok {
		t.Error("garbage metadata made a member")
	}

	t.Run("duplicate name", func(t *testing.T) {
		dup := testConfig("n1", t.TempDir(), seed.seed())
		dup.NameConflictWait = time.Second
		_, err := launch(t, dup)
		if !errors.Is(err, ErrNameInUse) {
			t.Fatalf("second n1: %v, want ErrNameInUse", err)
		}
		if seed.m.Stats()["duplicate_name"] == 0 {
			t.Error("duplicate name not counted")
		}
		if !seed.sees(n1) || !n1.sees(seed) {
			t.Errorf("routes disturbed: seed sees %v", seed.peerSet())
		}
	})
}
