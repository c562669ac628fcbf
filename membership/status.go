package membership

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/peer"
)

// reason is why an announcement from another node was rejected.
type reason int

const (
	reasonBadMeta           reason = iota // metadata that does not parse or names another node
	reasonWrongNetwork                    // a node of another overlay network
	reasonOutsideNetwork                  // a subnet outside our network
	reasonOverlap                         // a subnet overlapping a claim that ranks first
	reasonDuplicateName                   // a second node with a live node's name
	reasonDuplicateEndpoint               // a data endpoint another peer has
	reasonBadLease                        // a lease record or table that does not parse or check out
	numReasons
)

var reasonNames = [numReasons]string{
	"bad_meta", "wrong_network", "outside_network", "overlap", "duplicate_name", "duplicate_endpoint", "bad_lease",
}

// note is a log line queued by a callback for the maintain goroutine.
type note struct {
	event    string // alive, dead, left, expired, lost, rejected
	name     string
	subnet   netip.Prefix
	endpoint netip.AddrPort
	reason   reason
	err      error
	ttl      time.Duration // of a "ttl" note: the TTL adopted
}

// reject counts a rejection and queues its log line, once per node name and
// reason. It returns the error memberlist's AliveDelegate wants.
func (m *Membership) reject(r reason, name string, err error) error {
	m.mu.Lock()
	m.rejectLocked(r, name, err)
	m.mu.Unlock()
	m.wakeUp()
	return fmt.Errorf("%s: %w", reasonNames[r], err)
}

func (m *Membership) rejectLocked(r reason, name string, err error) {
	m.stats[r].Add(1)
	key := reasonNames[r] + "/" + name
	if m.warned[key] || len(m.warned) >= maxWarned {
		return
	}
	m.warned[key] = true
	m.notes = append(m.notes, note{event: "rejected", name: name, reason: r, err: err})
}

// Stats returns how many announcements were rejected, by reason; every reason
// is listed. An alive message counts each time it arrives, an overlapping
// subnet once per node and subnet.
func (m *Membership) Stats() map[string]uint64 {
	s := make(map[string]uint64, numReasons)
	for r := range numReasons {
		s[reasonNames[r]] = m.stats[r].Load()
	}
	return s
}

// MemberStatus is one other node as `weft status` shows it.
type MemberStatus struct {
	Name     string         `json:"name"`
	Endpoint netip.AddrPort `json:"endpoint"` // underlay data endpoint
	Gossip   netip.AddrPort `json:"gossip"`
	Subnet   netip.Prefix   `json:"subnet"` // as last announced
	State    peer.State     `json:"state"`  // memberlist's: alive, dead or left
	LastSeen time.Time      `json:"last_seen"`
}

// Members lists the other nodes this node knows, gone ones included while
// their lease is reserved, sorted by name.
func (m *Membership) Members() []MemberStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.memberStatus()
}

// Leases lists the leases in force (ours included, released ones not),
// sorted by name. LastSeen of live owners is now.
func (m *Membership) Leases() []Lease {
	now := time.Now()
	m.mu.Lock()
	ls := m.st.table(now)
	m.mu.Unlock()
	return slices.DeleteFunc(ls, func(l Lease) bool { return l.Released })
}

// Release frees the lease of a node that is gone, before LeaseTTL runs out,
// so its subnet can be handed out again; the release spreads to the whole
// cluster. Releasing the lease of a live node (or our own) is refused.
func (m *Membership) Release(name string) error {
	now := time.Now()
	m.mu.Lock()
	l, err := m.st.release(name, now)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	m.apply(effects{broadcast: []Lease{l}})
	m.wakeUp()
	m.log.Info("lease released", "peer", name, "subnet", l.Subnet)
	return nil
}

var _ peer.TTLReporter = (*Membership)(nil)

// LeaseTTL returns the lease TTL in force: the cluster's, which may differ
// from Config.LeaseTTL (see there).
func (m *Membership) LeaseTTL() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.ttl
}

// HealthScore is memberlist's awareness score: 0 when this node keeps up
// with the protocol, higher (up to 8) when it misses probes and acks, e.g.
// because it is overloaded or its network drops gossip.
func (m *Membership) HealthScore() int {
	if m.ml == nil {
		return 0
	}
	return m.ml.GetHealthScore()
}

// LastHeard returns when this node last heard from the member name directly
// (an event about it or an answered probe): node.HeardReporter.
func (m *Membership) LastHeard(name string) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.lastHeard(name)
}
