package e2e

// A host with two addresses on its underlay link, whose routes prefer the
// one it does not advertise as source: weft's datagrams must still leave
// from the advertised address, the one its peers know it by, or every one of
// them arrives as unknown_peer.

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

func TestMultiHomedSource(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping")
	l := newLab(t, "mh", 2)
	h1, h2 := l.Host(1), l.Host(2)
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()

	// h1 gets a second address, and its routes (the link's and the default)
	// prefer it as source.
	other := netip.AddrFrom4([4]byte{h1.Addr.As4()[0], h1.Addr.As4()[1], h1.Addr.As4()[2], 200})
	for _, cmd := range [][]string{
		{"ip", "addr", "add", netip.PrefixFrom(other, l.Underlay.Bits()).String(), "dev", h1.Link},
		{"ip", "route", "replace", l.Underlay.String(), "dev", h1.Link, "proto", "kernel", "scope", "link", "src", other.String()},
		{"ip", "route", "replace", "default", "via", l.Switch.Addr.String(), "dev", h1.Link, "src", other.String()},
	} {
		if _, err := h1.Run(ctx, cmd[0], cmd[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := h1.Run(ctx, "ip", "route", "get", h2.Addr.String())
	if err != nil || !strings.Contains(out, "src "+other.String()) {
		t.Fatalf("the kernel's source towards h2 is not %s: %v\n%s", other, err, out)
	}

	// h1 advertises its first address; h2 keys on it (its --peer).
	dir := t.TempDir()
	nodes, err := l.PrepareWeft(ctx, lab.WeftConfig{Binary: weftBin, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	nodes[0].Args = append(nodes[0].Args, "--advertise", h1.Addr.String())
	stopAtEnd(t, nodes)
	for _, n := range nodes {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, b := nodes[0], nodes[1]
	if s := status(t, a); s.Listen != netip.AddrPortFrom(h1.Addr, 6081) {
		t.Errorf("h1 listens on %s, want the advertised %s:6081", s.Listen, h1.Addr)
	}
	ping(t, a, b, 3)
	ping(t, b, a, 3)
	tcpTransfer(t, a, b, 8<<20)
	for _, w := range nodes {
		s := status(t, w)
		if d := s.Drops["unknown_peer"]; d != 0 {
			t.Errorf("%s: %d unknown_peer drops", w.Name, d)
		}
	}
	if rx := peer(t, status(t, b), a.Name).RxPackets; rx == 0 {
		t.Errorf("%s received nothing from %s", b.Name, a.Name)
	}
}
