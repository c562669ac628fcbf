package encap

// The authenticated codec. Seal, per packet:
//
//	take the next counter of this node's session → copy the header template
//	(GENEVE + weft option) into the headroom, counter last → AEAD-seal the
//	inner packet in place with nonce 0000||counter and the 32 header bytes
//	as additional data → the 16-byte tag lands in the tailroom.
//
// OpenFrom, per datagram, for the peer the caller found by UDP source:
//
//	check the GENEVE header and the option (nothing secret yet) → find the
//	key by id → reject an older session, or a counter the replay window has
//	seen or left behind → open in place with the peer's cached AEAD for
//	(session, key, cipher) → only now mark the counter (or start the newer
//	session's window) → check the inner IP header.
//
// docs/security.md explains the design; docs/wire-format.md the bytes.

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
)

const (
	// ProtoSealed is the GENEVE protocol type of sealed datagrams: 0x88B5,
	// the IEEE 802 local experimental ethertype, so tcpdump shows the
	// payload as unknown instead of decoding ciphertext as IP.
	ProtoSealed = 0x88B5
	// OptionClass and OptionType identify weft's GENEVE option: a class
	// in RFC 8926's experimental range, a type with the critical bit, so
	// a receiver that does not know the option drops the datagram.
	OptionClass = 0xFF57
	OptionType  = 0x81
	optionWords = 5 // option data length in 4-byte words

	// SealedHeaderLen is the GENEVE header plus weft's option: Sealed's
	// Headroom, and the additional data the tag covers.
	SealedHeaderLen = HeaderLen + 4 + 4*optionWords // 32
	// TagLen is the AEAD tag behind the ciphertext: Sealed's Tailroom.
	TagLen = 16
	// SealedOverhead is what Sealed adds to each inner packet.
	SealedOverhead = SealedHeaderLen + TagLen // 48

	// Ciphers, as the option's first byte names them.
	CipherAuto             byte = 0 // (config only) DefaultCipher()
	CipherAESGCM           byte = 1 // AES-256-GCM
	CipherChaCha20Poly1305 byte = 2 // ChaCha20-Poly1305

	// MaxQueues is how many queues may seal in parallel (SealQueue). The
	// counter's top byte names the queue that sealed the packet, and each
	// queue numbers its packets on its own from 1, so parallel queues never
	// touch one counter; receivers keep a replay window per queue.
	MaxQueues = 64
	// QueueOffset is the byte of a sealed datagram that names its queue
	// (the counter's top byte): a receiver with several sockets steers by
	// it, so one sender queue's packets, and with them each flow, stay on
	// one receive queue.
	QueueOffset = 24
	queueShift  = 56
	// queueCounters is the first per-queue number never sent: a session
	// ends before any queue's number reaches 2^56 and the sender starts a
	// new one.
	queueCounters = 1 << queueShift
	nonceLen      = 12
)

// DefaultCipher is the cipher Seal uses unless configured: AES-256-GCM where
// the CPU has AES and carry-less multiply instructions (x86-64 AES-NI +
// PCLMULQDQ, arm64 AES + PMULL), ChaCha20-Poly1305 elsewhere. Receivers
// accept both.
func DefaultCipher() byte {
	if (cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) || (cpu.ARM64.HasAES && cpu.ARM64.HasPMULL) {
		return CipherAESGCM
	}
	return CipherChaCha20Poly1305
}

// CipherName names a cipher byte for logs and status.
func CipherName(c byte) string {
	switch c {
	case CipherAESGCM:
		return "aes-256-gcm"
	case CipherChaCha20Poly1305:
		return "chacha20-poly1305"
	}
	return fmt.Sprintf("cipher-%d", c)
}

// SealedConfig configures NewSealed.
type SealedConfig struct {
	// VNI is the network id, 0..MaxVNI; datagrams of another are dropped.
	VNI uint32
	// Name is this node's name, unique in the cluster. It is part of every
	// key this node seals with, and receivers derive the same key from the
	// name they know the sending peer by.
	Name string
	// Keys are the cluster secrets this node accepts, KeyLen bytes each,
	// at most MaxKeys, with distinct key ids. Keys[0] is the primary: the
	// one Seal uses. NewSealed copies them.
	Keys [][]byte
	// Cipher is the cipher Seal uses: CipherAESGCM, CipherChaCha20Poly1305,
	// or CipherAuto (the default, 0) for DefaultCipher().
	Cipher byte
	// Session is the first session's id, for tests. It must be greater
	// than every session id this node used before; 0 (the default) draws
	// one (NewSessionID).
	Session uint64
	// RekeyAfterPackets is how many packets one session seals before Seal
	// starts the next one; 0 is DefaultRekeyAfterPackets. Tests set it low.
	RekeyAfterPackets uint64
}

// Sealed is the authenticated, encrypted codec (docs/security.md). Seal may
// be called concurrently; OpenFrom too, also for one PeerState (calls for
// one peer are serialised by its lock). Key changes (AddKey, SetPrimary,
// RemoveKey) may run concurrently with both; the packet paths take no lock
// of the Sealed.
type Sealed struct {
	vni    uint32
	name   string
	cipher byte
	limit  uint64    // the last counter a session seals with
	nonces sync.Pool // *[nonceLen]byte scratch for Seal (a nonce passed to an interface method would escape)

	mu        sync.Mutex // serialises writers of state
	state     atomic.Pointer[sealedState]
	rotations atomic.Uint64 // sessions started after the first
}

var _ Codec = (*Sealed)(nil)

// sealedState is what the packet paths load, once per packet: an immutable
// snapshot, replaced whole by key changes and session renewals.
type sealedState struct {
	ring *keyring
	tx   *txState
}

// txState is what Seal needs: the AEAD for (session, primary key, cipher)
// and the header with everything but the counter filled in.
type txState struct {
	sess *session
	aead cipher.AEAD
	hdr  [SealedHeaderLen]byte
}

// NewSealed returns the authenticated codec for cfg.
func NewSealed(cfg SealedConfig) (*Sealed, error) {
	switch {
	case cfg.VNI > MaxVNI:
		return nil, fmt.Errorf("network id %d out of range 0..%d", cfg.VNI, MaxVNI)
	case cfg.Name == "":
		return nil, errors.New("sealed codec: node name is empty")
	case len(cfg.Keys) == 0:
		return nil, errors.New("sealed codec: no key")
	case len(cfg.Keys) > MaxKeys:
		return nil, fmt.Errorf("sealed codec: %d keys, at most %d", len(cfg.Keys), MaxKeys)
	}
	c := cfg.Cipher
	switch c {
	case CipherAuto:
		c = DefaultCipher()
	case CipherAESGCM, CipherChaCha20Poly1305:
	default:
		return nil, fmt.Errorf("sealed codec: unknown cipher %d", cfg.Cipher)
	}
	ring := &keyring{}
	for i, secret := range cfg.Keys {
		k, err := newKey(secret)
		if err != nil {
			return nil, fmt.Errorf("sealed codec: key %d: %w", i+1, err)
		}
		if o := ring.find(k.id); o != nil {
			if o.secret == k.secret {
				return nil, fmt.Errorf("sealed codec: key %d is key %d again", i+1, indexOf(ring, o)+1)
			}
			return nil, fmt.Errorf("sealed codec: keys %d and %d have the same id %d (a 1 in 256 chance): generate another key",
				indexOf(ring, o)+1, i+1, k.id)
		}
		ring.keys = append(ring.keys, k)
	}
	ring.primary = ring.keys[0]
	sess := cfg.Session
	if sess == 0 {
		sess = NewSessionID(0, time.Now())
	}
	limit := cfg.RekeyAfterPackets
	if limit == 0 || limit >= queueCounters {
		limit = DefaultRekeyAfterPackets
	}
	s := &Sealed{vni: cfg.VNI, name: cfg.Name, cipher: c, limit: limit}
	s.nonces.New = func() any { return new([nonceLen]byte) }
	s.state.Store(&sealedState{ring: ring, tx: s.newTx(&session{id: sess}, ring.primary)})
	return s, nil
}

func indexOf(r *keyring, k *key) int {
	for i, o := range r.keys {
		if o == k {
			return i
		}
	}
	return -1
}

// newTx derives the sending state for sess under k.
func (s *Sealed) newTx(sess *session, k *key) *txState {
	tx := &txState{sess: sess, aead: newAEAD(k, sess.id, s.cipher, s.name)}
	h := tx.hdr[:]
	h[0] = (SealedHeaderLen - HeaderLen) / 4 // Ver 0, Opt Len in words
	h[1] = flagCritical
	binary.BigEndian.PutUint16(h[2:4], ProtoSealed)
	binary.BigEndian.PutUint32(h[4:8], s.vni<<8)
	binary.BigEndian.PutUint16(h[8:10], OptionClass)
	h[10] = OptionType
	h[11] = optionWords
	h[12] = s.cipher
	h[13] = k.id
	binary.BigEndian.PutUint64(h[16:24], sess.id)
	return tx
}

// Headroom is SealedHeaderLen: the GENEVE header and weft's option.
func (s *Sealed) Headroom() int { return SealedHeaderLen }

// Tailroom is TagLen.
func (s *Sealed) Tailroom() int { return TagLen }

// Cipher returns the cipher Seal uses.
func (s *Sealed) Cipher() byte { return s.cipher }

// Session returns the id of this node's current sending session.
func (s *Sealed) Session() uint64 { return s.state.Load().tx.sess.id }

// Seal encrypts the inner packet buf[off:off+n] in place under the primary
// key and returns the datagram payload buf[off-32 : off+n+16]. It is
// SealQueue for queue 0.
func (s *Sealed) Seal(buf []byte, off, n int) ([]byte, error) {
	return s.SealQueue(0, buf, off, n)
}

// SealQueue is Seal numbering the packet in queue q's counter space (q
// below MaxQueues): one goroutine per queue then shares no counter.
func (s *Sealed) SealQueue(q int, buf []byte, off, n int) ([]byte, error) {
	if off < SealedHeaderLen || n < 1 || off+n+TagLen > len(buf) {
		return nil, ErrNoRoom
	}
	if v := buf[off] >> 4; v != 4 && v != 6 {
		return nil, ErrInner
	}
	return s.seal(buf, off, n, 0, q), nil
}

// SealControl seals the control message buf[off:off+n] like a packet of
// queue 0, with the O bit set (and authenticated, as the whole header is).
func (s *Sealed) SealControl(buf []byte, off, n int) ([]byte, error) {
	if off < SealedHeaderLen || off+n+TagLen > len(buf) {
		return nil, ErrNoRoom
	}
	return s.seal(buf, off, n, flagControl, 0), nil
}

func (s *Sealed) seal(buf []byte, off, n int, flags byte, q int) []byte {
	tx := s.state.Load().tx
	num := tx.sess.ctrs[q].Add(1)
	if num > s.limit {
		tx, num = s.renew(tx, q)
	}
	ctr := uint64(q)<<queueShift | num
	h := buf[off-SealedHeaderLen : off]
	copy(h, tx.hdr[:])
	h[1] |= flags
	binary.BigEndian.PutUint64(h[24:32], ctr)
	nonce := s.nonces.Get().(*[nonceLen]byte)
	binary.BigEndian.PutUint64(nonce[4:], ctr) // nonce[:4] stays zero
	tx.aead.Seal(buf[off:off], nonce[:], buf[off:off+n], h)
	s.nonces.Put(nonce)
	return buf[off-SealedHeaderLen : off+n+TagLen]
}

// SealedOption is weft's GENEVE option as a sealed datagram carries it in
// the clear (and authenticated).
type SealedOption struct {
	Cipher  byte   // CipherAESGCM or CipherChaCha20Poly1305
	KeyID   byte   // KeyID of the secret the packet was sealed under
	Session uint64 // the sender's session id (NewSessionID)
	Counter uint64 // packet number within the session: queue index in the top byte, from 1 in the rest
}

// ParseSealedOption decodes the option of a sealed datagram, for tools and
// tests: ErrShort if the header does not fit, ErrFormat if it is not exactly
// weft's one option. Field values are not checked.
func ParseSealedOption(dgram []byte) (SealedOption, error) {
	h, err := ParseHeader(dgram)
	if err != nil {
		return SealedOption{}, err
	}
	if !isSealedHeader(h, dgram) {
		return SealedOption{}, ErrFormat
	}
	return SealedOption{
		Cipher:  dgram[12],
		KeyID:   dgram[13],
		Session: binary.BigEndian.Uint64(dgram[16:24]),
		Counter: binary.BigEndian.Uint64(dgram[24:32]),
	}, nil
}

// isSealedHeader reports whether h (parsed from dgram, options present)
// announces exactly weft's option.
func isSealedHeader(h Header, dgram []byte) bool {
	return h.Critical && h.Protocol == ProtoSealed && h.OptLen == SealedHeaderLen-HeaderLen &&
		binary.BigEndian.Uint16(dgram[8:10]) == OptionClass && dgram[10] == OptionType && dgram[11] == optionWords
}

// validCounter reports whether ctr is one a sender may use: a queue below
// MaxQueues, a number from 1.
func validCounter(ctr uint64) bool {
	return ctr>>queueShift < MaxQueues && ctr&(queueCounters-1) != 0
}

// NewPeer returns the receive state for datagrams from the node called name.
func (s *Sealed) NewPeer(name string) *PeerState { return &PeerState{name: name} }

// OpenFrom authenticates and decrypts a datagram from the peer p, appending
// the inner packet to dst[:0] (see Codec). p must not be nil.
func (s *Sealed) OpenFrom(dst, dgram []byte, p *PeerState) ([]byte, error) {
	pt, err := s.open(dst[:0], dgram, p, false)
	if err != nil {
		return nil, err
	}
	var proto uint16 = ProtoIPv4
	if len(pt) > 0 && pt[0]>>4 == 6 {
		proto = ProtoIPv6
	}
	return innerPacket(proto, pt)
}

// OpenControlFrom authenticates and decrypts a control datagram from p in
// place and returns the control message. It shares the peer's replay
// window with data: both take counters from the sender's one sequence.
func (s *Sealed) OpenControlFrom(dgram []byte, p *PeerState) ([]byte, error) {
	return s.open(nil, dgram, p, true)
}

// open authenticates and decrypts dgram from p: data appending the
// plaintext to out, control messages in place.
func (s *Sealed) open(out, dgram []byte, p *PeerState, control bool) ([]byte, error) {
	h, err := parseFor(dgram, s.vni, control)
	if err != nil {
		return nil, err
	}
	switch {
	case h.Protocol == ProtoIPv4 || h.Protocol == ProtoIPv6 || h.Protocol == ProtoControl:
		return nil, ErrUnauthenticated
	case h.Protocol != ProtoSealed:
		return nil, ErrProtocol
	case !isSealedHeader(h, dgram):
		return nil, ErrFormat
	case len(dgram) < SealedOverhead:
		return nil, ErrShort
	}
	cipherID, keyID := dgram[12], dgram[13]
	sess := binary.BigEndian.Uint64(dgram[16:24])
	ctr := binary.BigEndian.Uint64(dgram[24:32])
	if (cipherID != CipherAESGCM && cipherID != CipherChaCha20Poly1305) || sess == 0 || !validCounter(ctr) {
		return nil, ErrFormat
	}
	k := s.state.Load().ring.find(keyID)
	if k == nil {
		return nil, ErrUnknownKey
	}
	if control {
		out = dgram[SealedHeaderLen:SealedHeaderLen]
	}
	return p.open(out, dgram, k, cipherID, sess, ctr)
}
