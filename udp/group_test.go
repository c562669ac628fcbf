package udp

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

// listenGroup opens a group of n and closes it when the test ends.
func listenGroup(t *testing.T, addr netip.AddrPort, n int, steer Steer) []*Conn {
	t.Helper()
	conns, err := ListenGroup(Config{Listen: addr}, n, steer)
	if err != nil {
		t.Fatalf("ListenGroup(%v, %d): %v", addr, n, err)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// testSteer sends a datagram whose first byte is 6 to socket (byte 24 mod
// the group size), any other by the kernel's hash.
func testSteer(n int) []bpf.Instruction {
	return []bpf.Instruction{
		bpf.LoadAbsolute{Off: 0, Size: 1}, // out of range: return 0
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 3},
		bpf.LoadAbsolute{Off: 24, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: uint32(n)},
		bpf.RetA{},
		bpf.RetConstant{Val: ^uint32(0)},
	}
}

// steered is datagram id from sender queue q, as testSteer reads it.
func steered(q, id int) []byte {
	b := payload(id, 40)
	b[0], b[24] = 6, byte(q)
	return b
}

// TestListenGroupSteers: three sockets on one port; from one source address
// and port (which the kernel's hash alone would send to one socket), each
// datagram goes to the socket its queue byte names, modulo three.
func TestListenGroupSteers(t *testing.T) {
	for _, addr := range []netip.AddrPort{lo4, lo6} {
		const n, queues, per = 3, 6, 2
		conns := listenGroup(t, addr, n, testSteer)
		port := conns[0].LocalAddr().Port()
		for i, c := range conns {
			if c.LocalAddr().Port() != port {
				t.Fatalf("socket %d on %v, socket 0 on port %d", i, c.LocalAddr(), port)
			}
		}
		client := listen(t, netip.AddrPortFrom(addr.Addr(), 0), false, false)
		var sent [][]byte
		for q := range queues {
			for i := range per {
				sent = append(sent, steered(q, q*per+i))
			}
		}
		if err := client.Write(sent, repeatEP(conns[0].LocalAddr(), len(sent))); err != nil {
			t.Fatal(err)
		}
		for i, c := range conns {
			for _, d := range readN(t, c, queues*per/n, 1) {
				if q := int(d.data[24]); q%n != i {
					t.Errorf("%v: datagram of queue %d on socket %d, want socket %d", addr, q, i, q%n)
				}
			}
		}
	}
}

// TestListenGroupUnsteered: datagrams the program does not match still
// arrive, each on one socket.
func TestListenGroupUnsteered(t *testing.T) {
	conns := listenGroup(t, lo4, 2, testSteer)
	client := listen(t, lo4, false, false)
	d := payload(1, 40)
	d[0] = 0 // not the match value
	if err := client.Write([][]byte{d, {6}}, repeatEP(conns[0].LocalAddr(), 2)); err != nil {
		t.Fatal(err)
	}
	// The short one (the queue byte out of range) goes to socket 0; the
	// other by hash, which for one source picks one socket for both.
	got := readN(t, conns[0], 1, 1)
	if len(got[0].data) != 1 {
		unsteered := got[0]
		got = readN(t, conns[0], 1, 1)
		if len(got[0].data) != 1 || len(unsteered.data) != 40 {
			t.Fatalf("socket 0 read %d and %d bytes", len(unsteered.data), len(got[0].data))
		}
		return
	}
	readN(t, conns[1], 1, 1) // the unmatched one went by hash to socket 1
}

// A port held by another socket, or by another group, is refused as for
// one socket: without the probe bind, a second group with SO_REUSEPORT
// would silently share the port.
func TestListenGroupAddrInUse(t *testing.T) {
	plain := listen(t, lo4, true, true)
	if _, err := ListenGroup(Config{Listen: plain.LocalAddr()}, 2, nil); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("group on a plain socket's port: %v, want ErrAddrInUse", err)
	}
	group := listenGroup(t, lo4, 2, nil)
	if _, err := ListenGroup(Config{Listen: group[0].LocalAddr()}, 2, nil); !errors.Is(err, ErrAddrInUse) {
		t.Errorf("second group on a group's port: %v, want ErrAddrInUse", err)
	}
	if _, err := ListenGroup(Config{Listen: lo4}, 0, nil); err == nil {
		t.Error("group of 0 sockets opened")
	}
	if _, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(group[0].LocalAddr())); err == nil {
		t.Error("a plain socket bound a group's port")
	}
}
