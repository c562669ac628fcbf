package doctor

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

// TestCheckTun runs checkTun against the loopback interface, standing in for
// the TUN and the underlay. Reading links and routes needs no privilege.
func TestCheckTun(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	if lo.Flags&net.FlagUp == 0 {
		t.Skip("lo is down in this network namespace")
	}
	if _, err := netlink.LinkByName("lo"); err != nil {
		t.Skipf("netlink cannot read links here: %v", err)
	}
	mtu := strconv.Itoa(lo.MTU)
	status := func(change func(*api.Status)) *api.Status {
		s := &api.Status{
			MTU: lo.MTU, Network: netip.MustParsePrefix("127.64.0.0/10"),
			Tun:      api.TunStatus{Name: "lo", Driver: "test"},
			Underlay: api.Underlay{Interface: "lo", Addr: netip.MustParseAddr("127.0.0.1"), MTU: lo.MTU},
		}
		change(s)
		return s
	}
	routed := func(name, subnet string, st peer.State) api.PeerStatus {
		return api.PeerStatus{Name: name, Subnet: netip.MustParsePrefix(subnet), State: st}
	}
	for _, tc := range []struct {
		name  string
		s     *api.Status
		wants []want
	}{
		{"all good", status(func(s *api.Status) {}), []want{
			{OK, "tun lo is up, MTU " + mtu + ", driver test", "", false},
			{OK, "underlay lo (127.0.0.1) has MTU " + mtu, "", false},
			{OK, "routes to 127.64.0.0/10 go through lo", "", false},
		}},
		{"tun MTU changed", status(func(s *api.Status) { s.MTU = 1400; s.Underlay.MTU = 1400 }), []want{
			{Fail, "tun lo has MTU " + mtu + ", but weft sizes packets for 1400", "ip link set lo mtu 1400", false},
			{OK, "underlay lo", "", false},
			{OK, "routes to", "", false},
		}},
		{"underlay MTU shrank", status(func(s *api.Status) { s.Underlay.MTU = lo.MTU + 1 }), []want{
			{OK, "tun lo is up", "", false},
			{Fail, "underlay lo's MTU is " + mtu + ", lower than the " + strconv.Itoa(lo.MTU+1), "restart weft", false},
			{OK, "routes to", "", false},
		}},
		{"no such tun or underlay", status(func(s *api.Status) { s.Tun.Name = "weft-nope0"; s.Underlay.Interface = "weft-nope1" }), []want{
			{Fail, "tun weft-nope0: ", "restart weft", false},
		}},
		{"missing underlay", status(func(s *api.Status) { s.Underlay.Interface = "weft-nope1" }), []want{
			{OK, "tun lo is up", "", false},
			{Fail, "underlay weft-nope1: ", "check the host's network", false},
			{OK, "routes to", "", false},
		}},
		{"peer routes", status(func(s *api.Status) {
			s.Peers = []api.PeerStatus{
				routed("h2", "127.65.0.0/16", peer.Alive),  // local table: lo
				routed("h3", "192.0.2.0/24", peer.Static),  // TEST-NET: not through lo
				routed("h4", "198.51.100.0/24", peer.Dead), // not routed: not checked
				routed("h5", "127.66.0.0/16", peer.Alive),  // lo
			}
		}), []want{
			{OK, "tun lo is up", "", false},
			{OK, "underlay lo", "", false},
			{Fail, "traffic to 192.0.2.0/24 (h3) does not go through lo", "a route that shadows 127.64.0.0/10", false},
		}},
	} {
		expect(t, tc.name, run(checkTun, tc.s), tc.wants...)
	}
}

// TestCheck runs every check; the first finding names the node.
func TestCheck(t *testing.T) {
	s := &api.Status{Name: "h1", Subnet: netip.MustParsePrefix("10.244.1.0/24"), UptimeSeconds: 61,
		Tun: api.TunStatus{Name: "weft-nope0"}}
	fs := Check(s)
	if len(fs) < 5 || fs[0].Verdict != OK || fs[0].What != "node h1 is running (subnet 10.244.1.0/24, up 1m1s)" {
		t.Fatalf("Check: %+v, want the node first and a finding from every check", fs)
	}
	var tunFailed, insecure, noPeers bool
	for _, f := range fs {
		tunFailed = tunFailed || f.Verdict == Fail && strings.HasPrefix(f.What, "tun weft-nope0: ")
		insecure = insecure || f.Verdict == Warn && strings.Contains(f.What, "--insecure")
		noPeers = noPeers || f.Verdict == Warn && f.What == "no peers"
	}
	if !tunFailed || !insecure || !noPeers {
		t.Errorf("Check: %+v; want a missing tun, --insecure and no peers among them", fs)
	}
}
