package membership

// Subnet leases without a central store.
//
// Every node keeps the whole lease table (one record per node name) and
// shares it: a record that changes is broadcast by gossip, and memberlist's
// periodic push/pull exchanges whole tables, so a node that missed a
// broadcast or a partition catches up. A record changes only by its owner
// (claim, move) or by an operator's Release (a tombstone); Version orders the
// changes and the higher one wins a merge. LastSeen is the exception: every
// node raises it while it sees the owner alive, and merges keep the maximum.
//
// Contested subnets: two records may name overlapping subnets, when two nodes
// claim at the same moment or partitions heal. The claim with the lower
// (Seq, Name) keeps the subnet everywhere, because every node compares the
// same two values. Seq is a Lamport clock: a claim takes one more than any Seq
// in the claimer's table, so an existing lease beats any later claim, and two
// claims made from the same view tie and fall to the name order.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/gaissmai/bart"
)

// Lease is one node's claim on a subnet, as the cluster shares it and
// leases.json stores it. The JSON keys are the wire format: add, never rename.
type Lease struct {
	Name       string         `json:"name"`
	Subnet     netip.Prefix   `json:"subnet"`
	Seq        uint64         `json:"seq"`                  // claim order: the lower (Seq, Name) keeps a contested subnet
	Version    uint64         `json:"version"`              // bumped by each change; the higher wins a merge
	Gossip     netip.AddrPort `json:"gossip"`               // the owner's gossip address, to re-join after a partition
	Endpoint   netip.AddrPort `json:"endpoint"`             // the owner's data endpoint
	LastSeen   time.Time      `json:"last_seen,omitzero"`   // when a node last saw the owner alive
	Released   bool           `json:"released,omitempty"`   // tombstone: an operator freed the subnet
	ReleasedAt time.Time      `json:"released_at,omitzero"` // tombstones are forgotten LeaseTTL (+ MaxClockSkew) after
	// SeenAgo is 1ns more than how long before the record was sent its
	// owner was last seen alive, by the sender's clock: the receiver's
	// LastSeen is its own now minus that, so nodes whose clocks differ
	// agree on when a lease expires. Zero: not set (an older version).
	SeenAgo time.Duration `json:"seen_ago_ns,omitzero"`
}

// aged returns l as sent at now: with SeenAgo from its LastSeen.
func aged(l Lease, now time.Time) Lease {
	if !l.LastSeen.IsZero() {
		l.SeenAgo = max(now.Sub(l.LastSeen), 0) + 1
	}
	return l
}

// sameContent compares everything that a merge orders by Version.
func sameContent(a, b Lease) bool {
	return a.Subnet == b.Subnet && a.Seq == b.Seq && a.Version == b.Version && a.Gossip == b.Gossip &&
		a.Endpoint == b.Endpoint && a.Released == b.Released && a.ReleasedAt.Equal(b.ReleasedAt)
}

// contentAfter orders two different records of one version, so that nodes
// that merged them in either order keep the same one.
func contentAfter(a, b Lease) bool {
	switch {
	case a.Released != b.Released:
		return a.Released
	case a.Seq != b.Seq:
		return a.Seq > b.Seq
	case a.Subnet != b.Subnet:
		return a.Subnet.String() > b.Subnet.String()
	case a.Gossip != b.Gossip:
		return a.Gossip.String() > b.Gossip.String()
	case a.Endpoint != b.Endpoint:
		return a.Endpoint.String() > b.Endpoint.String()
	}
	return a.ReleasedAt.After(b.ReleasedAt)
}

// mergeLease returns the record to keep and whether its content changed.
func mergeLease(cur Lease, have bool, in Lease) (Lease, bool) {
	if !have {
		return in, true
	}
	seen := cur.LastSeen
	if in.LastSeen.After(seen) {
		seen = in.LastSeen
	}
	if in.Version > cur.Version || in.Version == cur.Version && !sameContent(cur, in) && contentAfter(in, cur) {
		in.LastSeen = seen
		return in, true
	}
	cur.LastSeen = seen
	return cur, false
}

// expired says whether a record of an owner that is not alive can be
// forgotten: a lease ttl after its owner was last seen (LastSeen is on our
// clock: merge converts), a tombstone ttl + skew after the release (its
// ReleasedAt is on the releaser's clock).
func expired(l Lease, now time.Time, ttl, skew time.Duration) bool {
	if l.Released {
		return now.Sub(l.ReleasedAt) >= ttl+skew
	}
	return now.Sub(l.LastSeen) >= ttl
}

// checkLease validates a record that arrived from the network or a file.
func checkLease(l Lease, network netip.Prefix) error {
	if err := validName(l.Name); err != nil {
		return fmt.Errorf("lease name %q: %w", l.Name, err)
	}
	if err := insideNetwork(l.Subnet, network); err != nil {
		return fmt.Errorf("lease of %q: %w", l.Name, err)
	}
	if l.Version == 0 {
		return fmt.Errorf("lease of %q: version 0", l.Name)
	}
	return nil
}

// A claim is a subnet someone holds or announces, with its rank.
type claim struct {
	name   string
	subnet netip.Prefix
	seq    uint64 // noSeq for an announcement no lease record backs
}

// beats reports whether c keeps a subnet contested with o.
func (c claim) beats(o claim) bool {
	return c.seq < o.seq || c.seq == o.seq && c.name < o.name
}

// noSeq ranks an announcement that no lease record backs (yet): it loses to
// every lease, so a node that only announces cannot take a leased subnet.
const noSeq = math.MaxUint64

// claims indexes claims by prefix to find the overlapping ones quickly.
type claims struct {
	t bart.Table[[]claim]
	n int
}

func (cs *claims) add(c claim) {
	cs.n++
	cs.t.Modify(c.subnet, func(old []claim, _ bool) ([]claim, bool) { return append(old, c), false })
}

// all returns every claim.
func (cs *claims) all() []claim {
	out := make([]claim, 0, cs.n)
	for _, v := range cs.t.All() {
		out = append(out, v...)
	}
	return out
}

// rivals calls f for every claim of another name overlapping p.
func (cs *claims) rivals(name string, p netip.Prefix, f func(claim)) {
	visit := func(_ netip.Prefix, v []claim) bool {
		for _, o := range v {
			if o.name != name {
				f(o)
			}
		}
		return true
	}
	cs.t.Supernets(p)(visit)
	for q, v := range cs.t.Subnets(p) {
		if q != p { // p itself was a supernet above
			visit(q, v)
		}
	}
}

// winner returns the best claim of another name overlapping c that beats c.
func (cs *claims) winner(c claim) (claim, bool) {
	var best claim
	found := false
	cs.rivals(c.name, c.subnet, func(o claim) {
		if o.beats(c) && (!found || o.beats(best)) {
			best, found = o, true
		}
	})
	return best, found
}

// taken reports whether a claim of another name overlaps p.
func (cs *claims) taken(name string, p netip.Prefix) (o claim, ok bool) {
	cs.rivals(name, p, func(c claim) {
		if !ok {
			o, ok = c, true
		}
	})
	return o, ok
}

// ErrNetworkFull is matched (errors.Is) by the error of a full network.
var ErrNetworkFull = errors.New("network full")

type fullError struct {
	network netip.Prefix
	bits    int
	leased  int
}

func (e *fullError) Error() string {
	return fmt.Sprintf("no free /%d left in %s: %d leased (the first /%d, which holds the network address, is never handed out)",
		e.bits, e.network, e.leased, e.bits)
}

func (e *fullError) Is(target error) bool { return target == ErrNetworkFull }

// pickFree returns the skip+1-th free /bits of network in address order. The
// first subnet is never picked: its network address is the network's own
// (flannel skips it too), so nodes get .1, .2, … on a /16 of /24s.
//
// The loop ends: each turn returns, steps past a candidate that overlaps a
// claim inside it, jumps past a claim that covers it, or skips a free one,
// so it runs at most 2·claims + skip + 2 times before leaving the network.
func pickFree(network netip.Prefix, bits int, name string, cs *claims, skip int) (netip.Prefix, error) {
	c := netip.PrefixFrom(after(netip.PrefixFrom(network.Addr(), bits)), bits)
	for c.IsValid() && network.Contains(c.Addr()) {
		var cover netip.Prefix
		busy := false
		cs.rivals(name, c, func(o claim) {
			busy = true
			if o.subnet.Bits() < c.Bits() && (!cover.IsValid() || o.subnet.Bits() < cover.Bits()) {
				cover = o.subnet
			}
		})
		switch {
		case cover.IsValid():
			c = netip.PrefixFrom(after(cover), bits)
		case busy:
			c = netip.PrefixFrom(after(c), bits)
		case skip > 0:
			skip--
			c = netip.PrefixFrom(after(c), bits)
		default:
			return c, nil
		}
	}
	leased := 0
	for p, v := range cs.t.All() {
		for _, o := range v {
			if o.name != name && network.Overlaps(p) {
				leased++
			}
		}
	}
	return netip.Prefix{}, &fullError{network: network, bits: bits, leased: leased}
}

// after returns the first address past p, or the zero Addr at the end of the
// address space.
func after(p netip.Prefix) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last.Next()
}

// State exchanged by push/pull: every record, tombstones included.
const stateVersion = 1

type wireState struct {
	Version int     `json:"v"`
	Leases  []Lease `json:"leases"`
}

func encodeState(ls []Lease) []byte {
	b, _ := json.Marshal(wireState{Version: stateVersion, Leases: ls})
	return b
}

// decodeState parses a table from a peer or the lease file; records are
// checked one by one by the caller. It never panics on any input.
func decodeState(b []byte) ([]Lease, error) {
	var w wireState
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("lease table: %w", err)
	}
	if w.Version < 1 {
		return nil, fmt.Errorf("lease table: version %d", w.Version)
	}
	return w.Leases, nil
}

// Gossip messages (NotifyMsg) start with a type byte; types are append-only.
const msgLease byte = 1

func encodeLeaseMsg(l Lease) []byte {
	b, _ := json.Marshal(l)
	return append([]byte{msgLease}, b...)
}

func decodeLeaseMsg(b []byte) (Lease, error) {
	var l Lease
	if len(b) == 0 || b[0] != msgLease {
		return l, errors.New("unknown message type")
	}
	if err := json.Unmarshal(b[1:], &l); err != nil {
		return l, fmt.Errorf("lease message: %w", err)
	}
	return l, nil
}
