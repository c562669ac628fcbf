package e2e

// Tests of the sealed (default) data path with the real binary: datagrams
// captured on the underlay and replayed are dropped, a flipped bit drops a
// datagram, plaintext GENEVE is refused, and a node with another cluster key
// gets nothing through. The crypto does not depend on the TUN driver, so
// these run with the default driver only.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/internal/packettest"
	"github.com/weftnet/weft/internal/testenv"
)

func TestSealedRefusals(t *testing.T) {
	requireTools(t, "ping", "tcpdump")
	_, nodes := weftLab(t, "sr", 2, "")
	h1, h2 := nodes[0], nodes[1]
	ping(t, h2, h1, 1) // both sides have each other's session now

	// Capture h2's datagrams to h1 on h1's underlay interface.
	pcap := filepath.Join(t.TempDir(), "h1.pcap")
	const count = 5
	dump, err := h1.Host.Start(context.Background(), "tcpdump", "-Z", "root", "-i", h1.Host.Link, "-n", "-U", "-w", pcap,
		fmt.Sprintf("udp and src host %s and dst port %d", h2.Host.Addr, encap.Port))
	if err != nil {
		t.Fatal(err)
	}
	// Ping until the capture file holds count datagrams (tcpdump's file
	// can trail its exit, so the file itself is the condition).
	var captured [][]byte
	err = testenv.Poll(t.Context(), waitTimeout, "tcpdump to capture h2's datagrams", func() error {
		if captured = readPcapUDP(t, pcap); len(captured) >= count {
			return nil
		}
		h2.Host.Ping(t.Context(), h1.Addr, 1)
		return fmt.Errorf("%d datagrams captured", len(captured))
	})
	if err != nil {
		t.Fatalf("%v\ntcpdump: %s", err, dump.Output())
	}
	dump.Stop(os.Interrupt, 5*time.Second)
	captured = captured[:count]
	for _, d := range captured {
		if h, err := encap.ParseHeader(d); err != nil || h.Protocol != encap.ProtoSealed || !h.Critical {
			t.Fatalf("captured datagram is not sealed: %+v %v", h, err)
		}
	}

	// Replay them from h2's own endpoint (its weft stopped, so the port is
	// free; h1 still has h2's session and replay window).
	if err := h2.Stop(); err != nil {
		t.Fatal(err)
	}
	before := status(t, h1)
	rogue := listenUDP(t, h2.Host, netip.AddrPortFrom(h2.Host.Addr, encap.Port))
	h1wire := netip.AddrPortFrom(h1.Host.Addr, encap.Port)
	for _, d := range captured {
		sendUDP(t, rogue, h1wire, d)
	}
	// A flipped bit: in the VNI (refused before any crypto), and in the
	// tag and the ciphertext of copies moved to counters h1 has not seen
	// (a seen counter is refused as a replay before the tag is checked).
	vni := append([]byte(nil), captured[0]...)
	vni[6] ^= 0x10
	sendUDP(t, rogue, h1wire, vni)
	const counterAt = encap.SealedHeaderLen - 8
	for i, at := range []int{len(captured[0]) - 1, encap.SealedHeaderLen + 3} {
		d := append([]byte(nil), captured[0]...)
		binary.BigEndian.PutUint64(d[counterAt:], binary.BigEndian.Uint64(d[counterAt:])+100+uint64(i))
		d[at] ^= 0x10
		sendUDP(t, rogue, h1wire, d)
	}
	// Plaintext GENEVE with a well-formed inner packet.
	sendUDP(t, rogue, h1wire, geneve(1, encap.ProtoIPv4, packettest.UDP4(netip.MustParseAddrPort("10.244.2.5:4000"),
		netip.AddrPortFrom(h1.Addr, 7000), []byte("plaintext"), false)))
	waitDrops(t, h1, map[string]uint64{
		"replay":          before.Drops["replay"] + count,
		"auth_failed":     before.Drops["auth_failed"] + 2,
		"wrong_network":   before.Drops["wrong_network"] + 1,
		"unauthenticated": before.Drops["unauthenticated"] + 1,
	})
	if got, was := peer(t, status(t, h1), "h2").RxPackets, peer(t, before, "h2").RxPackets; got != was {
		t.Fatalf("h1 delivered %d packets from the replays", got-was)
	}
}

// TestWrongKey starts h2 with another cluster's key: nothing it sends is
// delivered, and h1 counts why.
func TestWrongKey(t *testing.T) {
	requireTools(t, "ping")
	l := newLab(t, "wk", 2)
	nodes := startWeft(t, l, "")
	h1, h2 := nodes[0], nodes[1]
	if err := h2.Stop(); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if r := runWeft(t, h2.Host, "keygen", "--out", other); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	for i, a := range h2.Args {
		if a == "--key-file" {
			h2.Args[i+1] = other
		}
	}
	if err := h2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h2.Host.Ping(t.Context(), h1.Addr, 2); err == nil {
		t.Fatal("a node with another key reached h1")
	}
	s := status(t, h1)
	if n := s.Drops["unknown_key"] + s.Drops["auth_failed"]; n == 0 {
		t.Fatalf("h1 counted no unknown_key/auth_failed drops: %v", s.Drops)
	}
	if rx := peer(t, s, "h2").RxPackets; rx != 0 {
		t.Fatalf("h1 delivered %d packets from the wrong-key node", rx)
	}
}

// readPcapUDP returns the UDP payloads of the IPv4 packets in a classic
// pcap file of Ethernet frames (what tcpdump -w writes); nil while the file
// is not there yet.
func readPcapUDP(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 24 {
		return nil // not written yet
	}
	if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap file", path)
	}
	var out [][]byte
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:12]))
		if 16+n > len(b) {
			break // a record still being written
		}
		frame := b[16 : 16+n]
		b = b[16+n:]
		if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if ip[9] != 17 || total > len(ip) {
			continue
		}
		out = append(out, append([]byte(nil), ip[ihl+8:total]...))
	}
	return out
}
