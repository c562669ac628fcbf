package e2e

// Traffic across the overlay: ping between every pair of hosts and what
// `weft status` says about it, a large TCP transfer, UDP echo at every size up
// to the MTU, the MTU's edge (the kernel's and weft's own refusal), and
// destinations no node holds.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// wireMTU is the TUN MTU on a lab's 1500-byte underlay: less the outer IPv4
// (20) and UDP (8) headers and the sealed GENEVE header and tag (48).
const wireMTU = 1500 - 20 - 8 - encap.SealedOverhead

// statusKeys are the JSON keys `weft status --json` promises.
var (
	statusKeys = []string{"name", "address", "subnet", "network", "mtu", "peers", "drops", "offloads"}
	peerKeys   = []string{"name", "subnet", "endpoint", "state", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes"}
	// Some drop reasons every status lists, zero or not.
	dropKeys = []string{"foreign_source", "too_big", "unknown_peer", "spoofed_source", "short", "bad_version", "wrong_network"}
)

func TestPingAndStatus(t *testing.T) {
	forEachDriver(t, []string{"ping"}, func(t *testing.T, driver, tag string) {
		for _, hosts := range []int{2, 3} {
			t.Run(fmt.Sprintf("hosts=%d", hosts), func(t *testing.T) {
				_, nodes := weftLab(t, fmt.Sprintf("ps%d%s", hosts, tag), hosts, driver)
				var wg sync.WaitGroup
				for _, a := range nodes {
					for _, b := range nodes {
						if a != b {
							wg.Go(func() {
								if err := a.Host.Ping(t.Context(), b.Addr, 3); err != nil {
									t.Errorf("ping %s → %s (%s): %v", a.Name, b.Name, b.Addr, err)
								}
							})
						}
					}
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				for _, n := range nodes {
					checkStatus(t, n, nodes)
				}
			})
		}
	})
}

// checkStatus checks what `weft status`, JSON and text, says about w after
// every node pinged every other.
func checkStatus(t *testing.T, w *lab.Weft, nodes []*lab.Weft) {
	t.Helper()
	s, m := cliStatusJSON(t, w)
	for _, k := range statusKeys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: status JSON lacks %q: %v", w.Name, k, m)
		}
	}
	if a, ok := m["address"].(string); !ok || a != w.Addr.String() {
		t.Errorf("%s: address %#v, want the bare IP %q", w.Name, m["address"], w.Addr)
	}
	if s.Name != w.Name || s.Subnet != w.Subnet || s.Network != overlayNet || s.MTU != wireMTU {
		t.Errorf("%s: status name %q subnet %v network %v mtu %d; want %q %v %v %d",
			w.Name, s.Name, s.Subnet, s.Network, s.MTU, w.Name, w.Subnet, overlayNet, wireMTU)
	}
	if _, ok := m["offloads"].(map[string]any); !ok {
		t.Errorf("%s: offloads is %#v, want an object", w.Name, m["offloads"])
	}
	drops, ok := m["drops"].(map[string]any)
	if !ok {
		t.Errorf("%s: drops is %#v, want an object", w.Name, m["drops"])
	}
	for _, k := range dropKeys {
		if _, ok := drops[k].(float64); !ok {
			t.Errorf("%s: drops[%q] is %#v, want a number", w.Name, k, drops[k])
		}
	}
	peers, _ := m["peers"].([]any)
	if len(peers) != len(nodes)-1 || len(s.Peers) != len(nodes)-1 {
		t.Fatalf("%s: %d peers, want %d: %v", w.Name, len(peers), len(nodes)-1, m["peers"])
	}
	for _, p := range peers {
		obj, _ := p.(map[string]any)
		for _, k := range peerKeys {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s: peer %v lacks %q", w.Name, p, k)
			}
		}
	}

	text := cliStatus(t, w)
	for _, o := range nodes {
		if o == w {
			continue
		}
		p := peer(t, &s, o.Name)
		wantEP := netip.AddrPortFrom(o.Host.Addr, encap.Port)
		if p.Subnet != o.Subnet || p.Endpoint != wantEP || p.State != "static" {
			t.Errorf("%s: peer %s: subnet %v endpoint %v state %q; want %v %v static",
				w.Name, o.Name, p.Subnet, p.Endpoint, p.State, o.Subnet, wantEP)
		}
		if p.RxPackets == 0 || p.TxPackets == 0 || p.RxBytes == 0 || p.TxBytes == 0 {
			t.Errorf("%s: peer %s counted no traffic after pings: %+v", w.Name, o.Name, p)
		}
		if !hasRow(text, o.Name, o.Subnet.String(), wantEP.String(), "static") {
			t.Errorf("%s: weft status shows no row for peer %s:\n%s", w.Name, o.Name, text)
		}
	}
}

// hasRow reports whether a line of text starts with the fields cols.
func hasRow(text string, cols ...string) bool {
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) >= len(cols) && slices.Equal(f[:len(cols)], cols) {
			return true
		}
	}
	return false
}

// TestTCPTransfer streams 128 MiB of pseudo-random data from h1 to h2 over
// the overlay and compares SHA-256 at both ends.
func TestTCPTransfer(t *testing.T) {
	const total = 128 << 20
	forEachDriver(t, nil, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "tc"+tag, 2, driver)
		a, b := nodes[0], nodes[1]
		tcpTransfer(t, a, b, total)
		if p := peer(t, status(t, a), b.Name); p.TxBytes < total {
			t.Errorf("%s: tx_bytes to %s is %d after sending %d bytes", a.Name, b.Name, p.TxBytes, total)
		}
		if p := peer(t, status(t, b), a.Name); p.RxBytes < total {
			t.Errorf("%s: rx_bytes from %s is %d after receiving %d bytes", b.Name, a.Name, p.RxBytes, total)
		}
	})
}

// TestUDPEcho echoes datagrams of several sizes, up to the largest that fits
// the overlay MTU, from h1 off a socket on h2, and checks each comes back
// intact.
func TestUDPEcho(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "ue"+tag, 2, driver)
		a, b := nodes[0], nodes[1]
		mtu := status(t, a).MTU
		srv := listenUDP(t, b.Host, netip.AddrPortFrom(b.Addr, 7007))
		go echo(srv)
		cli := listenUDP(t, a.Host, netip.AddrPortFrom(a.Addr, 0))
		for _, size := range []int{1, 28, 512, 1000, 1400, mtu - 28} {
			want := pattern(size)
			err := testenv.Poll(t.Context(), waitTimeout, fmt.Sprintf("echo of %d bytes", size), func() error {
				sendUDP(t, cli, netip.AddrPortFrom(b.Addr, 7007), want)
				for {
					got, _, err := recvUDP(cli, time.Second)
					switch {
					case err != nil:
						return err // lost: WaitFor sends again
					case bytes.Equal(got, want):
						return nil
					case !bytes.Equal(got, pattern(len(got))):
						t.Fatalf("echo of %d bytes came back corrupted as %d bytes: %x", size, len(got), got)
					}
					// An intact late echo of an earlier size: read on.
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// echo sends every datagram back to its sender until c is closed.
func echo(c *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort(buf[:n], from)
	}
}

// pattern is a payload that tells its own length: corruption and truncation
// show.
func pattern(size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte((i*31 + size) % 251)
	}
	return b
}

// TestMTU checks the overlay MTU's edge: a DF ping that fits passes, one byte
// more is refused by the kernel, and when an operator raises weft0's MTU by
// hand weft itself answers "fragmentation needed" with its real MTU.
func TestMTU(t *testing.T) {
	forEachDriver(t, []string{"ping"}, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "mt"+tag, 2, driver)
		a, b := nodes[0], nodes[1]
		ctx := t.Context()
		mtu := status(t, a).MTU
		if err := a.Host.PingDF(ctx, b.Addr, 2, mtu-28); err != nil {
			t.Fatalf("ping -M do -s %d (exactly the MTU %d): %v", mtu-28, mtu, err)
		}
		if err := a.Host.PingDF(ctx, b.Addr, 1, mtu-27); err == nil {
			t.Fatalf("ping -M do -s %d passed an MTU of %d", mtu-27, mtu)
		}
		if n := status(t, a).Drops["too_big"]; n != 0 {
			t.Errorf("too_big = %d after the kernel refused the packet itself", n)
		}

		// The kernel now sends 1500-byte packets into weft0.
		if out, err := a.Host.Run(ctx, "ip", "link", "set", "weft0", "mtu", "1500"); err != nil {
			t.Fatalf("raise weft0's MTU: %v\n%s", err, out)
		}
		out, err := a.Host.Run(ctx, "ping", "-n", "-M", "do", "-s", "1472", "-c", "1", "-W", "2", "-w", "3", b.Addr.String())
		if err == nil {
			t.Fatalf("a 1500-byte DF ping passed an overlay MTU of %d:\n%s", mtu, out)
		}
		wantFrom, wantMTU := "From "+b.Addr.String(), fmt.Sprintf("mtu = %d", mtu)
		if !strings.Contains(out, "Frag needed") || !strings.Contains(out, wantFrom) || !strings.Contains(out, wantMTU) {
			t.Errorf("ping output lacks %q, %q and %q:\n%s", "Frag needed", wantFrom, wantMTU, out)
		}
		t.Logf("ping -M do -s 1472 with weft0 at MTU 1500:\n%s", out)
		if n := status(t, a).Drops["too_big"]; n < 1 {
			t.Errorf("too_big = %d after a packet over the MTU", n)
		}
		// Packets that fit still pass.
		if err := a.Host.PingDF(ctx, b.Addr, 1, mtu-28); err != nil {
			t.Errorf("ping -M do -s %d after the MTU change: %v", mtu-28, err)
		}
	})
}

// TestUnreachable: a packet for a subnet no peer holds is answered with
// "network unreachable" from its destination; one for the node's own subnet
// that no local address holds is only counted.
func TestUnreachable(t *testing.T) {
	forEachDriver(t, []string{"ping"}, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "ur"+tag, 2, driver)
		a := nodes[0]
		nowhere := "10.244.5.1"
		out, err := a.Host.Run(t.Context(), "ping", "-n", "-c", "1", "-W", "2", "-w", "3", nowhere)
		if err == nil {
			t.Fatalf("ping %s (no peer's) passed:\n%s", nowhere, out)
		}
		if want := "From " + nowhere + " icmp_seq=1 Destination Net Unreachable"; !strings.Contains(out, want) {
			t.Errorf("ping output lacks %q:\n%s", want, out)
		}
		own := listenUDP(t, a.Host, netip.AddrPortFrom(a.Addr, 0))
		sendUDP(t, own, netip.MustParseAddrPort("10.244.1.5:7000"), []byte("nobody home"))
		waitDrops(t, a, map[string]uint64{"no_route": 1, "local_destination": 1})
	})
}
