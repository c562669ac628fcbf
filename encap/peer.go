package encap

// What a receiver keeps per sending peer: three of the peer's sessions, each
// with the AEADs derived for it (so no key is derived per packet) and a
// sliding replay window over its counters (RFC 6479):
//
//	prev  the session before cur: packets still in flight when the peer
//	      rotated (or restarted) are accepted, each once
//	cur   the newest session a packet authenticated in
//	next  a newer session some datagram announced, derived but not yet
//	      authenticated; the first packet that opens in it moves cur to
//	      prev and it to cur
//
// Any other session older than cur is old_session: no session is taken in
// twice with a fresh window, and once a genuine packet has arrived nothing
// recorded from the peer's older sessions can be replayed. Nothing here
// changes before a packet's tag has verified.

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
	"time"
)

const (
	// ReplayWindow is how far behind the highest counter seen from one
	// queue of a peer a packet of that queue may arrive and still be
	// accepted (once). A sender queue's counter is shared by all its peers,
	// so this counts the queue's packets to every peer, not only to this
	// one.
	ReplayWindow = (replayBlocks - 1) * 64 // 8128

	replayBlocks = 128 // 64-bit words in the ring: 1 KiB per peer
	// aeadCache is how many (key, cipher) AEADs a session keeps: every
	// held key with either cipher.
	aeadCache = 2 * MaxKeys

	// A peer may make us derive session keys deriveBurst times at once and
	// then once every deriveEvery. A genuine peer needs one derivation per
	// restart or key change; someone forging the peer's address with ever
	// new session ids would otherwise cost us a derivation (a few µs and
	// KBs of garbage) per datagram.
	deriveBurst = 8
	deriveEvery = 50 * time.Millisecond
)

// PeerState is what a receiver keeps about one sending peer. Make it with
// the codec's NewPeer and keep it as long as the peer exists. Its methods
// are the codec's OpenFrom; it is safe for concurrent use (calls are
// serialised).
type PeerState struct {
	name string // the peer's node name: part of its session keys

	mu    sync.Mutex
	nonce [nonceLen]byte // scratch (a nonce passed to an interface method would escape)
	prev  rxSession      // the session cur replaced; id 0: none
	cur   rxSession      // the newest session a packet authenticated in; id 0: none yet
	next  rxSession      // AEADs derived for a newer session no packet has authenticated in yet
	limit rateLimit      // derivations of session keys

	prevWin, curWin queueWindows // counters accepted in prev and cur, per sender queue (next has none yet)
}

// Name returns the peer's node name.
func (p *PeerState) Name() string { return p.name }

// rxSession is one sending session of the peer and the AEADs derived for it.
type rxSession struct {
	id    uint64
	aeads [aeadCache]derived
	slot  int // the entry to replace next
}

type derived struct {
	key    *key
	cipher byte
	aead   cipher.AEAD
}

// cached returns the AEAD for (k, c) in this session, or nil if it has not
// been derived.
func (r *rxSession) cached(k *key, c byte) cipher.AEAD {
	for i := range r.aeads {
		if d := &r.aeads[i]; d.key == k && d.cipher == c {
			return d.aead
		}
	}
	return nil
}

// derive derives and caches the AEAD for (k, c) in this session.
func (r *rxSession) derive(k *key, c byte, sender string) cipher.AEAD {
	a := newAEAD(k, r.id, c, sender)
	r.aeads[r.slot] = derived{key: k, cipher: c, aead: a}
	r.slot = (r.slot + 1) % aeadCache
	return a
}

// rateLimit is a token bucket kept as the time it is next empty (GCRA): no
// goroutine, no per-call allocation, and its zero value is a full bucket.
type rateLimit struct {
	full time.Time // when the bucket is full again; zero: full
}

// allow takes a token at now, if there is one.
func (l *rateLimit) allow(now time.Time) bool {
	t := l.full
	if t.Before(now) {
		t = now
	}
	if t.Sub(now) > (deriveBurst-1)*deriveEvery {
		return false
	}
	l.full = t.Add(deriveEvery)
	return true
}

// open checks the session and counter, opens dgram's ciphertext, appending
// the plaintext to out, and, only if the tag verifies, records the counter.
// The header has been checked; sess is never 0.
func (p *PeerState) open(out, dgram []byte, k *key, c byte, sess, ctr uint64) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var rs *rxSession
	var win *queueWindows // nil for next: nothing accepted in it yet
	switch {
	case sess == p.cur.id:
		rs, win = &p.cur, &p.curWin
	case sess == p.prev.id:
		rs, win = &p.prev, &p.prevWin
	case sess < p.cur.id:
		return nil, ErrOldSession
	default: // newer than any seen: a rotation, a restarted (or new) sender, or a forgery
		if p.next.id != sess {
			p.next = rxSession{id: sess}
		}
		rs = &p.next
	}
	if win != nil && !win.check(ctr) {
		return nil, ErrReplay
	}
	aead := rs.cached(k, c)
	if aead == nil {
		if !p.limit.allow(time.Now()) {
			return nil, ErrSessionLimit
		}
		aead = rs.derive(k, c, p.name)
	}
	binary.BigEndian.PutUint64(p.nonce[4:], ctr)
	pt, err := aead.Open(out, p.nonce[:], dgram[SealedHeaderLen:], dgram[:SealedHeaderLen])
	if err != nil {
		return nil, ErrAuth
	}
	if win == nil { // next authenticated: it is the current session now
		p.prev, p.cur, p.next = p.cur, p.next, rxSession{}
		p.prevWin, p.curWin = p.curWin, p.prevWin // reuse prev's windows
		p.curWin.reset()
		win = &p.curWin
	}
	win.mark(ctr)
	return pt, nil
}

// queueWindows is a replay window per sender queue: the counter's top byte
// names the queue, and each queue numbers its packets on its own, so queues
// sealing in parallel interleave on the wire without pushing each other's
// packets out of a shared window. A queue's window is made by the first
// packet from it that authenticates; until then every number is new to it.
type queueWindows struct {
	wins []*replayWindow // by queue index; nil: nothing from that queue yet
}

func (q *queueWindows) check(ctr uint64) bool {
	i, num := ctr>>queueShift, ctr&(queueCounters-1)
	if i >= uint64(len(q.wins)) || q.wins[i] == nil {
		return true
	}
	return q.wins[i].check(num)
}

// mark records ctr, which check accepted and which authenticated; making a
// queue's window is the one allocation, once per queue and session.
func (q *queueWindows) mark(ctr uint64) {
	i, num := ctr>>queueShift, ctr&(queueCounters-1)
	for uint64(len(q.wins)) <= i {
		q.wins = append(q.wins, nil)
	}
	if q.wins[i] == nil {
		q.wins[i] = new(replayWindow)
	}
	q.wins[i].mark(num)
}

// reset forgets every counter (a new session), keeping the windows made.
func (q *queueWindows) reset() {
	for _, w := range q.wins {
		if w != nil {
			*w = replayWindow{}
		}
	}
}

// replayWindow is RFC 6479's sliding window: a ring of bits for the counters
// just behind the highest one seen. Sliding forward clears whole words, so
// accepting a packet costs O(1) however far it jumps.
type replayWindow struct {
	last uint64 // highest counter marked; 0: none (counters start at 1)
	ring [replayBlocks]uint64
}

// check reports whether ctr may be accepted: newer than the last, or within
// the window and not yet marked.
func (w *replayWindow) check(ctr uint64) bool {
	if ctr > w.last {
		return true
	}
	if w.last-ctr >= ReplayWindow {
		return false
	}
	return w.ring[(ctr/64)%replayBlocks]&(1<<(ctr%64)) == 0
}

// mark records ctr, which check accepted, sliding the window if ctr is the
// newest.
func (w *replayWindow) mark(ctr uint64) {
	block := ctr / 64
	if ctr > w.last {
		cur := w.last / 64
		n := min(block-cur, replayBlocks)
		for i := uint64(1); i <= n; i++ {
			w.ring[(cur+i)%replayBlocks] = 0
		}
		w.last = ctr
	}
	w.ring[block%replayBlocks] |= 1 << (ctr % 64)
}
