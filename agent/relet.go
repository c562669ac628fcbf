package agent

// Leasing another subnet in process. A node's leased subnet can be taken
// after it started (membership.ErrSubnetLost): the halves of a healed
// partition both leased it, or gossip on a starved host was slower than the
// settle window. A node that has handed out no address from it yet leases
// another one without exiting, as it would have during its start; one that
// has (a CNI or Docker bridge holds a gateway address from it) stops as
// before, since its containers keep addresses that now route to another node.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/node"
)

// reletSubnet leases another subnet after the node n, now stopped, lost its
// own (lost is Run's error), and binds the data sockets for the node that
// will run on it. It returns lost, with why, when the node must stop, and
// nothing when ctx ends meanwhile.
func reletSubnet(ctx context.Context, cfg *Config, under node.Underlay, m *membership.Membership, n *node.Node, lost error) ([]node.Transport, error) {
	old := []netip.Prefix{cfg.Node.Subnet, cfg.Node.Subnet6}
	held, err := node.ServedFrom(old, cfg.Node.TunName)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w; not leasing another subnet: %w", lost, err)
	case held != "":
		return nil, fmt.Errorf("%w; not leasing another subnet, since addresses were handed out from it (%s): restart weft after moving the containers", lost, held)
	}
	cfg.Log.Warn("our subnet was taken by a claim that ranks first; nothing was handed out from it, so leasing another", "err", lost)
	subnet, err := m.Reclaim(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, errors.Join(lost, err)
	}
	cfg.Node.Subnet, cfg.Node.Subnet6 = subnet, netip.Prefix{}
	cfg.Node.Keys = n.HeldKeys() // keep key changes made at runtime
	return node.Listen(cfg.Node, under.Addr, cfg.Log)
}

// nodeRoutes puts each node's control endpoints on the control server once
// and sends their requests to the handler the latest node gave: the node
// built after a lost subnet replaces the one before, and a ServeMux takes
// each pattern only once.
type nodeRoutes struct {
	srv *api.Server
	mu  sync.RWMutex
	h   map[string]http.HandlerFunc
}

func (r *nodeRoutes) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.h[pattern]; !ok {
		r.srv.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
			r.mu.RLock()
			h := r.h[pattern]
			r.mu.RUnlock()
			h(w, req)
		})
	}
	r.h[pattern] = f
}
