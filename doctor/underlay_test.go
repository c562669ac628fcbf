package doctor

import (
	"net/netip"
	"testing"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

func TestCheckUnderlay(t *testing.T) {
	cand := func(name, addr string) api.Candidate {
		return api.Candidate{Interface: name, Addr: netip.MustParseAddr(addr)}
	}
	vm := []api.Candidate{cand("enp0s3", "10.0.2.15"), cand("enp0s8", "192.168.56.11")}
	under := func(name, addr, rule string, cs ...api.Candidate) api.Underlay {
		return api.Underlay{Interface: name, Addr: netip.MustParseAddr(addr), Rule: rule, Why: "why " + rule, Candidates: cs}
	}
	peerAt := func(name, ep string, st peer.State) api.PeerStatus {
		return api.PeerStatus{Name: name, Endpoint: netip.MustParseAddrPort(ep), State: st}
	}
	for _, tc := range []struct {
		name  string
		s     api.Status
		wants []want
	}{
		{"chosen by --iface", api.Status{Underlay: under("enp0s8", "192.168.56.11", "--iface enp0s8", vm...)},
			[]want{{OK, "underlay enp0s8 192.168.56.11, why --iface enp0s8", "", false}}},
		{"one network", api.Status{Underlay: under("eth0", "192.0.2.1", api.RuleDefaultRoute, cand("eth0", "192.0.2.1"))},
			[]want{{OK, "underlay eth0 192.0.2.1", "", false}}},
		{"VM trap", api.Status{Underlay: under("enp0s3", "10.0.2.15", api.RuleDefaultRoute, vm...)}, []want{
			{Warn, "10.0.2.15 (enp0s3) is the one VirtualBox's and QEMU's NAT give every VM", "--iface", false},
			{Warn, "this host has 2 networks (enp0s3 10.0.2.15, enp0s8 192.168.56.11) and only the default route chose enp0s3", "--iface enp0s3", false},
		}},
		{"10.0.2.15 given by --advertise", api.Status{Underlay: under("enp0s3", "10.0.2.15", api.RuleAdvertise, vm...)}, []want{
			{Warn, "10.0.2.15 (enp0s3) is the one", "--iface", false},
		}},
		{"link-local", api.Status{Underlay: under("eth1", "169.254.3.4", api.RuleAdvertise)}, []want{
			{Warn, "169.254.3.4 (eth1) is link-local", "--advertise", false},
		}},
		{"a peer at our address", api.Status{Underlay: under("eth0", "192.0.2.1", "--iface eth0"), Peers: []api.PeerStatus{
			peerAt("h2", "192.0.2.2:6081", peer.Alive),
			peerAt("h3", "192.0.2.1:7000", peer.Alive),
			peerAt("h4", "192.0.2.1:6081", peer.Dead), // gone: not live
		}}, []want{
			{Warn, "peer h3 advertises 192.0.2.1 as well", "here and on h3", false},
		}},
	} {
		expect(t, tc.name, run(checkUnderlay, &tc.s), tc.wants...)
	}
}
