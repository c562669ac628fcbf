package e2e

// A pod reaches another node's host address: its underlay IP, where an API
// server, a kubelet, a NodePort or a hostNetwork pod listens. The pod's
// packets leave its host by the underlay, unmasqueraded; the other host's
// replies carry its underlay address as source and come back through weft,
// which accepts that one host address from that one peer and no other.

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

func TestPodToOtherHost(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping")
	cnitool, set := needCNI(t)

	l, nodes := weftLab(t, "ph", 2, "")
	h1, h2 := nodes[0], nodes[1]
	c2 := installCNI(t, l, h2, set, cnitool)
	// The shipped conflist's: the pod's default route is its bridge.
	c2.writeConflist(map[string]any{"delegate": map[string]any{"isDefaultGateway": true}})
	p := c2.newPod("a")
	c2.add(p)

	// A TCP service on h1's underlay address, which answers with the
	// address it sees the client at.
	svc := netip.AddrPortFrom(h1.Host.Addr, 7100)
	ln := listenTCP(t, h1.Host, svc)
	ln.SetDeadline(time.Now().Add(time.Minute))
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			return // the test reports the dial's failure
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(ioTimeout))
		c.Write([]byte("hello " + c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String() + "\n"))
	}()
	c := dialTCP(t, p.Host, svc)
	c.SetDeadline(time.Now().Add(ioTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("pod %s ← %s: %v (h1 drops %v, h2 drops %v)", p.addr, svc, err, status(t, h1).Drops, status(t, h2).Drops)
	}
	// Unmasqueraded: the service saw the pod's own address, so its reply
	// went back through the overlay.
	if want := "hello " + p.addr.String() + "\n"; line != want {
		t.Fatalf("service answered %q, want %q", line, want)
	}
	if rx := peer(t, status(t, h2), h1.Name).RxPackets; rx == 0 {
		t.Fatalf("h2 received nothing from h1 through the overlay: the reply took another path")
	}
	waitPing(t, p.Host, h1.Host.Addr)

	// Any other address of h1's host is still foreign there: only the
	// underlay address it advertises passes.
	other := netip.MustParseAddr("192.168.99.1")
	if out, err := h1.Host.Run(t.Context(), "ip", "addr", "add", other.String()+"/32", "dev", "lo"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	before := status(t, h1).Drops["foreign_source"]
	from := listenUDP(t, h1.Host, netip.AddrPortFrom(other, 0))
	for range 3 {
		sendUDP(t, from, netip.AddrPortFrom(p.addr, 7000), []byte("from another host address"))
	}
	waitDrops(t, h1, map[string]uint64{"foreign_source": before + 3, "spoofed_source": 0})
	waitDrops(t, h2, map[string]uint64{"spoofed_source": 0})
}
