package e2e

// Sessions rotate under load: a 10 s TCP transfer across several rotations
// (--rekey-after 2s) arrives whole, and no packet is refused for its session.
// (With one queue a veth delivers in order, so packets of the previous
// session rarely arrive after the next one's; encap's tests of the session
// ring, and several queues, exercise that; netem, which could reorder, is
// not in every kernel the tests run on.)

import (
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

func TestRekeyUnderLoad(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool")
	l := newLab(t, "rk", 2)
	nodes := startWeft(t, l, "", "--rekey-after", "2s")
	a, b := nodes[0], nodes[1]
	ping(t, a, b, 1) // both sessions known before the clock starts
	before := [2]uint64{status(t, a).Encryption.Rotations, status(t, b).Encryption.Rotations}
	sent := tcpTransferFor(t, a, b, 10*time.Second)
	t.Logf("%d MB across the rotations", sent>>20)
	for i, w := range nodes {
		s := status(t, w)
		if r := s.Encryption.Rotations - before[i]; r < 2 {
			t.Errorf("%s: %d rotations in 10 s at --rekey-after 2s, want at least 2", w.Name, r)
		}
		if s.Encryption.RekeyAfterSeconds != 2 {
			t.Errorf("%s: status says rekey every %vs", w.Name, s.Encryption.RekeyAfterSeconds)
		}
		for _, reason := range []string{"old_session", "replay", "auth_failed", "session_limit", "unknown_key"} {
			if d := s.Drops[reason]; d != 0 {
				t.Errorf("%s: %d %s drops across the rotations", w.Name, d, reason)
			}
		}
	}
}
