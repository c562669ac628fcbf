package membership

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

func gossipKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// With gossip keys, members of one key see each other; a node holding
// another key cannot join, and neither side learns of the other.
func TestGossipKeys(t *testing.T) {
	keyed := func(name string, key []byte, seeds ...string) Config {
		cfg := testConfig(name, t.TempDir(), seeds...)
		cfg.Keys = [][]byte{key}
		return cfg
	}
	seed := mustLaunch(t, keyed("seed", gossipKey(1)))
	member := mustLaunch(t, keyed("member", gossipKey(1), seed.seed()))
	testenv.WaitFor(t, 10*time.Second, "keyed members see each other", func() bool {
		_, a := seed.peer("member")
		_, b := member.peer("seed")
		return a && b
	})

	// Strangers with another key or none: TestJoinWrongKey.
}

func TestGossipKeyValidated(t *testing.T) {
	cfg := testConfig("n", t.TempDir())
	cfg.Keys = [][]byte{[]byte("short")}
	if _, err := New(cfg); err == nil {
		t.Fatal("a 5-byte gossip key was accepted")
	}
}

// Rotating the gossip key on running members, in the order the docs give
// (add everywhere, use everywhere, remove the old): members keep hearing each
// other at every step, and a node started with only the new key joins.
func TestGossipKeyRotation(t *testing.T) {
	old, next := gossipKey(1), gossipKey(3)
	keyed := func(name string, keys [][]byte, seeds ...string) Config {
		cfg := testConfig(name, t.TempDir(), seeds...)
		cfg.Keys = keys
		return cfg
	}
	a := mustLaunch(t, keyed("a", [][]byte{old}))
	b := mustLaunch(t, keyed("b", [][]byte{old}, a.seed()))
	both := func(what string) {
		t.Helper()
		testenv.WaitFor(t, 10*time.Second, what, func() bool {
			_, x := a.peer("b")
			_, y := b.peer("a")
			return x && y
		})
	}
	both("a and b see each other")
	for _, step := range []struct {
		name string
		do   func(*Membership) error
	}{
		{"add", func(m *Membership) error { return m.AddKey(next) }},
		{"use", func(m *Membership) error { return m.UseKey(next) }},
		{"remove", func(m *Membership) error { return m.RemoveKey(old) }},
	} {
		for _, tn := range []*testNode{a, b} {
			if err := step.do(tn.m); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		}
	}
	if err := a.m.RemoveKey(next); err == nil {
		t.Fatal("removed the key in use")
	}
	c := mustLaunch(t, keyed("c", [][]byte{next}, a.seed()))
	testenv.WaitFor(t, 10*time.Second, "a node with only the new key joins", func() bool {
		_, x := a.peer("c")
		_, y := c.peer("b")
		return x && y
	})
	both("a and b still see each other")

	plain := mustLaunch(t, testConfig("plain", t.TempDir()))
	if err := plain.m.AddKey(next); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("AddKey on a member gossiping in clear: %v", err)
	}
}
