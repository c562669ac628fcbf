package api

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/weftnet/weft/peer"
)

// Status is what `weft status` shows. Its JSON keys are a contract.
//
// A node with gossip and seeds answers while it is still joining the
// cluster: then State is "joining", Join says how joining goes, and the
// fields of the data plane (address, subnet, mtu, tun, peers, …) are zero,
// since it has no subnet yet. Once it is up, State is "up" and Join is left
// out.
type Status struct {
	Name          string            `json:"name"`
	State         string            `json:"state"`               // StateJoining or StateUp; empty is up (the node's own Status)
	Join          *JoinStatus       `json:"join,omitempty"`      // while joining
	LeaseTTL      string            `json:"lease_ttl,omitempty"` // with gossip: the cluster's lease TTL, which the node adopted
	Address       netip.Addr        `json:"address"`
	Subnet        netip.Prefix      `json:"subnet"`
	Network       netip.Prefix      `json:"network"`
	Address6      netip.Addr        `json:"address6,omitzero"` // dual-stack only: the IPv6 counterparts of address, subnet, network
	Subnet6       netip.Prefix      `json:"subnet6,omitzero"`
	Network6      netip.Prefix      `json:"network6,omitzero"`
	MTU           int               `json:"mtu"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Listen        netip.AddrPort    `json:"listen"`
	Underlay      Underlay          `json:"underlay"`
	Tun           TunStatus         `json:"tun"`
	Peers         []PeerStatus      `json:"peers"`
	Drops         map[string]uint64 `json:"drops"` // by reason; DropMulticast's too, which the text leaves out
	Offloads      OffloadStatus     `json:"offloads"`
	Encryption    EncryptionStatus  `json:"encryption"`
	IO            IOStatus          `json:"io"`            // the sums of Queues
	Queues        []QueueStatus     `json:"queues"`        // one per pipeline (--queues)
	TraceReaders  int               `json:"trace_readers"` // weft trace sessions attached
	IPMasq        bool              `json:"ip_masq"`       // --ip-masq: traffic leaving the overlay is masqueraded (nftables table "weft")
}

// States of a node in Status.
const (
	StateJoining = "joining" // waiting for a seed to answer, or settling its subnet
	StateUp      = "up"      // it holds its subnet and routes
)

// MarshalJSON writes an empty State as StateUp: the data plane builds its
// Status only once the node is up.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	if s.State == "" {
		s.State = StateUp
	}
	return json.Marshal(plain(s))
}

// Up reports whether the node is up (holds its subnet and routes).
func (s *Status) Up() bool { return s.State == "" || s.State == StateUp }

// JoinStatus is how joining the cluster goes (membership.JoinStatus).
type JoinStatus struct {
	Seeds     []string  `json:"seeds"`                // --join
	Known     []string  `json:"known,omitempty"`      // members the lease file remembers, tried as well
	Synced    bool      `json:"synced"`               // a seed answered and the lease table is synced: settling a subnet
	LastError string    `json:"last_error,omitempty"` // why the last attempt failed, in plain words
	Attempts  int       `json:"attempts"`             // failed attempts so far
	Since     time.Time `json:"since"`                // when joining began
	LeaseTTL  string    `json:"lease_ttl,omitempty"`  // once synced: the cluster's lease TTL, which the node adopts
}

// Underlay is the host interface weft's UDP traffic leaves by, and why it
// was chosen: picking the wrong one is the commonest overlay
// misconfiguration, so status and the start log say which it took.
type Underlay struct {
	Interface string     `json:"interface"`
	Addr      netip.Addr `json:"address"`
	MTU       int        `json:"mtu"`
	Why       string     `json:"why"`  // in words, e.g. "chosen by --iface 192.168.56.0/24"
	Rule      string     `json:"rule"` // what chose it: RuleAdvertise, RuleListen, RuleDefaultRoute or "--iface VALUE"
	// Candidates are the interfaces the node could have chosen when it
	// started: up, not loopback, with a global IPv4 address outside the
	// overlay, in the kernel's order. weft doctor warns when there are
	// several and nothing but the default route chose.
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Rules that choose the underlay, in Underlay.Rule; an --iface rule is
// "--iface " and its value.
const (
	RuleAdvertise    = "--advertise"
	RuleListen       = "--listen"
	RuleDefaultRoute = "default route"
)

// Candidate is one interface that could carry the underlay.
type Candidate struct {
	Interface string     `json:"interface"`
	Addr      netip.Addr `json:"address"`
}

// TunStatus names the TUN device and its driver.
type TunStatus struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
}

// PeerStatus is one peer as status shows it.
type PeerStatus struct {
	Name      string         `json:"name"`
	Subnet    netip.Prefix   `json:"subnet"`
	Subnet6   netip.Prefix   `json:"subnet6,omitzero"` // a dual-stack peer's IPv6 subnet
	Endpoint  netip.AddrPort `json:"endpoint"`
	State     peer.State     `json:"state"`
	RxPackets uint64         `json:"rx_packets"`
	TxPackets uint64         `json:"tx_packets"`
	RxBytes   uint64         `json:"rx_bytes"`
	TxBytes   uint64         `json:"tx_bytes"`
	LastSeen  *time.Time     `json:"last_seen,omitempty"` // gossiped peers only
	Path      PathStatus     `json:"path"`
}

// Path states in status.
const (
	PathOK          = "ok"
	PathUnreachable = "unreachable"
	PathUnknown     = "unknown"
)

// PathStates lists the path states, in the order metrics show them.
var PathStates = []string{PathOK, PathUnreachable, PathUnknown}

// PathStatus is the health of the data path to one peer, from probes and
// from authenticated data the peer sent.
type PathStatus struct {
	State  string     `json:"state"`            // ok, unreachable or unknown
	Reason string     `json:"reason,omitempty"` // why unreachable or unknown
	RTTMs  float64    `json:"rtt_ms"`           // of the last answered probe; 0 if none
	Loss   float64    `json:"loss"`             // fraction of the last (up to 10) timed-out or answered probes that went unanswered
	LastOK *time.Time `json:"last_ok"`          // when the last answer came; null if none did
	// Checked is when the state was last confirmed: the newest of the last
	// answer, the last data from the peer (as the prober's tick saw it) and
	// the last probe counted as lost; null if none yet.
	Checked *time.Time `json:"checked"`
}

// OffloadStatus says which offloads are active; a silent fall back to a slow
// path is what overlay users complain about most.
type OffloadStatus struct {
	Tun TunOffloads `json:"tun"`
	UDP UDPOffloads `json:"udp"`
}

// TunOffloads are the TUN device's offloads (tunnel.Offloads has the same
// fields and converts to it).
type TunOffloads struct {
	TSO    bool   `json:"tso"` // kernel hands us TCP superpackets (split in userspace)
	GRO    bool   `json:"gro"` // we hand the kernel coalesced TCP/UDP packets
	Reason string `json:"reason,omitempty"`
}

// UDPOffloads are the underlay socket's offloads (udp.Offloads converts).
type UDPOffloads struct {
	GSO    bool   `json:"gso"`
	GRO    bool   `json:"gro"`
	Reason string `json:"reason,omitempty"`
}

// EncryptionStatus says how the data path is protected.
type EncryptionStatus struct {
	Enabled bool   `json:"enabled"`
	Cipher  string `json:"cipher,omitempty"`
	KeyIDs  []int  `json:"key_ids,omitempty"`
	Primary int    `json:"primary_key_id,omitempty"` // the key this node sends with
	// Session is the current sending session's id (encap.NewSessionID).
	// JSON carries it as a decimal string: as a number it exceeds 2^53,
	// which jq 1.6 and JavaScript round.
	Session uint64 `json:"session,string,omitempty"`
	// Rotations counts the sessions started since the node started, on
	// time (RekeyAfterSeconds) or on volume.
	Rotations         uint64  `json:"rotations"`
	RekeyAfterSeconds float64 `json:"rekey_after_seconds,omitempty"`
	KeyFile           string  `json:"key_file,omitempty"` // the --key-file the node started with
}

// IOStatus counts the batched I/O calls and what they carried: packets per
// call is how well batching works (see docs/performance.md).
type IOStatus struct {
	TunReads        uint64   `json:"tun_reads"`         // TUN reads that returned packets
	TunReadPackets  uint64   `json:"tun_read_packets"`  // packets they returned (TSO superpackets split)
	TunWrites       uint64   `json:"tun_writes"`        // TUN write batches
	TunWritePackets uint64   `json:"tun_write_packets"` // packets in them, before GRO coalescing
	UDP             UDPStats `json:"udp"`
}

// QueueStatus is one pipeline's counters: its TUN queue and its socket. A
// flow keeps to one queue, so how evenly these spread says how well the
// kernel's hashing spread the flows.
type QueueStatus struct {
	Queue           int      `json:"queue"`
	TunReads        uint64   `json:"tun_reads"`
	TunReadPackets  uint64   `json:"tun_read_packets"` // packets read from this TUN queue: sent to peers or dropped
	TunWrites       uint64   `json:"tun_writes"`
	TunWritePackets uint64   `json:"tun_write_packets"` // packets written into this TUN queue: received from peers, or ICMP errors
	UDP             UDPStats `json:"udp"`
}

// UDPStats counts the underlay socket's batched calls (udp.Stats converts).
type UDPStats struct {
	ReadCalls      uint64 `json:"read_calls"`      // recvmmsg calls that returned messages
	ReadMessages   uint64 `json:"read_messages"`   // messages received; a GRO message holds several datagrams
	ReadDatagrams  uint64 `json:"read_datagrams"`  // datagrams handed to callers of Read
	Oversize       uint64 `json:"oversize"`        // received messages dropped because the kernel truncated them
	WriteCalls     uint64 `json:"write_calls"`     // sendmmsg calls
	WriteMessages  uint64 `json:"write_messages"`  // messages sent; a GSO message holds several datagrams
	WriteDatagrams uint64 `json:"write_datagrams"` // datagrams sent
	WriteErrors    uint64 `json:"write_errors"`    // datagrams not sent because of an error
}

// Add returns the sum of s and o, counter by counter.
func (s UDPStats) Add(o UDPStats) UDPStats {
	return UDPStats{
		ReadCalls: s.ReadCalls + o.ReadCalls, ReadMessages: s.ReadMessages + o.ReadMessages,
		ReadDatagrams: s.ReadDatagrams + o.ReadDatagrams, Oversize: s.Oversize + o.Oversize,
		WriteCalls: s.WriteCalls + o.WriteCalls, WriteMessages: s.WriteMessages + o.WriteMessages,
		WriteDatagrams: s.WriteDatagrams + o.WriteDatagrams, WriteErrors: s.WriteErrors + o.WriteErrors,
	}
}

// DropMulticast is the drop reason of multicast from the TUN: the host's
// own (MLD reports when a dual-stack TUN comes up, mDNS), which the
// overlay does not carry. Expected on an idle node, so status's text leaves
// it out of its drops line; JSON and metrics count it.
const DropMulticast = "multicast"

// KeyRequest is the body of POST /v1/keys.
type KeyRequest struct {
	Key string `json:"key"` // as weft keygen prints it
}

// KeyAnswer is the answer to a key change.
type KeyAnswer struct {
	ID int `json:"id"`
}

// Lease is one subnet lease as GET /v1/leases lists it (the node sends more
// fields; these are what clients read).
type Lease struct {
	Name     string         `json:"name"`
	Subnet   netip.Prefix   `json:"subnet"`
	Endpoint netip.AddrPort `json:"endpoint"`
	LastSeen time.Time      `json:"last_seen,omitzero"`
}
