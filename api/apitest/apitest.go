// Package apitest holds a fake of the agent's control socket for tests of
// the programs that ask it (weft env, weft-cni).
package apitest

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/api"
)

// Agent answers GET /v1/status on runDir's weft.sock like an agent holding
// subnet, until the test ends or stop is called.
func Agent(t testing.TB, runDir, subnet string) (stop func()) {
	t.Helper()
	sn, err := netip.ParsePrefix(subnet)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewServer()
	srv.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		api.WriteJSON(w, http.StatusOK, api.Status{Name: "fake", Subnet: sn})
	})
	stop, err = srv.Serve(t.Context(), runDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return stop
}
