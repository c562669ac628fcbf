package encap

// The sender's sessions: each session has its own key (the session id is the
// key derivation's salt) and its own counter, the nonce. Seal rotates to a
// new session after RekeyAfterPackets packets, and the node calls Rekey on a
// timer (--rekey-after), so no key seals for long or much. Receivers keep the
// previous, current and next session of each peer (peer.go), so packets
// still in flight from the previous session are accepted after a rotation.

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"
)

const (
	// DefaultRekeyAfterPackets is how many packets one session seals: 2^28.
	// For AES-256-GCM that keeps the data under one key at 2^34.5 16-byte
	// blocks for 1,424-byte packets (2^37.2 for 9,000-byte ones), so an
	// attacker's advantage in telling the ciphertext from random stays
	// below 2^-60 (2^-54) — the margin TLS 1.3 keeps (RFC 8446, 5.5; the
	// bound of draft-irtf-cfrg-aead-limits). ChaCha20-Poly1305 needs no
	// limit this low. The nonce space, 2^63 counters, is never near.
	DefaultRekeyAfterPackets = 1 << 28

	// A session id is
	//
	//	bit 63      1: above every id of earlier weft versions (Unix ns < 2^63)
	//	bits 62-28  the start time in quarter seconds since 1970 (to year 2242)
	//	bits 27-0   random (crypto/rand)
	//
	// The time orders a node's sessions (receivers refuse older ones); the
	// random bits make two runs that start from one VM snapshot pick
	// different ids, so different keys, for every session they start.
	sessionRandBits = 28
	sessionTick     = 250 * time.Millisecond
	sessionTickMask = 1<<(63-sessionRandBits) - 1
	sessionMark     = 1 << 63
)

// session is one of this node's sending sessions. Its counter is shared by
// every txState of the session, so changing the primary key does not reuse
// a counter, and by every goroutine that seals.
type session struct {
	id   uint64
	ctrs [MaxQueues]queueCounter // the last number each sending queue handed out
}

// queueCounter is one queue's counter, alone on its cache line: queues on
// different cores then never contend for one.
type queueCounter struct {
	atomic.Uint64
	_ [56]byte
}

// NewSessionID draws a session id for a session starting at now that is
// greater than prev (the node's previous id, 0 if none): now's tick, or the
// tick after prev's if the clock has not moved past it, and 28 random bits.
func NewSessionID(prev uint64, now time.Time) uint64 {
	tick := uint64(max(now.UnixNano(), 0)) / uint64(sessionTick)
	if prev >= sessionMark {
		tick = max(tick, (prev>>sessionRandBits)&sessionTickMask+1)
	}
	var r [8]byte
	rand.Read(r[:]) // never fails (crypto/rand since Go 1.24)
	return sessionMark | (tick&sessionTickMask)<<sessionRandBits | binary.BigEndian.Uint64(r[:])>>(64-sessionRandBits)
}

// SessionStart returns when the session with id started, to the tick (250
// ms; a tick may run ahead of the clock when sessions start faster than
// ticks pass). Ids of earlier weft versions were the start in Unix ns.
func SessionStart(id uint64) time.Time {
	if id < sessionMark {
		return time.Unix(0, int64(id))
	}
	return time.Unix(0, int64((id>>sessionRandBits)&sessionTickMask*uint64(sessionTick)))
}

// Rekey starts a new sending session now and returns its id; Seal uses it
// from the next packet on. The node calls it every --rekey-after.
func (s *Sealed) Rekey() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	return s.startSession(st).tx.sess.id
}

// Rotations returns how many sessions Seal has started after the first,
// on volume or by Rekey.
func (s *Sealed) Rotations() uint64 { return s.rotations.Load() }

// startSession replaces st with the same keys and a new session; the
// caller holds s.mu.
func (s *Sealed) startSession(st *sealedState) *sealedState {
	id := NewSessionID(st.tx.sess.id, time.Now())
	nst := &sealedState{ring: st.ring, tx: s.newTx(&session{id: id}, st.ring.primary)}
	s.state.Store(nst)
	s.rotations.Add(1)
	return nst
}

// renew starts a new session once queue q of old has sealed its
// RekeyAfterPackets (unless another goroutine did first) and returns the
// current state with a number of q in it.
func (s *Sealed) renew(old *txState, q int) (*txState, uint64) {
	for {
		s.mu.Lock()
		st := s.state.Load()
		if st.tx.sess == old.sess {
			st = s.startSession(st)
		}
		s.mu.Unlock()
		if num := st.tx.sess.ctrs[q].Add(1); num <= s.limit {
			return st.tx, num
		}
		old = st.tx
	}
}
