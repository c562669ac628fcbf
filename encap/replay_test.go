package encap

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// The window against a model that remembers every counter: accepted exactly
// when never accepted before and less than ReplayWindow behind the newest.
func TestReplayWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w replayWindow
	seen := map[uint64]bool{}
	var last uint64
	next := uint64(1)
	for i := range 200000 {
		var ctr uint64
		switch r := rng.IntN(100); {
		case r < 60: // mostly in order
			ctr = next
			next++
		case r < 70: // a jump ahead
			next += uint64(rng.IntN(3 * ReplayWindow))
			ctr = next
		case r < 95: // reordered, near or past the window's edge
			ctr = max(1, last-min(last, uint64(rng.IntN(ReplayWindow+200))))
		default: // an exact replay
			ctr = max(1, last)
		}
		want := !seen[ctr] && (ctr > last || last-ctr < ReplayWindow)
		if got := w.check(ctr); got != want {
			t.Fatalf("step %d: check(%d) = %v with last %d, want %v", i, ctr, got, last, want)
		}
		if want {
			w.mark(ctr)
			seen[ctr] = true
			last = max(last, ctr)
		}
	}
}

func TestReplayWindowEdges(t *testing.T) {
	var w replayWindow
	w.mark(ReplayWindow + 100)
	for _, tc := range []struct {
		ctr  uint64
		want bool
	}{
		{ReplayWindow + 100, false},
		{ReplayWindow + 99, true},
		{101, true},  // the oldest still inside
		{100, false}, // exactly one window behind
		{1, false},
		{1 << 62, true},
	} {
		if got := w.check(tc.ctr); got != tc.want {
			t.Errorf("check(%d) = %v, want %v", tc.ctr, got, tc.want)
		}
	}
}

func TestSealedReplay(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	p := s.NewPeer("a")

	// The same datagram twice.
	d := sealPkt(t, s, ipv4(40))
	if _, err := openCopy(s, d, p); err != nil {
		t.Fatal(err)
	}
	if _, err := openCopy(s, d, p); err != ErrReplay {
		t.Fatalf("second copy: %v, want %v", err, ErrReplay)
	}

	// Out of order within the window: each accepted once.
	var ds [][]byte
	for range 10 {
		ds = append(ds, sealPkt(t, s, ipv4(40)))
	}
	for _, i := range []int{9, 3, 0, 5, 1, 2, 8, 4, 7, 6} {
		if _, err := openCopy(s, ds[i], p); err != nil {
			t.Fatalf("packet %d out of order: %v", i, err)
		}
		if _, err := openCopy(s, ds[i], p); err != ErrReplay {
			t.Fatalf("packet %d again: %v", i, err)
		}
	}

	// Far behind: a packet sealed before ReplayWindow newer ones arrived.
	old := sealPkt(t, s, ipv4(40))
	s.state.Load().tx.sess.ctrs[0].Add(ReplayWindow)
	if _, err := openCopy(s, sealPkt(t, s, ipv4(40)), p); err != nil {
		t.Fatal(err)
	}
	if _, err := openCopy(s, old, p); err != ErrReplay {
		t.Fatalf("packet a window behind: %v, want %v", err, ErrReplay)
	}
}

func TestSealedSessions(t *testing.T) {
	key := testKey(1)
	first := newSealed(t, "a", CipherAESGCM, 1000, key)
	rx := newSealed(t, "b", CipherAuto, 0, key)
	p := rx.NewPeer("a")
	for range 5 {
		if _, err := rx.OpenFrom(nil, sealPkt(t, first, ipv4(40)), p); err != nil {
			t.Fatal(err)
		}
	}
	late := sealPkt(t, first, ipv4(40)) // in flight when "a" restarts

	// "a" restarts (a later session, and another cipher: receivers accept
	// both). Its counter starts again at 1, below what the old session
	// reached: the new session has a window of its own.
	second := newSealed(t, "a", CipherChaCha20Poly1305, 2000, key)
	d := sealPkt(t, second, ipv4(40))
	if _, err := rx.OpenFrom(nil, d, p); err != nil {
		t.Fatalf("newer session: %v", err)
	}
	if id, _ := replayState(p); id != 2000 {
		t.Fatalf("current session %d, want 2000", id)
	}
	// The previous session is kept: the packet in flight opens, once.
	if _, err := rx.OpenFrom(nil, late, p); err != nil {
		t.Fatalf("packet of the previous session: %v", err)
	}
	if _, err := rx.OpenFrom(nil, late, p); err != ErrReplay {
		t.Fatalf("replayed packet of the previous session: %v, want %v", err, ErrReplay)
	}
	if _, err := rx.OpenFrom(nil, sealPkt(t, second, ipv4(40)), p); err != nil {
		t.Fatalf("second packet of the newer session: %v", err)
	}
	// A third session pushes the first out: two sessions old is old.
	third := newSealed(t, "a", CipherAESGCM, 2500, key)
	if _, err := rx.OpenFrom(nil, sealPkt(t, third, ipv4(40)), p); err != nil {
		t.Fatalf("third session: %v", err)
	}
	if _, err := rx.OpenFrom(nil, sealPkt(t, first, ipv4(40)), p); err != ErrOldSession {
		t.Fatalf("packet two sessions old: %v, want %v", err, ErrOldSession)
	}

	// A forged packet announcing a newer session changes nothing.
	forged := sealPkt(t, newSealed(t, "a", CipherAuto, 3000, collidingKey(key)), ipv4(40))
	if _, err := rx.OpenFrom(nil, forged, p); err != ErrAuth {
		t.Fatalf("forged newer session: %v, want %v", err, ErrAuth)
	}
	if id, _ := replayState(p); id != 2500 {
		t.Fatalf("forgery moved the session to %d", id)
	}
	if _, err := rx.OpenFrom(nil, sealPkt(t, third, ipv4(40)), p); err != nil {
		t.Fatalf("after the forgery: %v", err)
	}
}

// Derived AEADs are cached: after the first packet of a session, packets
// under the same key and cipher derive nothing.
func TestSealedCachesKeys(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	p := s.NewPeer("a")
	if _, err := s.OpenFrom(nil, sealPkt(t, s, ipv4(40)), p); err != nil {
		t.Fatal(err)
	}
	a := p.cur.aeads[0].aead
	for range 10 {
		if _, err := s.OpenFrom(nil, sealPkt(t, s, ipv4(40)), p); err != nil {
			t.Fatal(err)
		}
	}
	if p.cur.aeads[0].aead != a || p.cur.aeads[1].aead != nil {
		t.Fatal("AEAD derived again")
	}
}

// A flood of forged new sessions from one peer's address is limited to a
// few key derivations; the genuine peer's new session still gets through
// once the limit refills, and cached sessions are never limited.
func TestSealedSessionLimit(t *testing.T) {
	key := testKey(1)
	rx := newSealed(t, "b", CipherAuto, 0, key)
	p := rx.NewPeer("a")
	genuine := newSealed(t, "a", CipherAESGCM, 1000, key)
	if _, err := rx.OpenFrom(nil, sealPkt(t, genuine, ipv4(40)), p); err != nil {
		t.Fatal(err)
	}
	// Forged datagrams with ever-newer sessions: the first deriveBurst-1
	// derive (one token went to the genuine session) and fail to
	// authenticate; the rest are refused before any derivation.
	forger := newSealed(t, "a", CipherAESGCM, 5000, collidingKey(key))
	var derived, limited int
	for i := range 100 {
		d := sealPkt(t, forger, ipv4(40))
		binary.BigEndian.PutUint64(d[16:24], uint64(5000+i)) // a new session each
		switch _, err := rx.OpenFrom(nil, d, p); err {
		case ErrAuth:
			derived++
		case ErrSessionLimit:
			limited++
		default:
			t.Fatalf("forgery %d: %v", i, err)
		}
	}
	if derived != deriveBurst-1 || limited != 100-derived {
		t.Fatalf("%d forgeries derived keys, %d were limited; want %d and %d", derived, limited, deriveBurst-1, 100-deriveBurst+1)
	}
	// The current session needs no derivation: never limited.
	if _, err := rx.OpenFrom(nil, sealPkt(t, genuine, ipv4(40)), p); err != nil {
		t.Fatalf("current session under the limit: %v", err)
	}
	// The genuine peer restarts: refused while the bucket is empty, let in
	// after one token's time.
	restarted := newSealed(t, "a", CipherAESGCM, 2000, key)
	if _, err := rx.OpenFrom(nil, sealPkt(t, restarted, ipv4(40)), p); err != ErrSessionLimit {
		t.Fatalf("new session with an empty bucket: %v, want %v", err, ErrSessionLimit)
	}
	time.Sleep(2 * deriveEvery)
	if _, err := rx.OpenFrom(nil, sealPkt(t, restarted, ipv4(40)), p); err != nil {
		t.Fatalf("new session after the refill: %v", err)
	}
	if id, _ := replayState(p); id != 2000 {
		t.Fatalf("current session %d, want 2000", id)
	}
}

func TestRateLimit(t *testing.T) {
	var l rateLimit
	now := time.Unix(100, 0)
	for i := range deriveBurst {
		if !l.allow(now) {
			t.Fatalf("token %d of a full bucket refused", i)
		}
	}
	if l.allow(now) {
		t.Fatal("empty bucket gave a token")
	}
	if l.allow(now.Add(deriveEvery / 2)) {
		t.Fatal("token before its time")
	}
	if !l.allow(now.Add(deriveEvery)) {
		t.Fatal("no token after one interval")
	}
	if l.allow(now.Add(deriveEvery)) {
		t.Fatal("two tokens after one interval")
	}
	later := now.Add(time.Hour) // a long pause refills to the burst, not beyond
	n := 0
	for l.allow(later) {
		n++
	}
	if n != deriveBurst {
		t.Fatalf("%d tokens after a long pause, want %d", n, deriveBurst)
	}
}

// The per-queue windows against a model that remembers every counter of
// every queue: several sender queues interleave, each mostly in order, and a
// counter is accepted exactly when its queue never accepted it and it is
// less than ReplayWindow behind that queue's newest. One queue racing ahead
// by far more than a window must not push another's packets out.
func TestQueueWindowsModel(t *testing.T) {
	const queues = 5
	rng := rand.New(rand.NewPCG(3, 4))
	var w queueWindows
	seen := map[uint64]bool{}
	var last, next [queues]uint64
	for q := range next {
		next[q] = 1
	}
	for i := range 300000 {
		q := rng.IntN(queues)
		if q == 0 && rng.IntN(2) == 0 {
			q = queues - 1 // one queue sends far more than the others
		}
		var num uint64
		switch r := rng.IntN(100); {
		case r < 60:
			num = next[q]
			next[q]++
		case r < 65:
			next[q] += uint64(rng.IntN(3 * ReplayWindow))
			num = next[q]
		case r < 95:
			num = max(1, last[q]-min(last[q], uint64(rng.IntN(ReplayWindow+200))))
		default:
			num = max(1, last[q])
		}
		ctr := uint64(q)<<queueShift | num
		want := !seen[ctr] && (num > last[q] || last[q]-num < ReplayWindow)
		if got := w.check(ctr); got != want {
			t.Fatalf("step %d: queue %d check(%d) = %v with last %d, want %v", i, q, num, got, last[q], want)
		}
		if want {
			w.mark(ctr)
			seen[ctr] = true
			last[q] = max(last[q], num)
		}
	}
	if len(w.wins) != queues {
		t.Errorf("%d windows for %d queues", len(w.wins), queues)
	}
}

// TestSealedSeveralQueues: queues seal in parallel from one Sealed (under
// the race detector, this also checks they share nothing unguarded); the
// receiver gets each queue's packets as a burst after the others' — far
// more than a window apart in sending order — and must open every one once.
func TestSealedSeveralQueues(t *testing.T) {
	const queues, per = 4, 3 * ReplayWindow
	s := newSealed(t, "a", CipherAuto, 0)
	out := make([][][]byte, queues)
	var wg sync.WaitGroup
	for q := range queues {
		wg.Go(func() {
			for range per {
				buf := make([]byte, SealedHeaderLen+20+TagLen)
				copy(buf[SealedHeaderLen:], ipv4(20))
				d, err := s.SealQueue(q, buf, SealedHeaderLen, 20)
				if err != nil {
					t.Error(err)
					return
				}
				out[q] = append(out[q], d)
			}
		})
	}
	wg.Wait()
	p := s.NewPeer("a")
	for _, q := range []int{2, 0, 3, 1} {
		for i, d := range out[q] {
			if o, _ := ParseSealedOption(d); o.Counter != uint64(q)<<56|uint64(i+1) {
				t.Fatalf("queue %d packet %d has counter %#x", q, i, o.Counter)
			}
			if _, err := openCopy(s, d, p); err != nil {
				t.Fatalf("queue %d packet %d: %v", q, i, err)
			}
		}
	}
	for q := range queues { // and none twice
		if _, err := openCopy(s, out[q][per-1], p); err != ErrReplay {
			t.Errorf("queue %d's last packet again: %v, want %v", q, err, ErrReplay)
		}
	}
}

// Counters no sender makes are malformed: a queue at or past MaxQueues, or
// number 0 within a queue.
func TestSealedRejectsBadQueueCounter(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	p := s.NewPeer("a")
	for _, ctr := range []uint64{MaxQueues << 56, MaxQueues<<56 | 1, 3 << 56, 1 << 63} {
		if _, err := openCopy(s, sealCounter(s, ctr), p); err != ErrFormat {
			t.Errorf("counter %#x: %v, want %v", ctr, err, ErrFormat)
		}
	}
	if _, err := openCopy(s, sealCounter(s, (MaxQueues-1)<<56|7), p); err != nil {
		t.Errorf("the last queue's counter: %v", err)
	}
}
