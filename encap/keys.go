package encap

// Cluster secrets, their key ids, and the session keys derived from them.
//
// A keyring is immutable: the control goroutine (AddKey, SetPrimary,
// RemoveKey) builds a new one and swaps it in with the sender's state, so the
// hot paths load one pointer and take no lock. docs/security.md describes the
// key schedule.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// KeyLen is the length of a cluster secret in bytes.
	KeyLen = 32
	// MaxKeys is how many secrets a node holds at once: enough for a
	// rotation (old, new) with room to spare.
	MaxKeys = 4

	keyIDInfo   = "weft key id"
	sessionInfo = "weft data v1"
)

// key is one cluster secret. Entries are never modified; a removed and
// re-added secret is a new entry, which invalidates every AEAD cached for
// the old one (caches compare entry pointers).
type key struct {
	id     byte
	secret [KeyLen]byte
}

// keyring is an immutable set of keys with one primary (the one Seal uses).
type keyring struct {
	keys    []*key // in the order they were added
	primary *key
}

// find returns the key with id, or nil.
func (r *keyring) find(id byte) *key {
	for _, k := range r.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// KeyID returns the 1-byte id of a cluster secret: the first byte of
// HKDF-SHA256(secret, no salt, "weft key id"). Datagrams carry it so a
// receiver holding several secrets knows which one to try.
func KeyID(secret []byte) byte {
	b, err := hkdf.Key(sha256.New, secret, nil, keyIDInfo, 1)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot produce
	}
	return b[0]
}

// GossipKey derives the key that encrypts and authenticates gossip
// (memberlist's AES-256-GCM keyring) from a cluster secret, so one secret
// protects both planes without either key revealing the other.
func GossipKey(secret []byte) ([]byte, error) {
	if err := checkKey(secret); err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, secret, nil, "weft gossip v1", KeyLen)
}

// GenerateKey returns a new random cluster secret.
func GenerateKey() ([]byte, error) {
	b := make([]byte, KeyLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return b, nil
}

// FormatKey returns secret as text: standard base64, 44 characters.
func FormatKey(secret []byte) string { return base64.StdEncoding.EncodeToString(secret) }

// ParseKey decodes a secret that FormatKey (or weft keygen) printed.
// Surrounding white space is ignored; anything else must be exact.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	b, err := base64.StdEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("key is not base64 (want %d bytes as %d base64 characters, as weft keygen prints): %w",
			KeyLen, base64.StdEncoding.EncodedLen(KeyLen), err)
	}
	if err := checkKey(b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkKey reports what is wrong with a secret, if anything.
func checkKey(secret []byte) error {
	if len(secret) != KeyLen {
		return fmt.Errorf("key is %d bytes, want %d (%d base64 characters, as weft keygen prints)",
			len(secret), KeyLen, base64.StdEncoding.EncodedLen(KeyLen))
	}
	for _, b := range secret {
		if b != 0 {
			return nil
		}
	}
	return errors.New("key is all zeros: generate one with weft keygen")
}

func newKey(secret []byte) (*key, error) {
	if err := checkKey(secret); err != nil {
		return nil, err
	}
	k := &key{id: KeyID(secret)}
	copy(k.secret[:], secret)
	return k, nil
}

// sessionKey derives the key one sender uses for one session and cipher:
// HKDF-SHA256(secret, salt = session id (8 bytes, big endian),
// info = "weft data v1" || cipher || sender name).
func sessionKey(k *key, session uint64, cipherID byte, sender string) []byte {
	var salt [8]byte
	binary.BigEndian.PutUint64(salt[:], session)
	info := sessionInfo + string([]byte{cipherID}) + sender
	b, err := hkdf.Key(sha256.New, k.secret[:], salt[:], info, KeyLen)
	if err != nil {
		panic(err)
	}
	return b
}

// newAEAD returns the AEAD of cipherID under the session key for (k,
// session, sender). It allocates: callers cache the result.
func newAEAD(k *key, session uint64, cipherID byte, sender string) cipher.AEAD {
	sk := sessionKey(k, session, cipherID, sender)
	defer clear(sk)
	switch cipherID {
	case CipherAESGCM:
		blk, err := aes.NewCipher(sk)
		if err != nil {
			panic(err)
		}
		a, err := cipher.NewGCM(blk)
		if err != nil {
			panic(err)
		}
		return a
	case CipherChaCha20Poly1305:
		a, err := chacha20poly1305.New(sk)
		if err != nil {
			panic(err)
		}
		return a
	}
	panic(fmt.Sprintf("encap: unknown cipher %d", cipherID))
}

// AddKey adds a cluster secret to the keys this node accepts and returns its
// id. The primary (the key Seal uses) does not change. It fails when the
// secret is malformed, already held, its id is that of another held key (a
// 1 in 256 chance: generate another), or MaxKeys are held.
func (s *Sealed) AddKey(secret []byte) (byte, error) {
	k, err := newKey(secret)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	r := st.ring
	if o := r.find(k.id); o != nil {
		if o.secret == k.secret {
			return 0, fmt.Errorf("key %d is already held", k.id)
		}
		return 0, fmt.Errorf("key id %d is already another key's: generate a new key", k.id)
	}
	if len(r.keys) >= MaxKeys {
		return 0, fmt.Errorf("%d keys held already: remove one first", MaxKeys)
	}
	nr := &keyring{keys: append(r.keys[:len(r.keys):len(r.keys)], k), primary: r.primary}
	s.state.Store(&sealedState{ring: nr, tx: st.tx})
	return k.id, nil
}

// SetPrimary makes the held key id the one Seal uses from now on. Peers must
// hold the key before any node switches to it.
func (s *Sealed) SetPrimary(id byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	k := st.ring.find(id)
	if k == nil {
		return fmt.Errorf("key %d is not held", id)
	}
	if k == st.ring.primary {
		return nil
	}
	nr := &keyring{keys: st.ring.keys, primary: k}
	s.state.Store(&sealedState{ring: nr, tx: s.newTx(st.tx.sess, k)})
	return nil
}

// RemoveKey stops accepting key id. The primary cannot be removed: switch
// to another key first.
func (s *Sealed) RemoveKey(id byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state.Load()
	k := st.ring.find(id)
	switch {
	case k == nil:
		return fmt.Errorf("key %d is not held", id)
	case k == st.ring.primary:
		return fmt.Errorf("key %d is the primary: use another key first", id)
	}
	nr := &keyring{primary: st.ring.primary}
	for _, o := range st.ring.keys {
		if o != k {
			nr.keys = append(nr.keys, o)
		}
	}
	s.state.Store(&sealedState{ring: nr, tx: st.tx})
	return nil
}

// KeyIDs returns the ids of the held keys, in the order they were added, and
// the primary's.
func (s *Sealed) KeyIDs() (ids []byte, primary byte) {
	r := s.state.Load().ring
	for _, k := range r.keys {
		ids = append(ids, k.id)
	}
	return ids, r.primary.id
}
