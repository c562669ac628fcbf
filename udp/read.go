package udp

// Receive path: one recvmmsg (x/net ReadBatch) fills up to readSlots messages,
// each in its own 64 KiB slot. A slot holds either one plain datagram or, with
// UDP_GRO, several equal-size datagrams the kernel coalesced (the last may be
// shorter), with the segment size in a SOL_UDP/UDP_GRO control message. Read
// hands out the datagrams as slices of the slots, copying nothing: the caller
// decrypts (or copies) each one once, straight into the buffer it leaves from.
// Whatever does not fit a call stays in the slots and is handed out first by
// the next Read; the slots are refilled only when everything was handed out.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

const (
	// readSlots caps the receive slots. Uncoalesced traffic (a real NIC, or
	// veth without offloads) fills one slot per datagram, so this is the most
	// datagrams one syscall can take: 64 already cuts syscalls 64-fold, and
	// the notes measured StdNetBind at ~2 per call here. Coalesced traffic
	// carries up to 64 datagrams per slot, so a few slots fill a whole batch.
	// Each slot must hold a full coalesced message, so 64 slots cost 4 MiB
	// per Conn where BatchSize (128) slots would cost 8 MiB for little gain.
	readSlots = 64
	// slotSize fits any UDP payload and any GRO-coalesced message, so the
	// kernel never truncates: Stats().Oversize stays 0 unless that breaks.
	slotSize = 1 << 16
	// oobSize fits the UDP_GRO control message (an int) with room to spare.
	oobSize = 64
)

type reader struct {
	msgs []ipv4.Message   // Buffers and OOB fixed at init; x/net sets N, NN, Flags, Addr
	from []netip.AddrPort // source of each received message
	seg  []int            // GRO segment size per message; 0 plain, -1 drop
	n    int              // messages from the last recvmmsg
	next int              // first message not yet fully handed out
	off  int              // bytes of msgs[next] already handed out
}

func (r *reader) init(batch int) {
	slots := min(batch, readSlots)
	bufs := make([]byte, slots*slotSize)
	oob := make([]byte, slots*oobSize)
	iovs := make([][]byte, slots)
	r.msgs = make([]ipv4.Message, slots)
	r.from = make([]netip.AddrPort, slots)
	r.seg = make([]int, slots)
	for i := range r.msgs {
		iovs[i] = bufs[i*slotSize : (i+1)*slotSize : (i+1)*slotSize]
		r.msgs[i].Buffers = iovs[i : i+1 : i+1]
		r.msgs[i].OOB = oob[i*oobSize : (i+1)*oobSize : (i+1)*oobSize]
	}
}

// Read blocks until at least one datagram is available and returns up to
// len(dgrams) of them: datagram i is dgrams[i], sent from eps[i] (IPv4
// sources unmapped). eps must be at least as long as dgrams. The datagrams
// are slices of the Conn's receive slots (capacity capped at their length):
// they stay valid, and the caller may change them in place, until the next
// Read. GRO-coalesced messages are split here by slicing; datagrams that do
// not fit this call are returned first by the next one, without a syscall.
// Read must not run concurrently with itself; it may run concurrently with
// Write. After Close it returns net.ErrClosed. Inside x/net each received
// message (not datagram) costs two small allocations for its source address.
func (c *Conn) Read(dgrams [][]byte, eps []netip.AddrPort) (int, error) {
	want := min(len(dgrams), len(eps))
	r := &c.rd
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		if want == 0 {
			return 0, nil
		}
		if r.next < r.n {
			if n := c.handOut(dgrams[:want], eps); n > 0 {
				c.stats.readDatagrams.Add(uint64(n))
				return n, nil
			}
			continue // everything pending was truncated: read more
		}
		// ReadBatch takes every queued message up to len(r.msgs), blocking
		// (in the Go poller) only while nothing is queued.
		n, err := c.bc.ReadBatch(r.msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0, net.ErrClosed
			}
			return 0, fmt.Errorf("udp: read: %w", err)
		}
		c.stats.readCalls.Add(1)
		c.stats.readMessages.Add(uint64(n))
		r.parse(n, &c.stats.oversize)
	}
}

// parse records source and GRO segment size of the n messages just received.
func (r *reader) parse(n int, oversize *atomic.Uint64) {
	r.n, r.next, r.off = n, 0, 0
	for i := range n {
		m := &r.msgs[i]
		// x/net allocates a *net.UDPAddr (and its IP slice) per received
		// message: two allocations per message (not per datagram when GRO
		// coalesced). Avoiding them would need hand-written recvmmsg.
		var ap netip.AddrPort
		if ua, ok := m.Addr.(*net.UDPAddr); ok {
			ap = ua.AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		}
		m.Addr = nil // let the address be collected before the next batch
		r.from[i] = ap
		r.seg[i] = groSize(m.OOB[:m.NN])
		if m.Flags&unix.MSG_TRUNC != 0 { // cannot happen with 64 KiB slots; be safe
			r.seg[i] = -1
			oversize.Add(1)
		}
	}
}

// handOut hands out pending datagrams as slices of their slots and returns
// how many. It consumes pending datagrams until dgrams is full or nothing is
// pending.
func (c *Conn) handOut(dgrams [][]byte, eps []netip.AddrPort) int {
	r := &c.rd
	k := 0
	for k < len(dgrams) && r.next < r.n {
		i := r.next
		if r.seg[i] < 0 {
			r.next, r.off = i+1, 0
			continue
		}
		data := r.msgs[i].Buffers[0][:r.msgs[i].N]
		seg := len(data) - r.off
		if g := r.seg[i]; g > 0 && g < seg {
			seg = g
		}
		dgrams[k] = data[r.off : r.off+seg : r.off+seg]
		if r.off += seg; r.off >= len(data) {
			r.next, r.off = i+1, 0
		}
		eps[k] = r.from[i]
		k++
	}
	return k
}

// groSize returns the UDP_GRO segment size from a message's control data, or
// 0 when the message was not coalesced. It parses in place, allocating nothing.
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4 {
			return int(int32(binary.NativeEndian.Uint32(data)))
		}
		oob = rest
	}
	return 0
}
