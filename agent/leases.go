package agent

import (
	"errors"
	"net/http"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/membership"
)

// errNoGossip answers lease requests to a node without gossip.
var errNoGossip = errors.New("this node runs without gossip (--gossip-port 0): it has static subnets, not leases")

// handleLeases puts the lease table on the control socket; m is nil without
// gossip.
func handleLeases(s *api.Server, m *membership.Membership) {
	if m == nil {
		noGossip := func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, http.StatusConflict, errNoGossip)
		}
		s.HandleFunc("/v1/leases", noGossip)
		s.HandleFunc("/v1/leases/", noGossip)
		return
	}
	s.HandleFunc("GET /v1/leases", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, m.Leases())
	})
	s.HandleFunc("POST /v1/leases/{name}/release", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Release(r.PathValue("name")); err != nil {
			code := http.StatusConflict
			if errors.Is(err, membership.ErrNoLease) {
				code = http.StatusNotFound
			}
			api.WriteError(w, code, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]string{})
	})
}
