package encap

// SteerProgram is the classic BPF program a receiver's SO_REUSEPORT socket
// group runs to pick the socket (and with it the queue) of each datagram,
// so that every flow stays on one queue:
//
//   - sealed datagrams: the sender's queue, the counter's top byte
//     (QueueOffset), modulo the group size;
//   - plain GENEVE (--insecure) carries no queue: a hash of the inner flow,
//     symmetric in its direction (source and destination XORed), so a
//     flow's replies, read from the queue that wrote it, go back on a
//     socket of the same index: inner TCP and UDP by their ports, other
//     packets and fragments of inner IPv4 by their addresses, inner IPv6
//     by the last four bytes of its addresses;
//   - anything else: a result past the group, which makes the kernel fall
//     back to its hash of the outer addresses.
//
// The kernel runs it with the UDP payload as the packet; a load past its
// end returns 0 (socket 0).

import "golang.org/x/net/bpf"

// Offsets in a plain GENEVE datagram (no options) of the inner packet's
// fields SteerProgram reads.
const (
	steerInner     = HeaderLen      // the inner IP header
	steerV4Proto   = steerInner + 9 // IPv4 protocol
	steerV4Frag    = steerInner + 6 // IPv4 flags and fragment offset
	steerV4Src     = steerInner + 12
	steerV4Dst     = steerInner + 16
	steerV6SrcLow  = steerInner + 8 + 12 // last 4 bytes of the IPv6 source
	steerV6DstLow  = steerInner + 24 + 12
	steerFallback  = ^uint32(0)
	sealedFirst    = (SealedHeaderLen - HeaderLen) / 4 // version 0, six option words
	plainFirstByte = 0                                 // version 0, no options
)

// SteerProgram returns the program for a group of sockets (at least 1).
func SteerProgram(sockets int) []bpf.Instruction {
	n := uint32(max(sockets, 1))
	// Instruction indexes of the jump targets; a jump at i skipping to
	// label t skips t-i-1 instructions.
	const (
		sealed   = 3
		plain    = 6
		v4       = 9
		ports    = 14
		addrs    = 23
		v6       = 28
		fold     = 32
		fallback = 36
	)
	to := func(t, i int) uint8 { return uint8(t - i - 1) }
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 1},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: sealedFirst, SkipTrue: to(sealed, 1)},
		/* 2 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: plainFirstByte, SkipTrue: to(plain, 2), SkipFalse: to(fallback, 2)},
		// sealed: the sender's queue.
		/* 3 */ bpf.LoadAbsolute{Off: QueueOffset, Size: 1},
		/* 4 */ bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: n},
		/* 5 */ bpf.RetA{},
		// plain: by the inner packet's protocol.
		/* 6 */ bpf.LoadAbsolute{Off: 2, Size: 2},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: ProtoIPv4, SkipTrue: to(v4, 7)},
		/* 8 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: ProtoIPv6, SkipTrue: to(v6, 8), SkipFalse: to(fallback, 8)},
		// inner IPv4: fragments by addresses, TCP and UDP by ports, the rest by addresses.
		/* 9 */ bpf.LoadAbsolute{Off: steerV4Frag, Size: 2},
		/* 10 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x3fff, SkipTrue: to(addrs, 10)},
		/* 11 */ bpf.LoadAbsolute{Off: steerV4Proto, Size: 1},
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipTrue: to(ports, 12)},
		/* 13 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipTrue: to(ports, 13), SkipFalse: to(addrs, 13)},
		// ports: X = the inner header's length; A = source port ^ destination port.
		/* 14 */ bpf.LoadMemShift{Off: steerInner},
		/* 15 */ bpf.LoadIndirect{Off: steerInner, Size: 4},
		/* 16 */ bpf.StoreScratch{Src: bpf.RegA, N: 0},
		/* 17 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		/* 18 */ bpf.TAX{},
		/* 19 */ bpf.LoadScratch{Dst: bpf.RegA, N: 0},
		/* 20 */ bpf.ALUOpX{Op: bpf.ALUOpXor},
		/* 21 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xffff},
		/* 22 */ bpf.Jump{Skip: uint32(to(fold, 22))},
		// addrs: source ^ destination.
		/* 23 */ bpf.LoadAbsolute{Off: steerV4Src, Size: 4},
		/* 24 */ bpf.TAX{},
		/* 25 */ bpf.LoadAbsolute{Off: steerV4Dst, Size: 4},
		/* 26 */ bpf.ALUOpX{Op: bpf.ALUOpXor},
		/* 27 */ bpf.Jump{Skip: uint32(to(fold, 27))},
		// inner IPv6: the addresses' last four bytes.
		/* 28 */ bpf.LoadAbsolute{Off: steerV6SrcLow, Size: 4},
		/* 29 */ bpf.TAX{},
		/* 30 */ bpf.LoadAbsolute{Off: steerV6DstLow, Size: 4},
		/* 31 */ bpf.ALUOpX{Op: bpf.ALUOpXor},
		// fold: mix the hash in A (ports' low bits are biased: the kernel
		// hands out even source ports for connect) and pick a socket.
		/* 32 */ bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: 0x9e3779b1},
		/* 33 */ bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		/* 34 */ bpf.ALUOpConstant{Op: bpf.ALUOpMod, Val: n},
		/* 35 */ bpf.RetA{},
		/* 36 */ bpf.RetConstant{Val: steerFallback},
	}
}
