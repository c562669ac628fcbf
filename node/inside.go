package node

// The inside loop: packets this host routes into the TUN leave for peers.
//
//	TUN.Read (a batch; TSO superpackets arrive split) → per packet: check the
//	destination is in the overlay, the source is ours (our subnet or this
//	host's underlay address), find the peer by
//	longest prefix, seal the GENEVE header into the headroom in place →
//	UDP Write of the whole batch (runs to one peer become GSO sends).
//
// Packets for no peer or over the MTU are answered with ICMP written back
// into the TUN. One goroutine per queue runs this loop and owns every buffer
// here; it seals in its queue's counter space.

import (
	"net/netip"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/tunnel"
)

type inside struct {
	n       *Node
	q       *queue
	bufs    [][]byte
	sizes   []int
	dgrams  [][]byte
	eps     []netip.AddrPort
	icmpBuf [][]byte // scratch for ICMP errors, reused every batch
	icmpOut [][]byte
	sent    tally // packets to peers, written to their counters once a batch
}

func newInside(n *Node, q *queue) *inside {
	batch := q.tun.BatchSize()
	in := &inside{
		n:       n,
		q:       q,
		bufs:    make([][]byte, batch),
		sizes:   make([]int, batch),
		dgrams:  make([][]byte, 0, batch),
		eps:     make([]netip.AddrPort, 0, batch),
		icmpBuf: make([][]byte, batch),
		icmpOut: make([][]byte, 0, batch),
	}
	// Room for the codec in front and behind, and the largest IP packet:
	// a TUN whose MTU an operator raised by hand must not make reads fail.
	size := n.codec.Headroom() + 65535 + n.codec.Tailroom()
	for i := range in.bufs {
		in.bufs[i] = make([]byte, size)
		in.icmpBuf[i] = make([]byte, tunnel.WriteOffset+icmp6MaxLen)
	}
	return in
}

// run forwards until the TUN is closed or keeps failing (loop_errors.go).
func (in *inside) run() error {
	n := in.n
	off := n.codec.Headroom()
	errs := newLoopErrors(n, "TUN read", dropTunReadError)
	for {
		count, err := in.q.tun.Read(in.bufs, in.sizes, off)
		if count > 0 {
			in.forward(count, off)
		}
		if stop, err := errs.check(err); stop {
			return err
		}
	}
}

// forward sends the count packets just read, each at in.bufs[i][off:].
func (in *inside) forward(count, off int) {
	n := in.n
	in.q.io.tunReads.Add(1)
	in.q.io.tunReadPackets.Add(uint64(count))
	t := n.table.Load()
	in.dgrams, in.eps, in.icmpOut = in.dgrams[:0], in.eps[:0], in.icmpOut[:0]
	for i := range count {
		in.packet(t, in.bufs[i], off, in.sizes[i])
	}
	in.sent.flush()
	if len(in.dgrams) > 0 {
		if err := in.q.conn.Write(in.dgrams, in.eps); err != nil {
			n.drops.add(dropSendError, uint64(len(in.dgrams)))
			n.warnLimited(n.sendWarn, "UDP send failed", err)
		}
	}
	if len(in.icmpOut) > 0 {
		n.writeTUN(in.q, in.icmpOut)
	}
}

// packet handles buf[off:off+size]: queue it for a peer or count its drop.
func (in *inside) packet(t *table, buf []byte, off, size int) {
	n := in.n
	pkt := buf[off : off+size]
	ip, ok := parseIP(pkt)
	peer, verdict := in.route(t, ip, ok, size)
	if n.trace.on() {
		n.trace.packet(api.TraceOut, peer, pkt, ip, ok, verdict) // before sealing: the inner packet in clear
	}
	if verdict != pass {
		n.drops.add(verdict, 1)
		switch verdict {
		case dropTooBig:
			in.icmp(icmpTooBig, pkt, ip)
		case dropNoRoute:
			in.icmp(icmpNoRoute, pkt, ip)
		}
		return
	}
	dgram, err := n.codec.SealQueue(in.q.index, buf, off, size)
	if err != nil {
		n.drops.addEncap(err)
		return
	}
	in.sent.add(peer, size)
	in.dgrams = append(in.dgrams, dgram)
	in.eps = append(in.eps, peer.Endpoint)
}

// route decides where a packet from the TUN goes: to a peer (pass), or why
// it is dropped.
func (in *inside) route(t *table, ip ipInfo, ok bool, size int) (*Peer, dropReason) {
	n := in.n
	switch {
	case !ok:
		return nil, dropTunMalformed
	case ip.dst.IsMulticast():
		// The host's own link chatter: on a dual-stack TUN the kernel
		// reports its all-routers groups (MLD) when the link comes up.
		return nil, dropMulticast
	case !n.cfg.inNetwork(ip.dst):
		return nil, dropNotOverlay
	case !n.cfg.inSubnet(ip.src) && ip.src != n.host:
		// The host's underlay address is its replies to remote
		// containers that connected to it through the underlay;
		// peers accept it from this node and from nobody else.
		return nil, dropForeignSource
	case n.cfg.inSubnet(ip.dst):
		return nil, dropLocalDest
	case size > n.mtu:
		return nil, dropTooBig
	}
	if peer := t.lookup(ip.dst); peer != nil {
		return peer, pass
	}
	return nil, dropNoRoute
}

// icmp queues an ICMP error about pkt for the TUN, rate-limited.
func (in *inside) icmp(kind icmpKind, pkt []byte, ip ipInfo) {
	n := in.n
	if !needsICMPError(pkt, ip) || !n.icmpLimit.Allow() {
		return
	}
	buf := in.icmpBuf[len(in.icmpOut)]
	if l := buildICMP(buf[tunnel.WriteOffset:], kind, pkt, ip, n.mtu); l > 0 {
		in.icmpOut = append(in.icmpOut, buf[:tunnel.WriteOffset+l])
	}
}
