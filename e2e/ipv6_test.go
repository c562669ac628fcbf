package e2e

// Dual-stack overlays (issue 16): an IPv4 and an IPv6 network, over an IPv4
// underlay and over an IPv6 one.

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/lab/labtest"
	"github.com/weftnet/weft/tunnel"
)

var (
	overlayNet6  = netip.MustParsePrefix("fd00:10:244::/56")
	underlayNet6 = netip.MustParsePrefix("fd00:77::/64")
)

// dualStackLab starts weft on hosts of a lab whose underlay also has an
// IPv6 prefix, with a dual-stack overlay: statically peered, or by gossip.
func dualStackLab(t *testing.T, name string, hosts int, cfg lab.WeftConfig) (*lab.Lab, []*lab.Weft) {
	t.Helper()
	l := labtest.New(t, lab.Config{Hosts: hosts, Prefix: prefix(name), Underlay6: underlayNet6})
	cfg.Network6 = overlayNet6
	return l, startWeftCfg(t, l, cfg)
}

// checkDualStack pings both ways over both families, moves 8 MiB over TCP
// on IPv6 (sha256 checked) and checks status shows both families.
func checkDualStack(t *testing.T, nodes []*lab.Weft) {
	t.Helper()
	a, b := nodes[0], nodes[1]
	for _, w := range nodes {
		s, m := cliStatusJSON(t, w)
		if !s.Subnet6.IsValid() || s.Address6 != w.Addr6 || s.Network6 != overlayNet6 || !overlayNet6.Contains(s.Subnet6.Addr()) || m["subnet"] == nil || m["subnet6"] == nil {
			t.Fatalf("%s: status subnet %v subnet6 %v address6 %v network6 %v", w.Name, m["subnet"], s.Subnet6, s.Address6, s.Network6)
		}
		for _, p := range s.Peers {
			if !p.Subnet6.IsValid() {
				t.Errorf("%s: peer %s has no subnet6", w.Name, p.Name)
			}
		}
		text := cliStatus(t, w)
		if !strings.Contains(text, "subnet6   "+s.Subnet6.String()+"\n") {
			t.Errorf("%s: status text lacks its subnet6:\n%s", w.Name, text)
		}
		// The kernel's MLD reports when weft0 came up are multicast drops,
		// which the text leaves out, and not not_overlay ones.
		if s.Drops["not_overlay"] != 0 || strings.Contains(text, api.DropMulticast) {
			t.Errorf("%s: drops %v; status text:\n%s", w.Name, s.Drops, text)
		}
	}
	if r := runWeft(t, a.Host, "doctor", "--run-dir", a.RunDir); !strings.Contains(r.stdout, "IPv6 routes to "+overlayNet6.String()+" go through weft0") || !strings.Contains(r.stdout, "IPv6 forwarding is on") {
		t.Errorf("weft doctor on %s: exit %d\n%s%s", a.Name, r.code, r.stdout, r.stderr)
	}
	ping(t, a, b, 3)
	ping(t, b, a, 3)
	for _, pair := range [][2]*lab.Weft{{a, b}, {b, a}} {
		if err := pair[0].Host.Ping(t.Context(), pair[1].Addr6, 3); err != nil {
			t.Fatalf("ping -6 %s → %s (%s): %v", pair[0].Name, pair[1].Name, pair[1].Addr6, err)
		}
	}
	before := peer(t, status(t, b), a.Name).RxBytes
	tcpTransferTo(t, a.Host, b.Host, b.Addr6, 8<<20)
	if rx := peer(t, status(t, b), a.Name).RxBytes - before; rx < 8<<20 {
		t.Errorf("%s counted %d bytes from %s, fewer than the 8 MiB sent over IPv6", b.Name, rx, a.Name)
	}
}

// TestDualStack runs a dual-stack overlay over the IPv4 underlay with
// static peers: traffic in both families, --ip-masq of both, and
// checkRefusals6.
func TestDualStack(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping")
	_, nodes := dualStackLab(t, "ds", 3, lab.WeftConfig{Driver: tunnel.DriverWireguard, Insecure: true, Args: []string{"--ip-masq"}})
	if !strings.Contains(strings.Join(nodes[0].Args, " "), "--peer h2=10.244.2.0/24,fd00:10:244:2::/64@") {
		t.Fatalf("h1's flags: %v", nodes[0].Args)
	}
	checkDualStack(t, nodes)
	traceHost6(t, nodes[0], nodes[1])
	// h1's own overlay addresses to h2's underlay ones, outside the
	// overlay: masqueraded in both families.
	checkEgress(t, nodes[1].Host, nodes[0], nodes[0].Host, nodes[0].Addr, nodes[0].Addr6)
	checkRefusals6(t, nodes, false)
}

// TestDualStackIPv6Underlay runs the dual-stack overlay over the underlay's
// IPv6 addresses only, as TestDualStack does over IPv4: statically peered
// ([addr] endpoints) with the same checks, then by gossip over IPv6
// (--join [addr]:port). The MTU is 20 bytes less than over IPv4.
func TestDualStackIPv6Underlay(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping")
	_, nodes := dualStackLab(t, "d6", 3, lab.WeftConfig{Driver: tunnel.DriverWireguard, Insecure: true, IPv6Underlay: true})
	if !strings.Contains(strings.Join(nodes[0].Args, " "), "--peer h2=10.244.2.0/24,fd00:10:244:2::/64@[fd00:77::2]") {
		t.Fatalf("h1's flags: %v", nodes[0].Args)
	}
	checkDualStack(t, nodes)
	checkUnderlay6(t, nodes, true)
	checkRefusals6(t, nodes, true)

	t.Run("gossip", func(t *testing.T) {
		_, nodes := dualStackLab(t, "g6", 2, lab.WeftConfig{Driver: tunnel.DriverWireguard, Gossip: true, IPv6Underlay: true})
		if !strings.Contains(strings.Join(nodes[1].Args, " "), "--join [fd00:77::1]:7946") {
			t.Fatalf("h2's flags: %v", nodes[1].Args)
		}
		checkDualStack(t, nodes)
		checkUnderlay6(t, nodes, false)
	})
}

// checkUnderlay6 checks that the first node reaches the second at its IPv6
// underlay endpoint and has the MTU an IPv6 underlay leaves: the lab's
// 1500-byte wire less IPv6 and UDP (48 bytes, 20 more than over IPv4) and
// the encapsulation (GENEVE, and with sealing its option and tag).
func checkUnderlay6(t *testing.T, nodes []*lab.Weft, insecure bool) {
	t.Helper()
	s := status(t, nodes[0])
	p := peer(t, s, nodes[1].Name)
	if p.Endpoint != netip.AddrPortFrom(nodes[1].Host.Addr6, encap.Port) || p.Subnet6 != nodes[1].Subnet6 {
		t.Errorf("peer %s: endpoint %s subnet6 %s; want [%s]:%d and %s", p.Name, p.Endpoint, p.Subnet6, nodes[1].Host.Addr6, encap.Port, nodes[1].Subnet6)
	}
	overhead := encap.SealedOverhead
	if insecure {
		overhead = encap.HeaderLen
	}
	if want := 1500 - 48 - overhead; s.Underlay.Addr != nodes[0].Host.Addr6 || s.MTU != want {
		t.Errorf("underlay %s, MTU %d; want %s and %d", s.Underlay.Addr, s.MTU, nodes[0].Host.Addr6, want)
	}
}

// checkRefusals6 checks, on three statically peered --insecure nodes, what
// an IPv6 overlay refuses: a packet over the MTU is answered with Packet
// Too Big at the node's MTU, and an IPv6 source a peer spoofs is dropped
// and counted. The third node turns rogue and sends from its underlay
// endpoint, the IPv6 one with ipv6Underlay.
func checkRefusals6(t *testing.T, nodes []*lab.Weft, ipv6Underlay bool) {
	t.Helper()
	h1, h2, h3 := nodes[0], nodes[1], nodes[2]
	wire := func(w *lab.Weft) netip.AddrPort {
		if ipv6Underlay {
			return netip.AddrPortFrom(w.Host.Addr6, encap.Port)
		}
		return netip.AddrPortFrom(w.Host.Addr, encap.Port)
	}

	// Packet Too Big: with weft0's MTU raised by hand, the kernel sends
	// what weft cannot carry, and weft answers as the destination.
	ctx := t.Context()
	mtu := status(t, h1).MTU
	if out, err := h1.Host.Run(ctx, "ip", "link", "set", "weft0", "mtu", "1500"); err != nil {
		t.Fatalf("raise weft0's MTU: %v\n%s", err, out)
	}
	out, err := h1.Host.Run(ctx, "ping", "-6", "-n", "-M", "do", "-s", "1452", "-c", "1", "-W", "2", "-w", "3", h2.Addr6.String())
	if err == nil {
		t.Fatalf("a 1500-byte IPv6 ping passed an overlay MTU of %d:\n%s", mtu, out)
	}
	if !strings.Contains(out, "From "+h2.Addr6.String()) || !strings.Contains(out, fmt.Sprintf("mtu=%d", mtu)) {
		t.Errorf("ping -6 output lacks Packet Too Big from %s with mtu=%d:\n%s", h2.Addr6, mtu, out)
	}
	if n := status(t, h1).Drops["too_big"]; n < 1 {
		t.Errorf("too_big = %d after an IPv6 packet over the MTU", n)
	}

	// h3 turns rogue: it sends IPv6 from h1's subnet, then from its own.
	if err := h3.Stop(); err != nil {
		t.Fatalf("stop weft on h3: %v", err)
	}
	rogue := listenUDP(t, h3.Host, wire(h3))
	sinkAddr := netip.AddrPortFrom(h2.Addr6, 7000)
	sink := listenUDP(t, h2.Host, sinkAddr)
	spoofed := netip.AddrPortFrom(h1.Addr6.Next(), 4000)
	own := netip.AddrPortFrom(h3.Addr6.Next(), 4000)
	before := status(t, h2).Drops["spoofed_source"]
	for range 2 {
		pkt := packettest.WithUDPChecksum(packettest.UDP6(spoofed, sinkAddr, []byte("spoofed")))
		sendUDP(t, rogue, wire(h2), geneve(1, encap.ProtoIPv6, pkt))
	}
	waitDrops(t, h2, map[string]uint64{"spoofed_source": before + 2})
	pkt := packettest.WithUDPChecksum(packettest.UDP6(own, sinkAddr, []byte("from h3's IPv6 subnet")))
	sendUDP(t, rogue, wire(h2), geneve(1, encap.ProtoIPv6, pkt))
	expectDatagram(t, sink, "from h3's IPv6 subnet")
}

// TestCNIDualStack: weft-cni on dual-stack nodes gives each pod an address
// of each family, and pods reach each other, on one host and across, over
// both.
func TestCNIDualStack(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping")
	cnitool, set := needCNI(t)
	l, nodes := dualStackLab(t, "dc", 2, lab.WeftConfig{})
	h1, h2 := installCNI(t, l, nodes[0], set, cnitool), installCNI(t, l, nodes[1], set, cnitool)
	a1, b1, a2 := h1.newPod("a"), h1.newPod("b"), h2.newPod("a")
	for _, p := range []*pod{a1, b1, a2} {
		p.host.add(p)
	}
	for _, hop := range []struct {
		from *pod
		to   *pod
	}{{a1, a2}, {a2, a1}, {a1, b1}, {a2, b1}} {
		waitPing(t, hop.from.Host, hop.to.addr)
		waitPing(t, hop.from.Host, hop.to.addr6)
	}
	waitPing(t, a2.Host, nodes[0].Addr6)                 // the other host's overlay address
	waitPing(t, a1.Host, nodes[0].Subnet6.Addr().Next()) // its gateway on cni0
	tcpTransferTo(t, a1.Host, a2.Host, a2.addr6, 4<<20)  // pod to pod over IPv6
}

// traceHost6 runs weft trace --host with a's IPv6 address on b while a
// pings b over both families: only the IPv6 echoes show.
func traceHost6(t *testing.T, a, b *lab.Weft) {
	t.Helper()
	tr := startTrace(t, b, "--host", a.Addr6.String())
	ping(t, a, b, 2)
	if err := a.Host.Ping(t.Context(), b.Addr6, 2); err != nil {
		t.Fatal(err)
	}
	in := "icmpv6 " + a.Addr6.String() + " > " + b.Addr6.String()
	if err := testenv.Poll(t.Context(), waitTimeout, "trace lines", func() error {
		if n := strings.Count(tr.Output(), in); n < 2 {
			return fmt.Errorf("%d lines with %q", n, in)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v; the trace:\n%s", err, tr.Output())
	}
	if strings.Contains(tr.Output(), a.Addr.String()+" >") {
		t.Fatalf("--host %s showed IPv4 packets:\n%s", a.Addr6, tr.Output())
	}
	if err := tr.Stop(syscall.SIGINT, waitTimeout); err != nil {
		t.Fatalf("weft trace did not stop cleanly: %v\n%s", err, tr.Output())
	}
}
