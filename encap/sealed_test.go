package encap

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"
)

var ciphers = []byte{CipherAESGCM, CipherChaCha20Poly1305}

// testKey returns a fixed secret for i, so failures reproduce.
func testKey(i int) []byte {
	k := sha256.Sum256(fmt.Appendf(nil, "weft test key %d", i))
	return k[:]
}

// collidingKey returns a secret other than key with the same key id.
func collidingKey(key []byte) []byte {
	for i := 1000; ; i++ {
		if k := testKey(i); KeyID(k) == KeyID(key) && !bytes.Equal(k, key) {
			return k
		}
	}
}

func newSealed(t testing.TB, name string, c byte, session uint64, keys ...[]byte) *Sealed {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{testKey(1)}
	}
	s, err := NewSealed(SealedConfig{VNI: 7, Name: name, Keys: keys, Cipher: c, Session: session})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sealPkt seals a copy of pkt into a buffer of exactly the room s needs.
func sealPkt(t testing.TB, s *Sealed, pkt []byte) []byte {
	t.Helper()
	return sealQueuePkt(t, s, 0, pkt)
}

// sealQueuePkt is sealPkt from queue q.
func sealQueuePkt(t testing.TB, s *Sealed, q int, pkt []byte) []byte {
	t.Helper()
	buf := make([]byte, SealedHeaderLen+len(pkt)+TagLen)
	copy(buf[SealedHeaderLen:], pkt)
	d, err := s.SealQueue(q, buf, SealedHeaderLen, len(pkt))
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return d
}

// openCopy opens a copy of d (OpenFrom works in place).
func openCopy(s *Sealed, d []byte, p *PeerState) ([]byte, error) {
	return s.OpenFrom(nil, bytes.Clone(d), p)
}

func TestSealedRoundTrip(t *testing.T) {
	for _, c := range ciphers {
		t.Run(CipherName(c), func(t *testing.T) {
			const session = 1_700_000_000_123_456_789
			key := testKey(1)
			tx := newSealed(t, "a", c, session, key)
			rx := newSealed(t, "b", CipherAuto, 0, key)
			p := rx.NewPeer("a")
			var pkts [][]byte
			for n := 20; n <= 1500; n++ {
				pkts = append(pkts, ipv4(n))
			}
			for n := 0; n <= 1460; n += 7 {
				pkts = append(pkts, ipv6(n))
			}
			for i, pkt := range pkts {
				d := sealPkt(t, tx, pkt)
				if len(d) != len(pkt)+SealedOverhead {
					t.Fatalf("datagram length %d, want %d", len(d), len(pkt)+SealedOverhead)
				}
				h, err := ParseHeader(d)
				if err != nil {
					t.Fatal(err)
				}
				if h.Version != 0 || h.OptLen != 24 || h.Control || !h.Critical || h.Protocol != ProtoSealed || h.VNI != 7 {
					t.Fatalf("header %+v", h)
				}
				if got := binary.BigEndian.Uint16(d[8:10]); got != 0xFF57 || d[10] != 0x81 || d[11] != 5 || d[14] != 0 || d[15] != 0 {
					t.Fatalf("option header % x", d[8:16])
				}
				o, err := ParseSealedOption(d)
				want := SealedOption{Cipher: c, KeyID: KeyID(key), Session: session, Counter: uint64(i + 1)}
				if err != nil || o != want {
					t.Fatalf("option %+v, %v; want %+v", o, err, want)
				}
				if bytes.Contains(d, pkt[:20]) {
					t.Fatal("inner header visible in the datagram")
				}
				inner, err := rx.OpenFrom(nil, d, p)
				if err != nil {
					t.Fatalf("open packet %d (%d bytes): %v", i, len(pkt), err)
				}
				if !bytes.Equal(inner, pkt) {
					t.Fatalf("packet %d: inner packet differs", i)
				}
			}
		})
	}
}

func TestSealedTrimsPadding(t *testing.T) {
	// Padding inside the sealed packet (bytes after the IP header's total
	// length) is trimmed as Plain trims it.
	s := newSealed(t, "a", CipherAuto, 0)
	pkt := append(ipv4(64), 0, 0, 0)
	inner, err := s.OpenFrom(nil, sealPkt(t, s, pkt), s.NewPeer("a"))
	if err != nil || !bytes.Equal(inner, pkt[:64]) {
		t.Fatalf("inner %d bytes, %v", len(inner), err)
	}
}

func TestSealedOpenRejects(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	good := sealPkt(t, s, ipv4(100))
	plain, _ := NewPlain(7)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	sealRaw := func(pkt []byte) []byte { // seals bytes Seal would not check further
		return sealPkt(t, s, pkt)
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"7 bytes", good[:7], ErrShort},
		{"option cut", good[:20], ErrShort},
		{"version 1", mut(func(b []byte) []byte { b[0] |= 0x40; return b }), ErrVersion},
		{"control", mut(func(b []byte) []byte { b[1] |= 0x80; return b }), ErrControl},
		{"other vni", mut(func(b []byte) []byte { b[6]++; return b }), ErrNetwork},
		{"plaintext v4", seal(t, plain, ipv4(100)), ErrUnauthenticated},
		{"plaintext v6", seal(t, plain, ipv6(10)), ErrUnauthenticated},
		{"ethernet payload", mut(func(b []byte) []byte { b[2], b[3] = 0x65, 0x58; return b }), ErrProtocol},
		{"not critical", mut(func(b []byte) []byte { b[1] &^= 0x40; return b }), ErrFormat},
		{"no option", mut(func(b []byte) []byte { b[0] = 0; return b }), ErrFormat},
		{"two options", mut(func(b []byte) []byte { b[0] = 7; return b }), ErrFormat},
		{"other class", mut(func(b []byte) []byte { b[9]++; return b }), ErrFormat},
		{"other type", mut(func(b []byte) []byte { b[10] = 0x01; return b }), ErrFormat},
		{"other length", mut(func(b []byte) []byte { b[11] = 4; return b }), ErrFormat},
		{"unknown cipher", mut(func(b []byte) []byte { b[12] = 3; return b }), ErrFormat},
		{"cipher 0", mut(func(b []byte) []byte { b[12] = 0; return b }), ErrFormat},
		{"session 0", mut(func(b []byte) []byte { clear(b[16:24]); return b }), ErrFormat},
		{"counter 0", mut(func(b []byte) []byte { clear(b[24:32]); return b }), ErrFormat},
		{"counter 2^63", mut(func(b []byte) []byte { b[24] = 0x80; return b }), ErrFormat},
		{"no tag", good[:SealedOverhead-1], ErrShort},
		{"unknown key", mut(func(b []byte) []byte { b[13]++; return b }), ErrUnknownKey},
		{"cut tag", good[:len(good)-1], ErrAuth},
		{"other cipher byte", mut(func(b []byte) []byte { b[12] ^= 3; return b }), ErrAuth},
		{"authentic, empty", sealEmpty(s), ErrInner},
		{"authentic, inner not IP", sealRaw(append([]byte{0x45}, make([]byte, 10)...)), ErrInner},
		{"authentic, inner truncated", sealRaw(ipv4(100)[:60]), ErrInner},
	}
	for _, tc := range cases {
		if _, err := openCopy(s, tc.in, s.NewPeer("a")); err != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSealedSealRejects(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	buf := make([]byte, 100)
	buf[SealedHeaderLen] = 0x45
	for _, tc := range []struct {
		name   string
		off, n int
		want   error
	}{
		{"no headroom", 31, 20, ErrNoRoom},
		{"no tailroom", 32, 100 - 32 - 15, ErrNoRoom},
		{"empty", 32, 0, ErrNoRoom},
		{"negative", 32, -1, ErrNoRoom},
		{"fits exactly", 32, 100 - 32 - 16, nil},
	} {
		if _, err := s.Seal(buf, tc.off, tc.n); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	buf[SealedHeaderLen] = 0x20
	if _, err := s.Seal(buf, SealedHeaderLen, 20); err != ErrInner {
		t.Errorf("not IP: %v", err)
	}
}

func TestNewSealedRejects(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	for _, tc := range []struct {
		name string
		cfg  SealedConfig
	}{
		{"vni", SealedConfig{VNI: MaxVNI + 1, Name: "a", Keys: [][]byte{k1}}},
		{"no name", SealedConfig{Keys: [][]byte{k1}}},
		{"no key", SealedConfig{Name: "a"}},
		{"short key", SealedConfig{Name: "a", Keys: [][]byte{k1[:31]}}},
		{"zero key", SealedConfig{Name: "a", Keys: [][]byte{make([]byte, 32)}}},
		{"same key twice", SealedConfig{Name: "a", Keys: [][]byte{k1, k2, k1}}},
		{"same id", SealedConfig{Name: "a", Keys: [][]byte{k1, collidingKey(k1)}}},
		{"too many", SealedConfig{Name: "a", Keys: [][]byte{k1, k2, testKey(3), testKey(4), testKey(5)}}},
		{"cipher", SealedConfig{Name: "a", Keys: [][]byte{k1}, Cipher: 3}},
	} {
		if _, err := NewSealed(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}

// sealEmpty returns an authentic datagram with no inner packet at all,
// which Seal refuses to make.
func sealEmpty(s *Sealed) []byte {
	d := make([]byte, SealedHeaderLen, SealedOverhead)
	return sealRaw(s, s.state.Load().tx.sess.ctrs[0].Add(1), d)
}

// sealCounter returns an authentic datagram with counter ctr, which Seal
// might never make.
func sealCounter(s *Sealed, ctr uint64) []byte {
	d := make([]byte, SealedHeaderLen, SealedOverhead+20)
	return sealRaw(s, ctr, append(d, ipv4(20)...))
}

// sealRaw seals d[SealedHeaderLen:] with counter ctr.
func sealRaw(s *Sealed, ctr uint64, d []byte) []byte {
	tx := s.state.Load().tx
	copy(d, tx.hdr[:])
	binary.BigEndian.PutUint64(d[24:32], ctr)
	var nonce [nonceLen]byte
	binary.BigEndian.PutUint64(nonce[4:], ctr)
	return tx.aead.Seal(d[:SealedHeaderLen], nonce[:], d[SealedHeaderLen:], d[:SealedHeaderLen])
}

// replayState is the part of a PeerState that decides what is accepted:
// the session and a copy of each queue's window.
func replayState(p *PeerState) (uint64, []replayWindow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wins := make([]replayWindow, len(p.curWin.wins))
	for i, w := range p.curWin.wins {
		if w != nil {
			wins[i] = *w
		}
	}
	return p.cur.id, wins
}

// Any single flipped bit makes a datagram fail, and the failure leaves the
// peer's replay state as it was.
func TestSealedBitFlips(t *testing.T) {
	for _, c := range ciphers {
		t.Run(CipherName(c), func(t *testing.T) {
			s := newSealed(t, "a", c, 0)
			p := s.NewPeer("a")
			for range 3 { // some history, so the window is not empty
				if _, err := s.OpenFrom(nil, sealPkt(t, s, ipv4(40)), p); err != nil {
					t.Fatal(err)
				}
			}
			sample := sealPkt(t, s, ipv6(60))
			before, beforeWin := replayState(p)
			seen := map[error]bool{}
			for i := range len(sample) * 8 {
				d := bytes.Clone(sample)
				d[i/8] ^= 1 << (i % 8)
				_, err := s.OpenFrom(nil, d, p)
				switch {
				case err == nil:
					t.Fatalf("bit %d of byte %d flipped: opened", i%8, i/8)
				case i/8 >= SealedHeaderLen && err != ErrAuth:
					t.Fatalf("ciphertext byte %d flipped: %v, want %v", i/8, err, ErrAuth)
				}
				seen[err] = true
				if id, win := replayState(p); id != before || !slices.Equal(win, beforeWin) {
					t.Fatalf("byte %d flipped (%v): replay state changed", i/8, err)
				}
			}
			t.Logf("reasons seen: %v", keys(seen))
			if _, err := s.OpenFrom(nil, sample, p); err != nil {
				t.Fatalf("genuine packet after the flips: %v", err)
			}
		})
	}
}

func keys(m map[error]bool) []string {
	var s []string
	for e := range m {
		s = append(s, e.Error())
	}
	return s
}

func TestPlainAndSealedRefuseEachOther(t *testing.T) {
	plain, _ := NewPlain(7)
	s := newSealed(t, "a", CipherAuto, 0)
	if _, err := plain.OpenFrom(nil, sealPkt(t, s, ipv4(60)), nil); err != ErrCritical {
		t.Errorf("plain opened a sealed datagram: %v", err)
	}
	if _, err := plain.OpenFrom(nil, sealPkt(t, s, ipv4(60)), plain.NewPeer("a")); err != ErrCritical {
		t.Errorf("plain OpenFrom opened a sealed datagram: %v", err)
	}
	if _, err := s.OpenFrom(nil, seal(t, plain, ipv4(60)), s.NewPeer("a")); err != ErrUnauthenticated {
		t.Errorf("sealed opened a plaintext datagram: %v", err)
	}
}

// A datagram sealed by one node does not open as another node's: a captured
// packet cannot be replayed with another peer's source address.
func TestSealedBindsSenderName(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	if _, err := s.OpenFrom(nil, sealPkt(t, s, ipv4(60)), s.NewPeer("b")); err != ErrAuth {
		t.Fatalf("a's packet opened as b's: %v", err)
	}
}

// Two senders never encrypt under the same (key, nonce): their session keys
// differ whenever name, session or cipher differ, and nonces repeat only
// across session keys.
func TestSessionKeysDiffer(t *testing.T) {
	k, _ := newKey(testKey(1))
	k2, _ := newKey(testKey(2))
	seen := map[string]string{}
	for _, key := range []*key{k, k2} {
		for _, name := range []string{"a", "b", "a\x00", "ab"} {
			for _, sess := range []uint64{1, 2, 1 << 40} {
				for _, c := range ciphers {
					label := fmt.Sprintf("key %02x name %q session %d cipher %d", key.id, name, sess, c)
					sk := string(sessionKey(key, sess, c, name))
					if o, dup := seen[sk]; dup {
						t.Fatalf("%s and %s share a session key", label, o)
					}
					seen[sk] = label
				}
			}
		}
	}
	// Same key, same session id, same counter, same packet: two names give
	// two different ciphertexts.
	a := newSealed(t, "a", CipherAuto, 42)
	b := newSealed(t, "b", CipherAuto, 42)
	da, db := sealPkt(t, a, ipv4(60)), sealPkt(t, b, ipv4(60))
	if !bytes.Equal(da[:SealedHeaderLen], db[:SealedHeaderLen]) {
		t.Fatal("headers differ")
	}
	if bytes.Equal(da[SealedHeaderLen:], db[SealedHeaderLen:]) {
		t.Fatal("two names sealed to the same ciphertext")
	}
}

func TestDefaultSession(t *testing.T) {
	a, b := newSealed(t, "a", CipherAuto, 0), newSealed(t, "a", CipherAuto, 0)
	if a.Session() < sessionMark || a.Session() <= uint64(time.Now().UnixNano()) {
		t.Fatalf("session %#x is not above every earlier version's (Unix ns) id", a.Session())
	}
	if a.Session() == b.Session() {
		t.Fatalf("two codecs started at once drew the same session %#x", a.Session())
	}
}

// TestCounterExhaustion: when any queue's numbers run out, the node starts
// a new session, which numbers every queue from 1 again.
func TestCounterExhaustion(t *testing.T) {
	for _, q := range []int{0, 5, MaxQueues - 1} {
		s := newSealed(t, "a", CipherAuto, 1000)
		p := s.NewPeer("a")
		s.state.Load().tx.sess.ctrs[q].Store(s.limit - 1)
		d := sealQueuePkt(t, s, q, ipv4(40))
		if o, _ := ParseSealedOption(d); o.Counter != uint64(q)<<56|s.limit || o.Session != 1000 {
			t.Fatalf("queue %d: last packet of a session: %+v", q, o)
		}
		if _, err := s.OpenFrom(nil, d, p); err != nil {
			t.Fatal(err)
		}
		d = sealQueuePkt(t, s, q, ipv4(40))
		o, _ := ParseSealedOption(d)
		if o.Counter != uint64(q)<<56|1 || o.Session <= 1000 || s.Session() != o.Session {
			t.Fatalf("queue %d: after the last counter: %+v, session %d", q, o, s.Session())
		}
		if _, err := s.OpenFrom(nil, d, p); err != nil {
			t.Fatalf("queue %d: new session: %v", q, err)
		}
	}
}

func TestDefaultCipher(t *testing.T) {
	c := DefaultCipher()
	if c != CipherAESGCM && c != CipherChaCha20Poly1305 {
		t.Fatalf("default cipher %d", c)
	}
	if s := newSealed(t, "a", CipherAuto, 0); s.Cipher() != c {
		t.Fatalf("auto picked %d, default is %d", s.Cipher(), c)
	}
	t.Logf("default cipher here: %s", CipherName(c))
}
