package agent

import (
	"net/http"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/node"
)

// handleJoining answers GET /v1/status while the node joins its cluster:
// its name and network, state "joining" and how joining goes; no subnet yet.
// The pattern has no method, so the node's "GET /v1/status", registered
// once it is up, takes precedence over it (net/http's ServeMux picks the
// more specific pattern) and this one is left answering other methods.
func handleJoining(s *api.Server, cfg *Config, under node.Underlay, m *membership.Membership) {
	nc := cfg.Node // a copy: Run sets the subnet meanwhile
	s.HandleFunc("/v1/status", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		st := joiningStatus(&nc, under, m.JoinStatus())
		if st.Join.Synced {
			st.Join.LeaseTTL = m.LeaseTTL().String()
		}
		api.WriteJSON(w, http.StatusOK, st)
	})
}

// joiningStatus is the status of a node that is joining its cluster.
func joiningStatus(nc *node.Config, under node.Underlay, js membership.JoinStatus) api.Status {
	return api.Status{
		Name: nc.Name, State: api.StateJoining, Network: nc.Network,
		Listen: nc.Listen, Underlay: api.Underlay(under),
		Join: &api.JoinStatus{Seeds: js.Seeds, Known: js.Known, Synced: js.Joined,
			LastError: js.LastError, Attempts: js.Attempts, Since: js.Since},
		Peers: []api.PeerStatus{}, Drops: map[string]uint64{},
	}
}
