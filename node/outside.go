package node

// The outside loop: datagrams from peers enter this host through the TUN.
//
//	UDP Read (a batch; GRO-coalesced datagrams arrive split) → per datagram:
//	find the peer by its endpoint, open (authenticate, decrypt) the datagram
//	with that peer's receive state, check the inner
//	source is inside that peer's subnet and the destination inside ours →
//	TUN Write of the whole batch (the wireguard driver coalesces TCP: GRO).
//
// Inner packets are not copied: the TUN write slices start just in front of
// them, leaving the driver its virtio-header headroom. One goroutine owns
// every buffer here.

import (
	"errors"
	"net"
	"net/netip"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/tunnel"
)

// rxOffset is where datagrams land in receive buffers; with the codec's
// headroom in front of each inner packet it leaves at least
// tunnel.WriteOffset bytes for the TUN driver.
const rxOffset = tunnel.WriteOffset

type outside struct {
	n     *Node
	bufs  [][]byte
	sizes []int
	eps   []netip.AddrPort
	out   [][]byte
	ctl   []byte // scratch for answers to probes
}

func newOutside(n *Node) *outside {
	batch := n.conn.BatchSize()
	o := &outside{
		n:     n,
		bufs:  make([][]byte, batch),
		sizes: make([]int, batch),
		eps:   make([]netip.AddrPort, batch),
		out:   make([][]byte, 0, batch),
		ctl:   make([]byte, n.codec.Headroom()+probeLen+n.codec.Tailroom()),
	}
	// 64 KiB each: the TUN driver coalesces TCP segments into a buffer's
	// spare capacity (GRO).
	for i := range o.bufs {
		o.bufs[i] = make([]byte, rxOffset+65535+tunnel.WriteOffset)
	}
	return o
}

func (o *outside) run() error {
	n := o.n
	for {
		count, err := n.conn.Read(o.bufs, o.sizes, o.eps, rxOffset)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		t := n.table.Load()
		o.out = o.out[:0]
		for i := range count {
			o.datagram(t, o.bufs[i], o.sizes[i], o.eps[i])
		}
		if len(o.out) > 0 {
			n.writeTUN(o.out)
		}
	}
}

// datagram checks one datagram at buf[rxOffset:rxOffset+size] from ep and
// queues its inner packet for the TUN.
func (o *outside) datagram(t *table, buf []byte, size int, ep netip.AddrPort) {
	n := o.n
	dgram := buf[rxOffset : rxOffset+size]
	peer := t.byEndpoint[ep]
	if peer == nil {
		n.drops.add(dropUnknownPeer, 1)
		if n.trace.on() {
			n.trace.datagram(nil, ep, size, dropUnknownPeer)
		}
		return
	}
	inner, err := n.codec.OpenFrom(dgram, peer.rx)
	if err == encap.ErrControl {
		n.control(peer, dgram, o.ctl)
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
	case !peer.Subnet.Contains(ip.src):
		verdict = dropSpoofedSource
	case !n.cfg.Subnet.Contains(ip.dst):
		verdict = dropNotOurSubnet
	}
	if n.trace.on() {
		n.trace.packet(TraceIn, peer, inner, ip, ok, verdict)
	}
	if verdict != pass {
		n.drops.add(verdict, 1)
		return
	}
	peer.rxPackets.Add(1)
	peer.rxBytes.Add(uint64(len(inner)))
	// inner is a sub-slice of buf; find where it starts to hand the TUN a
	// slice with WriteOffset bytes of headroom in front of it.
	start := cap(buf) - cap(inner)
	o.out = append(o.out, buf[start-tunnel.WriteOffset:start+len(inner)])
}
