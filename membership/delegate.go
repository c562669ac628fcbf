package membership

// memberlist's callbacks. They run on memberlist's goroutines, some while it
// holds its node lock, so each one only hands the event to the lease state
// machine under m.mu (a leaf lock: nothing that calls memberlist or does I/O
// holds it), queues what it decided, and sets the wake flag; the maintain
// goroutine does the rest (snapshots, logs, files). None of them blocks.

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/weftnet/weft/peer"
)

type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
	_ memberlist.AliveDelegate    = (*delegate)(nil)
	_ memberlist.PingDelegate     = (*delegate)(nil)
)

// NodeMeta announces this node; memberlist calls it at start and on UpdateNode.
func (d *delegate) NodeMeta(limit int) []byte {
	m := d.m
	m.mu.Lock()
	md := meta{Name: m.cfg.Name, Network: m.cfg.Network, Endpoint: m.cfg.DataEndpoint, Subnet: m.st.own.Subnet, Seq: m.st.own.Seq, LeaseTTL: m.st.ttl}
	if m.leaving {
		md.Flags |= flagLeaving
	}
	m.mu.Unlock()
	if md.Subnet.IsValid() {
		md.Address = md.Subnet.Addr()
	}
	md.Network6, md.Subnet6 = m.cfg.Network6, m.cfg.subnet6(md.Subnet)
	b := md.encode()
	if len(b) > limit { // cannot happen: names are at most 255 bytes
		panic(fmt.Sprintf("membership: metadata of %d bytes exceeds memberlist's %d", len(b), limit))
	}
	return b
}

// NotifyAlive screens every alive message before memberlist accepts it: a node
// whose metadata does not parse or belongs to another network never becomes a
// member here.
func (d *delegate) NotifyAlive(n *memberlist.Node) error {
	m := d.m
	if n.Name == m.cfg.Name {
		return nil
	}
	md, err := decodeMeta(n.Meta)
	switch {
	case err != nil:
		return m.reject(reasonBadMeta, n.Name, err)
	case md.Name != n.Name:
		return m.reject(reasonBadMeta, n.Name, fmt.Errorf("metadata names %q", md.Name))
	case md.Network != m.cfg.Network:
		return m.reject(reasonWrongNetwork, n.Name, fmt.Errorf("network %s, ours is %s", md.Network, m.cfg.Network))
	case md.Network6 != m.cfg.Network6:
		return m.reject(reasonWrongNetwork, n.Name, fmt.Errorf("IPv6 network %q, ours is %q", prefixOrNone(md.Network6), prefixOrNone(m.cfg.Network6)))
	case md.Subnet.IsValid() && insideNetwork(md.Subnet, m.cfg.Network) != nil:
		return m.reject(reasonOutsideNetwork, n.Name, insideNetwork(md.Subnet, m.cfg.Network))
	case m.cfg.Network6.IsValid() && md.Subnet.IsValid() && md.Subnet.Bits() != m.cfg.SubnetLen:
		// IPv6 subnets are derived from the IPv4 subnet's number, which
		// subnets of two sizes share: their twins would overlap.
		return m.reject(reasonWrongNetwork, n.Name, fmt.Errorf("subnet %s is not a /%d, as every subnet of this dual-stack cluster must be (another --subnet-len?)", md.Subnet, m.cfg.SubnetLen))
	case md.Subnet6 != m.cfg.subnet6(md.Subnet):
		return m.reject(reasonBadMeta, n.Name, fmt.Errorf("IPv6 subnet %q is not %s's twin %q (another --subnet-len6?)", prefixOrNone(md.Subnet6), md.Subnet, prefixOrNone(m.cfg.subnet6(md.Subnet))))
	}
	return nil
}

// NotifyJoin: a member is alive (new, or back from dead or left).
func (d *delegate) NotifyJoin(n *memberlist.Node) { d.m.noteNode(n, peer.Alive) }

// NotifyUpdate: a live member's metadata changed.
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.m.noteNode(n, peer.Alive) }

// NotifyLeave: a member died or left. memberlist does not say which (its
// Node.State is not filled in here), so a member whose last metadata said it
// was leaving left; any other died.
func (d *delegate) NotifyLeave(n *memberlist.Node) { d.m.noteNode(n, peer.Dead) }

// NotifyConflict: a node announces a name that a live member at another
// address already has. When the name is ours, we are the newcomer.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	m := d.m
	if existing.Name == m.cfg.Name {
		a, _ := netip.AddrFromSlice(other.Addr)
		m.mu.Lock()
		m.nameConflict = netip.AddrPortFrom(a.Unmap(), other.Port)
		started := m.st.started
		m.mu.Unlock()
		if !started { // Start sorts it out: our previous run, or ErrNameInUse
			m.stats[reasonDuplicateName].Add(1)
			return
		}
		m.reject(reasonDuplicateName, other.Name, fmt.Errorf("%s announces our name", other.Address()))
		return
	}
	m.reject(reasonDuplicateName, other.Name, fmt.Errorf("%s announces the name of the member at %s", other.Address(), existing.Address()))
}

// AckPayload is empty: probes carry nothing extra.
func (d *delegate) AckPayload() []byte { return nil }

// NotifyPingComplete: one of our probes was answered, so we heard from it.
func (d *delegate) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	m := d.m
	now := time.Now()
	m.mu.Lock()
	m.st.heard(n.Name, now)
	m.mu.Unlock()
}

// NotifyMsg receives a gossiped lease record.
func (d *delegate) NotifyMsg(b []byte) {
	m := d.m
	l, err := decodeLeaseMsg(b)
	if err != nil {
		m.reject(reasonBadLease, "", err)
		return
	}
	if m.mergeLeases([]Lease{l}) > 0 {
		// New to us: pass it on, as memberlist does with its own messages.
		m.broadcast(l)
	}
}

// GetBroadcasts hands memberlist the lease records to piggyback on gossip.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.queue.GetBroadcasts(overhead, limit)
}

// LocalState is our whole lease table for a push/pull.
func (d *delegate) LocalState(bool) []byte {
	m := d.m
	now := time.Now()
	m.mu.Lock()
	ls := m.st.table(now)
	m.mu.Unlock()
	return encodeState(ls)
}

// MergeRemoteState merges a peer's lease table from a push/pull.
func (d *delegate) MergeRemoteState(b []byte, _ bool) {
	m := d.m
	ls, err := decodeState(b)
	if err != nil {
		m.reject(reasonBadLease, "", err)
		return
	}
	m.mergeLeases(ls)
}

// noteNode hands a member event to the state machine.
func (m *Membership) noteNode(n *memberlist.Node, state peer.State) {
	now := time.Now()
	gossip, _ := netip.AddrFromSlice(n.Addr)
	md, err := decodeMeta(n.Meta)
	ev := memberEvent{name: n.Name, gossip: netip.AddrPortFrom(gossip.Unmap(), n.Port), meta: md, metaOK: err == nil, state: state}
	m.mu.Lock()
	fx := m.st.member(ev, now)
	m.liveOthers.Store(int64(m.st.live))
	m.mu.Unlock()
	m.apply(fx)
	m.wakeUp()
}

// mergeLeases hands records from the network to the state machine; it
// returns how many changed the table.
func (m *Membership) mergeLeases(ls []Lease) int {
	now := time.Now()
	m.mu.Lock()
	changed, fx := m.st.merge(ls, now)
	m.mu.Unlock()
	m.apply(fx)
	if changed > 0 || len(fx.notes) > 0 {
		m.wakeUp()
	}
	return changed
}

// leaseBroadcast gossips one record; a newer record of the same name
// replaces one still queued.
type leaseBroadcast struct {
	name string
	msg  []byte
}

func (b *leaseBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*leaseBroadcast)
	return ok && ob.name == b.name
}
func (b *leaseBroadcast) Name() string    { return "lease/" + b.name }
func (b *leaseBroadcast) Message() []byte { return b.msg }
func (b *leaseBroadcast) Finished()       {}

func (m *Membership) broadcast(l Lease) {
	m.queue.QueueBroadcast(&leaseBroadcast{name: l.Name, msg: encodeLeaseMsg(l)})
}

func (m *Membership) wakeUp() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
