package membership

import (
	"errors"
	"fmt"
)

// Gossip key rotation on a running member. memberlist's keyring decrypts
// with every key it holds and encrypts with its primary, so a cluster
// rotates by adding the new key everywhere, then using it everywhere, then
// removing the old one: no member ever sends what another cannot read.

// ErrNoKeyring is returned by the key methods of a member gossiping in clear.
var ErrNoKeyring = errors.New("gossip is not encrypted (no keys were given at start)")

// AddKey makes the member accept gossip under key too.
func (m *Membership) AddKey(key []byte) error {
	return m.changeKey("add", key, func() error { return m.keyring.AddKey(key) })
}

// UseKey makes key, which must be held, the one gossip is sent under.
func (m *Membership) UseKey(key []byte) error {
	return m.changeKey("use", key, func() error { return m.keyring.UseKey(key) })
}

// RemoveKey stops accepting gossip under key; the one in use cannot be removed.
func (m *Membership) RemoveKey(key []byte) error {
	return m.changeKey("remove", key, func() error { return m.keyring.RemoveKey(key) })
}

func (m *Membership) changeKey(verb string, key []byte, change func() error) error {
	if m.keyring == nil {
		return ErrNoKeyring
	}
	if err := change(); err != nil {
		return fmt.Errorf("gossip keyring: %s key: %w", verb, err)
	}
	return nil
}
