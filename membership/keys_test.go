package membership

import (
	"bytes"
	"testing"
	"time"
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
	waitFor(t, 10*time.Second, "keyed members see each other", func() bool {
		_, a := seed.peer("member")
		_, b := member.peer("seed")
		return a && b
	})

	// A stranger with another key: its join never succeeds, so Start keeps
	// retrying in the background; give it a few rounds, then look.
	strangerCfg := keyed("stranger", gossipKey(2), seed.seed())
	stranger := mustLaunch(t, strangerCfg)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := seed.member("stranger"); ok {
			t.Fatal("the seed learned of a node with another key")
		}
		if _, ok := stranger.member("seed"); ok {
			t.Fatal("a node with another key learned of the seed")
		}
		time.Sleep(100 * time.Millisecond) // observing that nothing happens: no condition to wait for
	}
	if len(stranger.peerSet()) != 0 {
		t.Fatalf("the stranger routes to %v", stranger.peerSet())
	}

	// A plaintext node cannot join either.
	plain := mustLaunch(t, testConfig("plain", t.TempDir(), seed.seed()))
	time.Sleep(time.Second) // as above: give it time to fail
	if _, ok := seed.member("plain"); ok {
		t.Fatal("the seed accepted a node gossiping in clear")
	}
	_ = plain
}

func TestGossipKeyValidated(t *testing.T) {
	cfg := testConfig("n", t.TempDir())
	cfg.Keys = [][]byte{[]byte("short")}
	if _, err := New(cfg); err == nil {
		t.Fatal("a 5-byte gossip key was accepted")
	}
}
