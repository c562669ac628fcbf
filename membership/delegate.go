package membership

// memberlist's callbacks. They run on memberlist's goroutines, some while it
// holds its node lock, so each one only copies what it needs into Membership
// under m.mu (a leaf lock: nothing that calls memberlist or does I/O holds
// it), counts, and sets the wake flag; the maintain goroutine does the rest
// (snapshots, logs, files). None of them blocks.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
	md := meta{Name: m.cfg.Name, Network: m.cfg.Network, Endpoint: m.cfg.DataEndpoint, Subnet: m.own.Subnet, Seq: m.own.Seq}
	if m.leaving {
		md.Flags |= flagLeaving
	}
	m.mu.Unlock()
	if md.Subnet.IsValid() {
		md.Address = md.Subnet.Addr()
	}
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
	case md.Subnet.IsValid() && insideNetwork(md.Subnet, m.cfg.Network) != nil:
		return m.reject(reasonOutsideNetwork, n.Name, insideNetwork(md.Subnet, m.cfg.Network))
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
		started := m.started
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
	m.mu.Lock()
	if mb := m.members[n.Name]; mb != nil {
		mb.heard = time.Now()
	}
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
	ls := m.tableLocked(now)
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

// noteNode records a member event.
func (m *Membership) noteNode(n *memberlist.Node, state peer.State) {
	now := time.Now()
	gossip, _ := netip.AddrFromSlice(n.Addr)
	md, err := decodeMeta(n.Meta)
	m.mu.Lock()
	mb := m.members[n.Name]
	if mb == nil {
		mb = &member{name: n.Name}
		m.members[n.Name] = mb
		m.membersChanged = now
	}
	if err == nil {
		if md.Subnet != mb.meta.Subnet || md.Seq != mb.meta.Seq {
			m.claimsChanged = now
		}
		if md.Subnet.IsValid() && md.Subnet != mb.meta.Subnet && mb.state == peer.Alive && state == peer.Alive && n.Name != m.cfg.Name {
			m.notes = append(m.notes, note{event: "leased", name: n.Name, subnet: md.Subnet, endpoint: md.Endpoint})
		}
		mb.meta = md
	}
	mb.gossip = netip.AddrPortFrom(gossip.Unmap(), n.Port)
	if state == peer.Dead && mb.meta.Flags&flagLeaving != 0 {
		state = peer.Left
	}
	if mb.state != state {
		if n.Name != m.cfg.Name && (mb.state == peer.Alive) != (state == peer.Alive) {
			m.liveOthers.Add(map[bool]int64{true: 1, false: -1}[state == peer.Alive])
		}
		mb.state, mb.since = state, now
		if n.Name != m.cfg.Name {
			m.notes = append(m.notes, note{event: string(state), name: n.Name, subnet: mb.meta.Subnet, endpoint: mb.meta.Endpoint})
		}
	}
	mb.heard = now
	if l, ok := m.leases[n.Name]; ok && n.Name != m.cfg.Name {
		l.LastSeen = now // alive now, or last seen alive now
		m.leases[n.Name] = l
	}
	m.rebuild = true
	m.mu.Unlock()
	m.wakeUp()
}

// mergeLeases merges records from the network, dropping invalid ones and
// ones already forgotten here; it returns how many changed the table.
func (m *Membership) mergeLeases(ls []Lease) int {
	now := time.Now()
	changed := 0
	m.mu.Lock()
	for _, l := range ls {
		if err := checkLease(l, m.cfg.Network); err != nil {
			m.rejectLocked(reasonBadLease, l.Name, err)
			continue
		}
		if l.LastSeen.After(now) { // a fast clock must not extend reservations
			l.LastSeen = now
		}
		if l.Name == m.cfg.Name && m.own.Subnet.IsValid() {
			// Ours: the maintain goroutine re-asserts our record if this beats it.
			if l.Version >= m.own.Version && !sameContent(l, m.own) {
				m.reassert = max(m.reassert, l.Version)
			}
			continue
		}
		live := m.liveLocked(l.Name)
		if !live && expired(l, now, m.cfg.LeaseTTL) {
			continue // forgotten here; do not bring it back
		}
		cur, have := m.leases[l.Name]
		next, diff := mergeLease(cur, have, l)
		m.leases[l.Name] = next
		if diff {
			changed++
		}
	}
	if changed > 0 {
		m.tableDirty, m.rebuild = true, true
		m.claimsChanged = now
	}
	m.mu.Unlock()
	if changed > 0 {
		m.wakeUp()
	}
	return changed
}

// tableLocked returns the table to share, with our own record and LastSeen
// of live owners brought up to now.
func (m *Membership) tableLocked(now time.Time) []Lease {
	ls := make([]Lease, 0, len(m.leases)+1)
	for name, l := range m.leases {
		if name == m.cfg.Name {
			continue
		}
		if m.liveLocked(name) {
			l.LastSeen = now
		}
		ls = append(ls, l)
	}
	if m.own.Subnet.IsValid() {
		own := m.own
		own.LastSeen = now
		ls = append(ls, own)
	}
	slices.SortFunc(ls, func(a, b Lease) int { return strings.Compare(a.Name, b.Name) })
	return ls
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
