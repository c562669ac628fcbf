package node

// Session rotation on time: every RekeyAfter the sealed codec starts a new
// sending session, so no key seals for long (the codec rotates on volume by
// itself). Peers keep the previous session, so nothing in flight is lost
// (encap/peer.go); docs/security.md states the rule and its limits.

import (
	"context"
	"time"

	"github.com/weftnet/weft/encap"
)

// DefaultRekeyAfter is --rekey-after's default.
const DefaultRekeyAfter = 2 * time.Minute

// rekeyer is the part of the sealed codec the timer needs.
type rekeyer interface{ Rekey() uint64 }

var _ rekeyer = (*encap.Sealed)(nil)

// rekey rotates the sending session every RekeyAfter until ctx ends; with
// --insecure there is nothing to rotate.
func (n *Node) rekey(ctx context.Context) {
	r, ok := n.codec.(rekeyer)
	if !ok {
		return
	}
	tick := time.NewTicker(n.cfg.RekeyAfter)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			id := r.Rekey()
			n.log.Debug("sending session rotated", "session", id)
		}
	}
}
