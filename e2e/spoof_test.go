package e2e

// What a node refuses. From the wire: hand-made GENEVE datagrams with a
// spoofed inner source (anything but the peer's subnet and its own host
// address), from an endpoint that is no peer, or malformed, each
// counted under its drop reason and none delivered. From its own host:
// packets whose source is not in the node's subnet.

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
)

// TestWireRefusals plays a rogue peer: weft runs on h1..h3, then h3's weft
// stops and the test sends from h3's endpoint (which h2 still knows as peer
// "h3", subnet 10.244.3.0/24) and from another port of h3 (no peer).
func TestWireRefusals(t *testing.T) {
	forEachDriver(t, []string{"ping"}, func(t *testing.T, driver, tag string) {
		_, nodes := insecureWeftLab(t, "sp"+tag, 3, driver)
		h1, h2, h3 := nodes[0], nodes[1], nodes[2]
		if err := h3.Stop(); err != nil {
			t.Fatalf("stop weft on h3: %v", err)
		}
		rogue := listenUDP(t, h3.Host, netip.AddrPortFrom(h3.Host.Addr, encap.Port))
		stranger := listenUDP(t, h3.Host, netip.AddrPortFrom(h3.Host.Addr, encap.Port+1))
		sinkAddr := netip.AddrPortFrom(h2.Addr, 7000)
		sink := listenUDP(t, h2.Host, sinkAddr)
		h2wire := netip.AddrPortFrom(h2.Host.Addr, encap.Port)
		fromH3 := netip.MustParseAddrPort("10.244.3.5:4000") // inside h3's subnet
		delivered := 0
		// deliver sends payload from h3's subnet and checks it is the next
		// datagram the sink receives: anything refused before it did not
		// get through.
		deliver := func(payload string) {
			t.Helper()
			sendUDP(t, rogue, h2wire, geneve(1, encap.ProtoIPv4, packettest.UDP4(fromH3, sinkAddr, []byte(payload), false)))
			delivered++
			expectDatagram(t, sink, payload)
		}

		// (a) A peer's own source is delivered, checksum 0 and all.
		deliver("from h3's subnet")

		// The peer's own host address (its endpoint's) is delivered too:
		// its host's replies to containers that connected to it.
		hostSrc := netip.AddrPortFrom(h3.Host.Addr, 4000)
		sendUDP(t, rogue, h2wire, geneve(1, encap.ProtoIPv4, packettest.UDP4(hostSrc, sinkAddr, []byte("from h3's host"), false)))
		delivered++
		expectDatagram(t, sink, "from h3's host")

		// (b) Inner sources outside the sending peer's subnet: another
		// peer's, the receiver's own, one outside the overlay, another
		// peer's host address and the receiver's.
		for _, src := range []netip.Addr{netip.MustParseAddr("10.244.1.5"), netip.MustParseAddr("10.244.2.9"),
			netip.MustParseAddr("192.168.99.1"), h1.Host.Addr, h2.Host.Addr} {
			from := netip.AddrPortFrom(src, 4000)
			pkt := packettest.UDP4(from, sinkAddr, []byte("spoofed from "+from.String()), false)
			sendUDP(t, rogue, h2wire, geneve(1, encap.ProtoIPv4, pkt))
		}
		// A destination h2 does not hold.
		sendUDP(t, rogue, h2wire, geneve(1, encap.ProtoIPv4,
			packettest.UDP4(fromH3, netip.MustParseAddrPort("10.244.1.7:7000"), []byte("not h2's"), false)))
		// (c) A well-formed datagram from an endpoint that is no peer.
		sendUDP(t, stranger, h2wire, geneve(1, encap.ProtoIPv4, packettest.UDP4(fromH3, sinkAddr, []byte("stranger"), false)))
		waitDrops(t, h2, map[string]uint64{"spoofed_source": 5, "not_our_subnet": 1, "unknown_peer": 1})
		deliver("after the spoofed ones")

		// (d) Malformed datagrams from the peer's endpoint.
		good := packettest.UDP4(fromH3, sinkAddr, []byte("malformed"), false)
		withByte := func(b []byte, i int, v byte) []byte {
			b = bytes.Clone(b)
			b[i] = v
			return b
		}
		dgram := geneve(1, encap.ProtoIPv4, good)
		malformed := []struct {
			name, reason string
			b            []byte
		}{
			{"empty", "short", nil},
			{"truncated header", "short", dgram[:5]},
			{"options past the end", "short", withByte(dgram[:encap.HeaderLen], 0, 2)}, // 8 bytes of options announced
			{"version 1", "bad_version", withByte(dgram, 0, 0x40)},
			// 'G' reads as version 1 with 28 bytes of options: bad_version
			// once 36 bytes long, short below.
			{"short garbage", "short", []byte("GET / HTTP/1.1\r\n\r\n")},
			{"garbage", "bad_version", []byte("GET /index.html HTTP/1.1\r\nHost: weft.example\r\n\r\n")},
			{"control message not weft's", "bad_protocol", withByte(dgram, 1, 0x80)}, // O bit, but IPv4 inside, not a probe
			{"critical option", "critical_option", withByte(dgram, 1, 0x40)},
			{"wrong VNI", "wrong_network", geneve(2, encap.ProtoIPv4, good)},
			{"Ethernet payload", "bad_protocol", geneve(1, 0x6558, good)},
			{"IPv4 sent as IPv6", "bad_inner", geneve(1, encap.ProtoIPv6, good)},
			{"truncated inner header", "bad_inner", geneve(1, encap.ProtoIPv4, good[:12])},
			{"inner length past the end", "bad_inner", geneve(1, encap.ProtoIPv4, good[:len(good)-4])},
		}
		want := map[string]uint64{"spoofed_source": 5, "not_our_subnet": 1, "unknown_peer": 1, "decode_error": 0, "tun_write_error": 0}
		for _, m := range malformed {
			sendUDP(t, rogue, h2wire, m.b)
			want[m.reason]++
		}
		waitDrops(t, h2, want)
		deliver("after the malformed ones")

		if p := peer(t, status(t, h2), h3.Name); p.RxPackets != uint64(delivered) {
			t.Errorf("h2 counted %d packets from h3, want only the %d delivered", p.RxPackets, delivered)
		}
		// h2 still forwards.
		ping(t, h1, h2, 3)
		ping(t, h2, h1, 3)
	})
}

// TestForeignSourceRefused: a node sends nothing whose source lies outside
// its subnet, whatever its host routes into the TUN.
func TestForeignSourceRefused(t *testing.T) {
	forEachDriver(t, nil, func(t *testing.T, driver, tag string) {
		_, nodes := weftLab(t, "fs"+tag, 2, driver)
		a, b := nodes[0], nodes[1]
		foreignAddr := netip.MustParseAddr("10.244.7.7") // in the overlay, in nobody's subnet
		inSubnet := netip.MustParseAddr("10.244.1.7")    // a container's address on h1, say
		for _, addr := range []netip.Addr{foreignAddr, inSubnet} {
			if out, err := a.Host.Run(t.Context(), "ip", "addr", "add", addr.String()+"/32", "dev", "lo"); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		}
		sinkAddr := netip.AddrPortFrom(b.Addr, 7000)
		sink := listenUDP(t, b.Host, sinkAddr)
		foreign := listenUDP(t, a.Host, netip.AddrPortFrom(foreignAddr, 0))
		own := listenUDP(t, a.Host, netip.AddrPortFrom(inSubnet, 0))

		before := status(t, a)
		for range 3 {
			sendUDP(t, foreign, sinkAddr, []byte("foreign source"))
		}
		waitDrops(t, a, map[string]uint64{"foreign_source": before.Drops["foreign_source"] + 3})
		sendUDP(t, own, sinkAddr, []byte("own subnet"))
		expectDatagram(t, sink, "own subnet")

		tx := peer(t, status(t, a), b.Name).TxPackets - peer(t, before, b.Name).TxPackets
		if tx != 1 {
			t.Errorf("%s sent %d packets to %s, want 1 (the foreign ones are not sent)", a.Name, tx, b.Name)
		}
	})
}

// expectDatagram reads the next datagram on c and checks it is want.
func expectDatagram(t *testing.T, c *net.UDPConn, want string) {
	t.Helper()
	got, from, err := recvUDP(c, ioTimeout)
	if err != nil {
		t.Fatalf("waiting for %q: %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("received %q from %v, want %q: something refused got through", got, from, want)
	}
}

// geneve returns a GENEVE datagram payload (RFC 8926, no options) carrying
// inner as protocol proto in network vni.
func geneve(vni uint32, proto uint16, inner []byte) []byte {
	b := make([]byte, encap.HeaderLen, encap.HeaderLen+len(inner))
	binary.BigEndian.PutUint16(b[2:4], proto)
	binary.BigEndian.PutUint32(b[4:8], vni<<8)
	return append(b, inner...)
}
