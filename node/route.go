package node

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gaissmai/bart"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/peer"
)

// Peer is a remote node as the data path sees it. A Peer is immutable; its
// counters live behind a pointer that every snapshot of the same peer shares,
// so increments made through an old snapshot are never lost.
type Peer struct {
	peer.Info
	*counters
	// host is the peer's own underlay address (its endpoint's), the one
	// inner source besides its subnet that it may send from: replies of
	// services on that host to our containers. Invalid when the endpoint
	// lies inside the overlay, so it can never stand for an overlay address.
	host netip.Addr
}

// counters are updated by the forwarding loops without locks. rx is the
// codec's receive state for the peer (session keys, replay window).
type counters struct {
	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	rx                 *encap.PeerState
	path               pathHealth
}

// table is an immutable routing snapshot; the loops load it once per batch
// and a change swaps in a new one, so lookups take no locks.
type table struct {
	routes     *bart.Table[*Peer]
	byEndpoint map[netip.AddrPort]*Peer
	peers      []*Peer // sorted by name, for status
}

// sourceOK reports whether src may be the inner source of a packet from p:
// an address of one of its subnets (both families), or its host's own
// underlay address.
func (p *Peer) sourceOK(src netip.Addr) bool {
	return p.Subnet.Contains(src) || p.Subnet6.Contains(src) || src == p.host
}

// hostAddr is a node's underlay address as the inner source its host's
// traffic may carry, besides the node's subnet; invalid (matching no source)
// when it lies inside the overlay, where it would stand for another node's.
func hostAddr(underlay netip.Addr, ov overlay) netip.Addr {
	if a := underlay.Unmap(); !ov.network.Contains(a) && !ov.network6.Contains(a) {
		return a
	}
	return netip.Addr{}
}

// lookup returns the peer whose subnet holds dst (longest prefix), or nil.
func (t *table) lookup(dst netip.Addr) *Peer {
	p, _ := t.routes.Lookup(dst)
	return p
}

// has reports whether the table holds a peer named name, routable or not
// (a dead peer's packets can still arrive and be traced).
func (t *table) has(name string) bool {
	_, ok := slices.BinarySearchFunc(t.peers, name, func(p *Peer, name string) int { return strings.Compare(p.Name, name) })
	return ok
}

// buildTable is buildTableIn for a single-stack node.
func buildTable(infos []peer.Info, network, own netip.Prefix, codec encap.Codec, old *table) (t *table, errs []error) {
	return buildTableIn(infos, overlay{network: network, subnet: own}, codec, old)
}

// buildTableIn checks a peer set against this node's own networks and
// subnets and returns the new snapshot. A peer that does not check out
// (outside the network, overlapping another, a name or endpoint twice) is
// left out and reported in errs; the rest is routed, both its subnets when
// it is dual-stack. Counters carry over from old by name.
func buildTableIn(infos []peer.Info, ov overlay, codec encap.Codec, old *table) (t *table, errs []error) {
	prev := map[string]*Peer{}
	if old != nil {
		for _, p := range old.peers {
			prev[p.Name] = p
		}
	}
	t = &table{routes: new(bart.Table[*Peer]), byEndpoint: make(map[netip.AddrPort]*Peer, len(infos))}
	names := map[string]bool{}
	for _, in := range infos {
		if err := t.checkDual(in, names, ov); err != nil {
			errs = append(errs, err)
			continue
		}
		names[in.Name] = true
		p := &Peer{Info: in}
		p.host = hostAddr(in.Endpoint.Addr(), ov)
		if old := prev[in.Name]; old != nil {
			p.counters = old.counters
		} else {
			p.counters = &counters{rx: codec.NewPeer(in.Name)}
		}
		t.peers = append(t.peers, p)
		if in.State.Routable() {
			t.routes.Insert(in.Subnet, p)
			if in.Subnet6.IsValid() && ov.network6.IsValid() {
				t.routes.Insert(in.Subnet6, p)
			}
			t.byEndpoint[in.Endpoint] = p
		}
	}
	sortPeers(t.peers)
	return t, errs
}

// check says why in cannot join t, if it cannot.
func (t *table) check(in peer.Info, names map[string]bool, network, own netip.Prefix) error {
	switch {
	case names[in.Name]:
		return fmt.Errorf("peer %q listed twice", in.Name)
	case !network.Contains(in.Subnet.Addr()) || in.Subnet.Bits() < network.Bits():
		return fmt.Errorf("peer %q: subnet %s is not inside the network %s", in.Name, in.Subnet, network)
	case !in.State.Routable():
		return nil // shown, not routed: overlaps do not matter
	case in.Subnet.Overlaps(own):
		return fmt.Errorf("peer %q: subnet %s overlaps this node's subnet %s", in.Name, in.Subnet, own)
	}
	if t.routes.OverlapsPrefix(in.Subnet) {
		o := overlapping(t.routes, in.Subnet)
		return fmt.Errorf("peer %q: subnet %s overlaps peer %q's %s", in.Name, in.Subnet, o.Name, o.Subnet)
	}
	if o := t.byEndpoint[in.Endpoint]; o != nil {
		return fmt.Errorf("peer %q: endpoint %s is also peer %q's", in.Name, in.Endpoint, o.Name)
	}
	return nil
}

// overlapping returns a peer in routes whose subnet overlaps pfx.
func overlapping(routes *bart.Table[*Peer], pfx netip.Prefix) *Peer {
	for _, p := range routes.Supernets(pfx) {
		return p
	}
	for _, p := range routes.Subnets(pfx) {
		return p
	}
	return nil
}

func sortPeers(ps []*Peer) {
	slices.SortFunc(ps, func(a, b *Peer) int { return strings.Compare(a.Name, b.Name) })
}
