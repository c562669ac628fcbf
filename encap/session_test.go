package encap

import (
	"bytes"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"
)

// Session ids are ordered by start time, strictly increasing within a run
// whatever the clock does, above every Unix-ns id earlier versions sent, and
// differ in their random bits between runs that start at the same instant.
func TestNewSessionID(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	a := NewSessionID(0, now)
	if a < sessionMark || a <= uint64(now.UnixNano()) {
		t.Fatalf("id %#x not above the Unix-ns ids of earlier versions", a)
	}
	if got := (a >> sessionRandBits) & sessionTickMask; got != uint64(now.UnixNano())/uint64(sessionTick) {
		t.Fatalf("id %#x carries tick %d", a, got)
	}
	// The same instant (a restored snapshot, or a clock that stood still):
	// later than prev, and random bits of its own.
	b := NewSessionID(a, now)
	if b <= a {
		t.Fatalf("next id %#x not above %#x", b, a)
	}
	// A clock stepped back still gives a later id within a run.
	if c := NewSessionID(b, now.Add(-time.Hour)); c <= b {
		t.Fatalf("id after a clock step back %#x not above %#x", c, b)
	}
	// An old-format id (Unix ns) as prev: the new one is above it.
	if d := NewSessionID(uint64(now.UnixNano()), now); d <= uint64(now.UnixNano()) {
		t.Fatalf("id %#x not above an old-format one", d)
	}
	// Two runs from one snapshot draw at the same instant: the random bits
	// differ (a 2^-28 chance each pair that they do not; 100 draws).
	seen := map[uint64]bool{}
	for range 100 {
		id := NewSessionID(a, now)
		if seen[id] {
			t.Fatalf("id %#x drawn twice", id)
		}
		seen[id] = true
	}
}

// Rekey starts a new session; a receiver accepts the old session's packets
// still in flight (prev) and the new one's, and refuses each once seen.
func TestRekeyKeepsPrevious(t *testing.T) {
	tx := newSealed(t, "a", CipherAuto, 0)
	rx := newSealed(t, "b", CipherAuto, 0)
	p := rx.NewPeer("a")
	first := tx.Session()
	if _, err := rx.OpenFrom(nil, sealPkt(t, tx, ipv4(40)), p); err != nil {
		t.Fatal(err)
	}
	var inFlight [][]byte
	for range 5 {
		inFlight = append(inFlight, sealPkt(t, tx, ipv4(40)))
	}
	second := tx.Rekey()
	if second <= first || tx.Session() != second {
		t.Fatalf("rekey: session %#x after %#x", second, first)
	}
	d := sealPkt(t, tx, ipv4(40))
	if o, _ := ParseSealedOption(d); o.Session != second || o.Counter != 1 {
		t.Fatalf("first packet after the rekey: %+v", o)
	}
	if _, err := rx.OpenFrom(nil, d, p); err != nil {
		t.Fatal(err)
	}
	for i, d := range inFlight { // they arrive after the new session's first
		if _, err := rx.OpenFrom(nil, d, p); err != nil {
			t.Fatalf("in-flight packet %d of the previous session: %v", i, err)
		}
		if _, err := rx.OpenFrom(nil, d, p); err != ErrReplay {
			t.Fatalf("in-flight packet %d again: %v, want %v", i, err, ErrReplay)
		}
	}
	// Two more rotations: the first session is now old.
	tx.Rekey()
	if _, err := rx.OpenFrom(nil, sealPkt(t, tx, ipv4(40)), p); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.OpenFrom(nil, inFlight[0], p); err != ErrOldSession && err != ErrReplay {
		t.Fatalf("packet of a session two rotations old: %v", err)
	}
	fresh := newSealed(t, "a", CipherAuto, first) // another packet of the first session, never seen
	fresh.state.Load().tx.sess.ctrs[0].Store(100)
	if _, err := rx.OpenFrom(nil, sealPkt(t, fresh, ipv4(40)), p); err != ErrOldSession {
		t.Fatalf("unseen packet of a session two rotations old: %v, want %v", err, ErrOldSession)
	}
}

// The ring as a table: which of prev, cur and next a session lands in, and
// what moves when a packet of next authenticates.
func TestSessionRing(t *testing.T) {
	key := testKey(1)
	rx := newSealed(t, "b", CipherAuto, 0, key)
	p := rx.NewPeer("a")
	senders := map[uint64]*Sealed{}
	send := func(sess uint64) error {
		s := senders[sess]
		if s == nil {
			s = newSealed(t, "a", CipherAESGCM, sess, key)
			senders[sess] = s
		}
		_, err := rx.OpenFrom(nil, sealPkt(t, s, ipv4(40)), p)
		return err
	}
	ring := func() [3]uint64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return [3]uint64{p.prev.id, p.cur.id, p.next.id}
	}
	for i, step := range []struct {
		sess uint64
		err  error
		ring [3]uint64
	}{
		{100, nil, [3]uint64{0, 100, 0}},
		{200, nil, [3]uint64{100, 200, 0}},
		{100, nil, [3]uint64{100, 200, 0}}, // prev still opens
		{50, ErrOldSession, [3]uint64{100, 200, 0}},
		{300, nil, [3]uint64{200, 300, 0}},
		{100, ErrOldSession, [3]uint64{200, 300, 0}},
		{200, nil, [3]uint64{200, 300, 0}},
		{500, nil, [3]uint64{300, 500, 0}}, // 400 never seen: its packets would be over a rotation late
		{400, ErrOldSession, [3]uint64{300, 500, 0}},
		{300, nil, [3]uint64{300, 500, 0}},
		{500, nil, [3]uint64{300, 500, 0}},
	} {
		if err := send(step.sess); err != step.err {
			t.Fatalf("step %d: session %d: %v, want %v", i, step.sess, err, step.err)
		}
		if got := ring(); got != step.ring {
			t.Fatalf("step %d: ring (prev, cur, next) %v, want %v", i, got, step.ring)
		}
	}
	// A forged newer session is derived into next and changes nothing else.
	forged := sealPkt(t, newSealed(t, "a", CipherAESGCM, 600, collidingKey(key)), ipv4(40))
	if _, err := rx.OpenFrom(nil, forged, p); err != ErrAuth {
		t.Fatalf("forged newer session: %v, want %v", err, ErrAuth)
	}
	if got := ring(); got != [3]uint64{300, 500, 600} {
		t.Fatalf("after a forgery: ring %v", got)
	}
}

// Seal rotates on volume: with a limit of 3 packets a session, the fourth
// packet starts the next session at counter 1, and the receiver follows.
func TestVolumeRekey(t *testing.T) {
	tx, err := NewSealed(SealedConfig{VNI: 7, Name: "a", Keys: [][]byte{testKey(1)}, RekeyAfterPackets: 3})
	if err != nil {
		t.Fatal(err)
	}
	rx := newSealed(t, "b", CipherAuto, 0)
	p := rx.NewPeer("a")
	var sessions []uint64
	for i := range 10 {
		d := sealPkt(t, tx, ipv4(40))
		o, _ := ParseSealedOption(d)
		if want := uint64(i%3 + 1); o.Counter != want {
			t.Fatalf("packet %d: counter %d, want %d", i, o.Counter, want)
		}
		if i%3 == 0 {
			sessions = append(sessions, o.Session)
		}
		if _, err := rx.OpenFrom(nil, d, p); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	for i := 1; i < len(sessions); i++ {
		if sessions[i] <= sessions[i-1] {
			t.Fatalf("sessions %#x not increasing", sessions)
		}
	}
}

// Several goroutines seal at once (one per queue) across volume rotations
// and timer rekeys: no (session, counter) pair is handed out twice, and a
// receiver that gets every packet, reordered as the wire may, refuses none:
// a packet may be late by up to a whole session (here 2,000 packets; 2^28 or
// --rekey-after by default).
func TestRekeyConcurrentSenders(t *testing.T) {
	const senders, each, reorder = 4, 2000, 64
	tx, err := NewSealed(SealedConfig{VNI: 7, Name: "a", Keys: [][]byte{testKey(1)}, RekeyAfterPackets: 2000})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var wire [][]byte
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				if g == 0 && i == each/2 {
					tx.Rekey() // the timer, meanwhile
				}
				d := sealPkt(t, tx, ipv4(40))
				mu.Lock()
				wire = append(wire, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The wire: in the order sealed (by session, then counter; the
	// scheduler may hold a sealed packet back for long, a socket does
	// not), each run of 64 arriving backwards.
	slices.SortFunc(wire, func(a, b []byte) int { return bytes.Compare(a[16:32], b[16:32]) })
	for i := 0; i < len(wire); i += reorder { // each run of 64 arrives backwards
		slices.Reverse(wire[i:min(i+reorder, len(wire))])
	}
	type nonce struct{ sess, ctr uint64 }
	seen := map[nonce]bool{}
	rx := newSealed(t, "b", CipherAuto, 0)
	p := rx.NewPeer("a")
	for i, d := range wire {
		n := nonce{binary.BigEndian.Uint64(d[16:24]), binary.BigEndian.Uint64(d[24:32])}
		if seen[n] {
			t.Fatalf("session %#x counter %d sealed twice", n.sess, n.ctr)
		}
		seen[n] = true
		if _, err := rx.OpenFrom(nil, d, p); err != nil {
			t.Fatalf("datagram %d (session %#x counter %d): %v", i, n.sess, n.ctr, err)
		}
	}
}

func TestSessionStart(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 300e6, time.UTC)
	if got := SessionStart(NewSessionID(0, now)); !got.Equal(now.Truncate(sessionTick)) {
		t.Fatalf("start %v, want %v", got, now.Truncate(sessionTick))
	}
	if got := SessionStart(uint64(now.UnixNano())); !got.Equal(now) { // an earlier version's id
		t.Fatalf("start of an old-format id %v, want %v", got, now)
	}
}
