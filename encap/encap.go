// Package encap is weft's wire format: each inner IPv4/IPv6 packet travels in
// one UDP datagram behind a GENEVE header (RFC 8926), so tcpdump and Wireshark
// decode the traffic without plugins. docs/wire-format.md describes every byte.
//
// Two codecs: Plain (no options, no protection; --insecure) and Sealed (one
// GENEVE option carrying key id, session and counter, the inner packet
// sealed with an AEAD under a cluster secret; docs/security.md).
//
// A Codec seals packets in place: the caller leaves Headroom bytes free in
// front of the packet (and Tailroom behind it) and gets back the datagram as a
// sub-slice of the same buffer. Nothing is copied or allocated per packet.
package encap

import "errors"

// Port is GENEVE's IANA port and weft's default.
const Port = 6081

// Codec turns inner packets into datagram payloads and back. It knows who
// sent a datagram: the authenticated codec (Sealed) keeps replay and key
// state per sending peer, so the caller identifies the peer (by the
// datagram's UDP source) before opening. Plain implements it too, ignoring
// the peer, so one receive path serves both.
type Codec interface {
	// Headroom is the number of bytes Seal writes in front of the packet.
	Headroom() int
	// Tailroom is the number of bytes Seal appends behind the packet.
	Tailroom() int
	// Seal wraps the inner packet buf[off:off+n] in place and returns the
	// datagram payload, buf[off-Headroom() : off+n+Tailroom()]. buf must
	// have that room; the inner packet must be IPv4 or IPv6. Seal may be
	// called concurrently.
	Seal(buf []byte, off, n int) ([]byte, error)
	// SealQueue is Seal from queue q of several that seal in parallel
	// (0 <= q < MaxQueues; Seal is queue 0). The queue is part of the
	// datagram (Sealed numbers each queue's packets on its own) so that a
	// receiver can keep each queue's packets together.
	SealQueue(q int, buf []byte, off, n int) ([]byte, error)
	// NewPeer returns the receive state for datagrams from the node called
	// name (its configured node name, unique in the cluster). Keep one per
	// peer for as long as the peer exists, across routing changes: a fresh
	// state forgets which packets were already seen. It may be nil for a
	// codec that keeps no per-peer state.
	NewPeer(name string) *PeerState
	// OpenFrom checks a received datagram payload that the caller
	// attributes to the peer whose state p is (the peer whose endpoint it
	// came from) and returns the inner packet, trimmed to the inner IP
	// header's length. Like cipher.AEAD.Open it appends the inner packet
	// to dst[:0], so it allocates nothing when cap(dst) >= len(dgram):
	// decrypting (or copying) straight into the buffer the packet leaves
	// from is the receive path's one pass over the data. dst must not
	// overlap dgram; dgram is not modified. Its errors are the Err… values
	// below (compare with ==; they never wrap). Authentication and replay
	// failures change nothing in p. OpenFrom may be called concurrently,
	// also for one p (calls for one p are serialised), and concurrently
	// with Seal.
	OpenFrom(dst, dgram []byte, p *PeerState) ([]byte, error)

	// SealControl is Seal for a weft control message (a path probe): the
	// payload buf[off:off+n] is not an IP packet, and the GENEVE O bit
	// marks the datagram as one no receiver delivers to a TUN.
	SealControl(buf []byte, off, n int) ([]byte, error)
	// OpenControlFrom is OpenFrom for a control datagram (IsControl), but
	// in place: dgram's bytes may be overwritten, and the control message
	// returned is a sub-slice of dgram.
	OpenControlFrom(dgram []byte, p *PeerState) ([]byte, error)
}

// Reasons a datagram is refused by Open (or a packet by Seal). Each error's
// text is the drop reason weft counts it under.
var (
	ErrShort    = errors.New("short")           // shorter than the GENEVE header and its options
	ErrVersion  = errors.New("bad_version")     // GENEVE version other than 0
	ErrControl  = errors.New("control")         // O bit set: a control message, not data
	ErrCritical = errors.New("critical_option") // C bit set: options we must understand but do not
	ErrNetwork  = errors.New("wrong_network")   // VNI of another overlay
	ErrProtocol = errors.New("bad_protocol")    // protocol type other than IPv4/IPv6
	ErrInner    = errors.New("bad_inner")       // inner packet malformed or not the advertised IP version
	ErrNoRoom   = errors.New("no_room")         // (Seal) packet does not fit the buffer's room

	// The authenticated codec's reasons (Sealed.OpenFrom).
	ErrUnauthenticated = errors.New("unauthenticated") // plaintext GENEVE (a peer running --insecure?)
	ErrFormat          = errors.New("bad_format")      // weft option missing or malformed, unknown cipher
	ErrUnknownKey      = errors.New("unknown_key")     // key id of no key this node holds
	ErrAuth            = errors.New("auth_failed")     // tag does not verify: forged, corrupted, or another key
	ErrReplay          = errors.New("replay")          // counter already seen, or behind the replay window
	ErrOldSession      = errors.New("old_session")     // an earlier session of the sender than the current one
	ErrSessionLimit    = errors.New("session_limit")   // a new session key to derive, over the peer's rate limit
)

// Errors lists every error Open, OpenFrom and Seal return, so callers can
// pre-create a counter for each reason. New reasons are only ever appended.
var Errors = []error{
	ErrShort, ErrVersion, ErrControl, ErrCritical, ErrNetwork, ErrProtocol, ErrInner, ErrNoRoom,
	ErrUnauthenticated, ErrFormat, ErrUnknownKey, ErrAuth, ErrReplay, ErrOldSession, ErrSessionLimit,
}
