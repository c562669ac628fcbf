package udp

// Several sockets on one port, for parallel pipelines: each has SO_REUSEPORT,
// and the kernel hands every received datagram to one of them. By default it
// picks by a hash of the datagram's addresses and ports, so all traffic from
// one peer (one source address and port) lands on one socket. A Steer
// program (classic BPF, attached to the group) picks by the payload instead:
// weft's reads the sender's queue from the sealed header, or hashes the
// inner flow of plain GENEVE (encap.SteerProgram), so each flow stays on one
// socket and in order while different flows spread over the sockets.
//
// One caveat: a message the kernel or NIC coalesced (UDP GRO) goes whole to
// the socket its first datagram picks. Datagrams of one sender's queues
// arrive as separate GSO runs, so on veth that never mixes them; a NIC that
// coalesces across two queues' runs can move the tail of a run to another
// socket, which may reorder those few datagrams against their flow.

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Steer builds the classic BPF program that picks a socket of a group of
// that many: the kernel runs it with the UDP payload as its packet and
// hands the datagram to the socket of the index it returns, or, for a
// result past the group, to the one its hash of the addresses picks.
// encap.SteerProgram is weft's.
type Steer func(sockets int) []bpf.Instruction

// ListenGroup opens n sockets on cfg.Listen with SO_REUSEPORT (n = 1: one
// plain Listen) and, with steer, attaches its program to the group. It
// first binds the address without SO_REUSEPORT and lets go, so a port held by
// anything else still fails with ErrAddrInUse, and port 0 picks one free
// port for the whole group. A program the kernel refuses is not fatal: the
// sockets then share by hash, and the error says so. Any other failure
// closes what was opened.
func ListenGroup(cfg Config, n int, steer Steer) ([]*Conn, error) {
	if n < 1 {
		return nil, fmt.Errorf("udp: group of %d sockets", n)
	}
	if n == 1 {
		c, err := Listen(cfg)
		if err != nil {
			return nil, err
		}
		return []*Conn{c}, nil
	}
	probe, err := Listen(Config{Listen: cfg.Listen, DisableGSO: true, DisableGRO: true, BatchSize: 1})
	if err != nil {
		return nil, err
	}
	cfg.Listen = probe.LocalAddr()
	probe.Close()

	conns := make([]*Conn, 0, n)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		c, err := listenConn(cfg, true)
		if err != nil {
			closeAll()
			return nil, err
		}
		conns = append(conns, c)
	}
	if steer != nil {
		if err := conns[0].attachSteer(steer(n)); err != nil {
			return conns, fmt.Errorf("%w: %w", ErrNoSteer, err)
		}
	}
	return conns, nil
}

// ErrNoSteer is returned, wrapped, with a working group whose Steer program
// the kernel refused.
var ErrNoSteer = errors.New("udp: reuseport steering refused, sockets share by address hash")

// setReusePort is a net.ListenConfig Control that sets SO_REUSEPORT.
func setReusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set SO_REUSEPORT: %w", serr)
	}
	return nil
}

// attachSteer attaches a Steer program to the reuseport group c is in.
func (c *Conn) attachSteer(program []bpf.Instruction) error {
	prog, err := bpf.Assemble(program)
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF,
			&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
	}); err != nil {
		return err
	}
	return serr
}
