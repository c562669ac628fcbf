package node

// The outside loop: datagrams from peers enter this host through the TUN.
//
//	UDP Read (a batch of slices of the socket's receive buffers; GRO-coalesced
//	datagrams arrive split) → per datagram: find the peer by its endpoint,
//	open (authenticate, decrypt) the datagram with that peer's receive state
//	straight into a TUN buffer, check the inner source is inside that peer's
//	subnet or is the peer host's own underlay address, and the destination
//	inside ours → TUN Write of the whole batch (the wireguard driver
//	coalesces TCP: GRO).
//
// Decrypting into the TUN buffer is the one pass over each packet's bytes;
// the buffer keeps the driver's virtio-header headroom in front and 64 KiB of
// room behind for coalescing. One goroutine per queue runs this loop and owns
// every buffer here.

import (
	"net/netip"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/tunnel"
)

type outside struct {
	n      *Node
	q      *queue
	dgrams [][]byte // the socket's datagrams, valid until the next Read
	eps    []netip.AddrPort
	bufs   [][]byte // TUN buffers the inner packets are opened into
	out    [][]byte
	got    tally // packets from peers, written to their counters once a batch
}

func newOutside(n *Node, q *queue) *outside {
	batch := q.conn.BatchSize()
	o := &outside{
		n:      n,
		q:      q,
		dgrams: make([][]byte, batch),
		eps:    make([]netip.AddrPort, batch),
		bufs:   make([][]byte, batch),
		out:    make([][]byte, 0, batch),
		got:    tally{rx: true},
	}
	// 64 KiB each behind the driver's headroom: any datagram opens into
	// one, and the TUN driver coalesces TCP segments into a buffer's spare
	// capacity (GRO).
	for i := range o.bufs {
		o.bufs[i] = make([]byte, tunnel.WriteOffset+65535)
	}
	return o
}

// run delivers until the socket is closed or keeps failing (loop_errors.go).
func (o *outside) run() error {
	n := o.n
	errs := newLoopErrors(n, "UDP read", dropUDPReadError)
	for {
		count, err := o.q.conn.Read(o.dgrams, o.eps)
		if stop, err := errs.check(err); stop {
			return err
		}
		t := n.table.Load()
		o.out = o.out[:0]
		for i := range count {
			o.datagram(t, o.dgrams[i], o.eps[i])
		}
		o.got.flush()
		if len(o.out) > 0 {
			n.writeTUN(o.q, o.out)
		}
	}
}

// datagram checks one datagram from ep and queues its inner packet, opened
// into the next free TUN buffer, for the TUN.
func (o *outside) datagram(t *table, dgram []byte, ep netip.AddrPort) {
	n := o.n
	size := len(dgram)
	peer := t.byEndpoint[ep]
	if peer == nil {
		n.drops.add(dropUnknownPeer, 1)
		if n.trace.on() {
			n.trace.datagram(nil, ep, size, dropUnknownPeer)
		}
		return
	}
	buf := o.bufs[len(o.out)]
	inner, err := n.codec.OpenFrom(buf[tunnel.WriteOffset:], dgram, peer.rx)
	if err == encap.ErrControl {
		n.control(peer, dgram)
		return
	}
	if err != nil {
		r := n.drops.addEncap(err)
		if n.trace.on() {
			n.trace.datagram(peer, ep, size, r)
		}
		return
	}
	ip, ok := parseIP(inner)
	verdict := pass
	switch {
	case !ok:
		verdict = encapReason(encap.ErrInner) // unreachable: Open checked the header
	case !peer.sourceOK(ip.src):
		verdict = dropSpoofedSource
	case !n.cfg.inSubnet(ip.dst):
		verdict = dropNotOurSubnet
	}
	if n.trace.on() {
		n.trace.packet(api.TraceIn, peer, inner, ip, ok, verdict)
	}
	if verdict != pass {
		n.drops.add(verdict, 1)
		return
	}
	o.got.add(peer, len(inner))
	o.out = append(o.out, buf[:tunnel.WriteOffset+len(inner)])
}
