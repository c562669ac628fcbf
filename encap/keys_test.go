package encap

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestKeyText(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateKey()
	if len(k) != KeyLen || bytes.Equal(k, k2) {
		t.Fatalf("generated % x and % x", k, k2)
	}
	text := FormatKey(k)
	if len(text) != 44 {
		t.Fatalf("formatted key %q", text)
	}
	for _, in := range []string{text, text + "\n", "  " + text + "\r\n"} {
		got, err := ParseKey(in)
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("ParseKey(%q) = % x, %v", in, got, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "0 bytes"},
		{FormatKey(k[:31]), "31 bytes, want 32"},
		{FormatKey(append(k, 1)), "33 bytes, want 32"},
		{strings.TrimRight(text, "="), "not base64"},
		{text[:20] + "!" + text[21:], "not base64"},
		{strings.ReplaceAll(strings.ReplaceAll(text, "+", "-"), "/", "_") + "x", "not base64"},
		{FormatKey(make([]byte, 32)), "all zeros"},
	} {
		_, err := ParseKey(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseKey(%q): %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}

func TestKeyID(t *testing.T) {
	// Fixed: a key's id must be the same on every node and every version.
	if got := KeyID(make([]byte, 32)); got != KeyID(make([]byte, 32)) {
		t.Fatal("key id not deterministic")
	}
	ids := map[byte]bool{}
	for i := range 64 {
		ids[KeyID(testKey(i))] = true
	}
	if len(ids) < 40 {
		t.Fatalf("64 keys have only %d distinct ids", len(ids))
	}
}

func TestWrongKey(t *testing.T) {
	key := testKey(1)
	rx := newSealed(t, "b", CipherAuto, 0, key)
	other := newSealed(t, "a", CipherAuto, 0, testKey(2))
	if KeyID(testKey(2)) == KeyID(key) {
		t.Fatal("test keys collide")
	}
	if _, err := rx.OpenFrom(nil, sealPkt(t, other, ipv4(60)), rx.NewPeer("a")); err != ErrUnknownKey {
		t.Fatalf("another cluster's key: %v, want %v", err, ErrUnknownKey)
	}
	forged := newSealed(t, "a", CipherAuto, 0, collidingKey(key))
	if _, err := rx.OpenFrom(nil, sealPkt(t, forged, ipv4(60)), rx.NewPeer("a")); err != ErrAuth {
		t.Fatalf("a key with the same id: %v, want %v", err, ErrAuth)
	}
}

func TestKeyRotation(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	id1, id2 := KeyID(k1), KeyID(k2)
	a := newSealed(t, "a", CipherAuto, 0, k1)
	b := newSealed(t, "b", CipherAuto, 0, k1)
	straggler := newSealed(t, "c", CipherAuto, 0, k1) // a node that missed the rotation
	pa, pc := b.NewPeer("a"), b.NewPeer("c")
	open := func(step string, d []byte, p *PeerState, want error) {
		t.Helper()
		if _, err := b.OpenFrom(nil, d, p); err != want {
			t.Fatalf("%s: %v, want %v", step, err, want)
		}
	}
	checkIDs := func(s *Sealed, ids []byte, primary byte) {
		t.Helper()
		if got, p := s.KeyIDs(); !slices.Equal(got, ids) || p != primary {
			t.Fatalf("KeyIDs = % x primary %02x, want % x primary %02x", got, p, ids, primary)
		}
	}

	// 1. Every node adds the new key; senders keep the old one.
	for _, s := range []*Sealed{a, b} {
		if id, err := s.AddKey(k2); err != nil || id != id2 {
			t.Fatalf("AddKey: %02x, %v", id, err)
		}
	}
	checkIDs(b, []byte{id1, id2}, id1)
	open("old primary, both held", sealPkt(t, a, ipv4(60)), pa, nil)

	// 2. Senders switch. Receivers accept both keys meanwhile.
	if err := a.SetPrimary(id2); err != nil {
		t.Fatal(err)
	}
	checkIDs(a, []byte{id1, id2}, id2)
	d := sealPkt(t, a, ipv4(60))
	if o, _ := ParseSealedOption(d); o.KeyID != id2 {
		t.Fatalf("sealed under %02x after switching to %02x", o.KeyID, id2)
	}
	open("new primary", d, pa, nil)
	open("a node still on the old key", sealPkt(t, straggler, ipv4(60)), pc, nil)
	inFlight := sealPkt(t, straggler, ipv4(60))

	// 3. The old key is dropped: its packets are unknown.
	if err := b.SetPrimary(id2); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveKey(id1); err != nil {
		t.Fatal(err)
	}
	checkIDs(b, []byte{id2}, id2)
	open("old key after removal", inFlight, pc, ErrUnknownKey)
	open("new key after removal", sealPkt(t, a, ipv4(60)), pa, nil)

	// A removed and re-added key works again (cached AEADs are per key).
	if _, err := b.AddKey(k1); err != nil {
		t.Fatal(err)
	}
	open("re-added key", sealPkt(t, straggler, ipv4(60)), pc, nil)
}

func TestKeyringErrors(t *testing.T) {
	k1 := testKey(1)
	s := newSealed(t, "a", CipherAuto, 0, k1)
	if _, err := s.AddKey(k1); err == nil || !strings.Contains(err.Error(), "already held") {
		t.Errorf("same key twice: %v", err)
	}
	if _, err := s.AddKey(collidingKey(k1)); err == nil || !strings.Contains(err.Error(), "generate a new key") {
		t.Errorf("key id collision: %v", err)
	}
	if _, err := s.AddKey(k1[:16]); err == nil {
		t.Error("short key added")
	}
	if err := s.RemoveKey(KeyID(k1)); err == nil {
		t.Error("primary removed")
	}
	if err := s.SetPrimary(KeyID(k1) + 1); err == nil {
		t.Error("unknown key made primary")
	}
	if err := s.RemoveKey(KeyID(k1) + 1); err == nil {
		t.Error("unknown key removed")
	}
	for i := 2; i <= MaxKeys; i++ {
		if _, err := s.AddKey(testKey(i)); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if _, err := s.AddKey(testKey(MaxKeys + 1)); err == nil {
		t.Errorf("key %d of %d added", MaxKeys+1, MaxKeys)
	}
	// Setting the primary it already is changes nothing.
	before := s.state.Load()
	if err := s.SetPrimary(KeyID(k1)); err != nil || s.state.Load() != before {
		t.Errorf("SetPrimary(primary): %v", err)
	}
}

// Changing the primary keeps the session and its counter: no counter is
// used twice in a session, under any key.
func TestSetPrimaryKeepsCounter(t *testing.T) {
	s := newSealed(t, "a", CipherAuto, 0)
	for range 3 {
		sealPkt(t, s, ipv4(40))
	}
	id, _ := s.AddKey(testKey(2))
	if err := s.SetPrimary(id); err != nil {
		t.Fatal(err)
	}
	o, _ := ParseSealedOption(sealPkt(t, s, ipv4(40)))
	if o.Counter != 4 || o.KeyID != id || o.Session != s.Session() {
		t.Fatalf("after SetPrimary: %+v", o)
	}
}
