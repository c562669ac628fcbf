package e2e

// Hosts with several networks (issue 18): the trap of lab VMs, where every
// host's NAT interface has 10.0.2.15 and the default route, and the network
// the hosts share is a second one. Without --iface every node advertises
// 10.0.2.15 and the joiner must refuse, naming the member it collides with;
// with --iface by name, CIDR or can-reach the nodes join and ping.
// Default driver only: the choice of underlay does not depend on it.

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/lab/labtest"
)

// natAddr is VirtualBox's NAT address, on every host of the lab.
var natAddr = netip.MustParsePrefix("10.0.2.15/24")

func TestSharedNATAddress(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ping")
	l := labtest.New(t, lab.Config{Hosts: 2, Prefix: prefix("nat"), NAT: natAddr})
	t.Run("refused", func(t *testing.T) { natRefused(t, l) })
	for _, tc := range []struct{ name, rule string }{
		{"name", "eth0"},
		{"cidr", l.Underlay.String()},
		{"can-reach", "can-reach=" + l.Switch.Addr.String()},
	} {
		t.Run(tc.name, func(t *testing.T) { natWithIface(t, l, tc.rule) })
	}
}

// natRefused: without --iface the second node advertises the first's
// address; it exits non-zero within 30 s saying which node it collides with
// and what to do, and the first node stays up, its doctor pointing at the
// trap.
func natRefused(t *testing.T, l *lab.Lab) {
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	nodes, err := l.PrepareWeft(ctx, lab.WeftConfig{Binary: weftBin, Dir: t.TempDir(), Gossip: true})
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := nodes[0], nodes[1]
	stopAtEnd(t, nodes[:1]) // h2 is to exit by itself, non-zero
	if err := h1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s := status(t, h1)
	if s.Underlay.Interface != "nat0" || s.Underlay.Addr != natAddr.Addr() || s.Underlay.Rule != api.RuleDefaultRoute {
		t.Fatalf("h1's underlay is %+v; the lab should lure it onto nat0 by the default route", s.Underlay)
	}
	if err := h2.Launch(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h2.Proc.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("h2 still runs 30 s after it joined h1 at the same address:\n%s", h2.Proc.Output())
	}
	out := h2.Proc.Output()
	if h2.Proc.Wait() == nil {
		t.Fatalf("h2 exited 0; want a refusal:\n%s", out)
	}
	var refusal string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "weft up: ") {
			refusal = line
		}
	}
	t.Logf("h2 refused: %s", refusal)
	for _, want := range []string{`"h1"`, natAddr.Addr().String(), "--iface", "--advertise"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("h2's refusal %q lacks %q; its output:\n%s", refusal, want, out)
		}
	}
	if s := status(t, h1); !s.Up() {
		t.Errorf("h1 is %s after h2's refusal", s.State)
	}
	r := runWeft(t, h1.Host, "doctor", "--run-dir", h1.RunDir)
	t.Logf("h1's doctor:\n%s", r.stdout)
	for _, want := range []string{"10.0.2.15 (nat0) is the one VirtualBox's", "this host has 2 networks", "--iface"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("h1's doctor does not say %q:\n%s", want, r.stdout)
		}
	}
}

// natWithIface: with --iface rule both nodes take eth0, join and ping.
func natWithIface(t *testing.T, l *lab.Lab, rule string) {
	nodes := startWeftCfg(t, l, lab.WeftConfig{Gossip: true, Args: []string{"--iface", rule}})
	for _, n := range nodes {
		u := status(t, n).Underlay
		if u.Interface != "eth0" || u.Addr != n.Host.Addr || u.Rule != "--iface "+rule {
			t.Errorf("%s: underlay %+v, want eth0 %s by --iface %s", n.Name, u, n.Host.Addr, rule)
		}
	}
	text := cliStatus(t, nodes[1])
	if want := "eth0 " + nodes[1].Host.Addr.String() + " (mtu 1500, chosen by --iface " + rule + ")"; !strings.Contains(text, want) {
		t.Errorf("weft status does not say %q:\n%s", want, text)
	}
	waitPeers(t, nodes[0], nodes[1])
	waitPeers(t, nodes[1], nodes[0])
	pingAll(t, nodes)
}
