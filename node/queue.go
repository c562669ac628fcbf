package node

// Parallel pipelines. A node runs one inside/outside loop pair per queue:
// each pair owns one TUN queue (IFF_MULTI_QUEUE) and one socket of a
// SO_REUSEPORT group on the --listen port, and shares with the other pairs
// only the routing snapshot, the codec and counters that move once per
// batch or per drop. Nothing per packet takes a lock or a shared counter;
// Sealed numbers each queue's packets in a counter space of its own.
//
// A flow stays on one queue, so it is never reordered by the parallelism:
//   - TUN → wire: the kernel picks the TUN queue a packet is read from by a
//     hash of the flow (and, once the flow's packets in the other direction
//     were written into some queue, that queue): a flow's packets are read
//     by one inside loop.
//   - wire → TUN: sealed datagrams carry the sending queue in the counter's
//     top byte, and the socket group's BPF program (encap.SteerProgram)
//     hands each to socket (sender queue mod queues); the outside loop of
//     that socket writes them into its own TUN queue. Plain GENEVE
//     (--insecure) carries no queue: the program hashes the inner flow
//     instead, symmetrically, so both directions of a flow pick one index.
//
// The water driver has a single queue.

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/udp"
)

// maxDefaultQueues bounds the default --queues: past a few pipelines the
// peers' counters and the kernel, not the loops, limit a node.
const maxDefaultQueues = 8

// DefaultQueues is --queues' default for driver: min(cores, 8), and 1 for
// the single-queue water driver.
func DefaultQueues(driver string) int {
	if driver == tunnel.DriverWater {
		return 1
	}
	return min(runtime.NumCPU(), maxDefaultQueues)
}

// queue is one pipeline: a TUN queue and a socket, which its inside and
// outside loops own.
type queue struct {
	index int
	tun   tunnel.Device
	conn  Transport

	tunWriteMu sync.Mutex // both loops of the queue write into its TUN (ICMP errors, inner packets)
	io         ioCounters
}

// ioCounters are a queue's I/O counters, bumped once per batch.
type ioCounters struct {
	tunReads, tunReadPackets   atomic.Uint64
	tunWrites, tunWritePackets atomic.Uint64
}

// tally adds up a batch's packets to one peer, so that the loops of several
// queues write a peer's shared counters once per run of packets to (or from)
// it, not once per packet. A loop adds each packet and flushes at the end of
// its batch.
type tally struct {
	rx             bool // counts received packets (else sent ones)
	peer           *Peer
	packets, bytes uint64
}

func (t *tally) add(p *Peer, size int) {
	if p != t.peer {
		t.flush()
		t.peer = p
	}
	t.packets++
	t.bytes += uint64(size)
}

func (t *tally) flush() {
	if p := t.peer; p != nil {
		if t.rx {
			p.rxPackets.Add(t.packets)
			p.rxBytes.Add(t.bytes)
		} else {
			p.txPackets.Add(t.packets)
			p.txBytes.Add(t.bytes)
		}
	}
	t.peer, t.packets, t.bytes = nil, 0, 0
}

// listenQueues opens the socket group for queues pipelines.
func listenQueues(cfg Config, log *slog.Logger, queues int) ([]Transport, error) {
	conns, err := udp.ListenGroup(udp.Config{Listen: cfg.Listen}, queues, encap.SteerProgram)
	if errors.Is(err, udp.ErrNoSteer) {
		log.Warn("each peer's traffic arrives on one queue", "err", err)
		err = nil
	}
	if err != nil {
		if errors.Is(err, udp.ErrAddrInUse) {
			return nil, fmt.Errorf("--listen %s: port already in use (a kernel geneve device, Cilium or OVN?); pick another port with --listen: %w", cfg.Listen, err)
		}
		return nil, fmt.Errorf("--listen %s: %w", cfg.Listen, err)
	}
	ts := make([]Transport, len(conns))
	for i, c := range conns {
		ts[i] = c
	}
	return ts, nil
}

// writeTUN hands a batch to q's TUN queue; both of q's loops call it.
func (n *Node) writeTUN(q *queue, bufs [][]byte) {
	q.tunWriteMu.Lock()
	err := q.tun.Write(bufs, tunnel.WriteOffset)
	q.tunWriteMu.Unlock()
	q.io.tunWrites.Add(1)
	q.io.tunWritePackets.Add(uint64(len(bufs)))
	if err != nil && !errors.Is(err, tunnel.ErrClosed) {
		n.drops.add(dropTunWriteError, uint64(len(bufs))) // some of the batch may have gone through
	}
}

// queueStatus reports each queue's counters, and their sums as api.IOStatus.
func (n *Node) queueStatus() ([]api.QueueStatus, api.IOStatus) {
	var total api.IOStatus
	qs := make([]api.QueueStatus, len(n.queues))
	for i, q := range n.queues {
		s := api.QueueStatus{
			Queue:    q.index,
			TunReads: q.io.tunReads.Load(), TunReadPackets: q.io.tunReadPackets.Load(),
			TunWrites: q.io.tunWrites.Load(), TunWritePackets: q.io.tunWritePackets.Load(),
			UDP: api.UDPStats(q.conn.Stats()),
		}
		qs[i] = s
		total.TunReads += s.TunReads
		total.TunReadPackets += s.TunReadPackets
		total.TunWrites += s.TunWrites
		total.TunWritePackets += s.TunWritePackets
		total.UDP = total.UDP.Add(s.UDP)
	}
	return qs, total
}

// udpOffloads are the sockets' offloads: one is on only where it is on for
// every socket (the kernel may turn GSO off on one), with the first reason.
func (n *Node) udpOffloads() udp.Offloads {
	off := n.queues[0].conn.Offloads()
	for _, q := range n.queues[1:] {
		o := q.conn.Offloads()
		off.GSO, off.GRO = off.GSO && o.GSO, off.GRO && o.GRO
		if off.Reason == "" && o.Reason != "" {
			off.Reason = fmt.Sprintf("queue %d: %s", q.index, o.Reason)
		}
	}
	return off
}
