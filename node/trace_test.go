package node

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/peer"
)

// weft trace --peer with a name the node does not know is refused at once
// (a typo would otherwise wait for packets that never come); a known peer,
// dead ones included, is traced.
func TestTraceUnknownPeer(t *testing.T) {
	dead := testPeer("c", "10.244.3.0/24", "192.0.2.3:6081")
	dead.State = peer.Dead
	tb, errs := buildTable([]peer.Info{testPeer("b", "10.244.2.0/24", "192.0.2.2:6081"), dead}, testNet, ownNet, plain, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	n := &Node{}
	n.table.Store(tb)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // a stream would wait for packets
	defer cancel()
	w := httptest.NewRecorder()
	n.serveTrace(w, httptest.NewRequest(http.MethodGet, "/v1/trace?peer=nosuch", nil).WithContext(ctx))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "no peer named nosuch") {
		t.Fatalf("--peer nosuch: %d %s", w.Code, w.Body)
	}
	for _, name := range []string{"b", "c", ""} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the reader is gone at once: serveTrace returns after the header
		w := httptest.NewRecorder()
		n.serveTrace(w, httptest.NewRequest(http.MethodGet, "/v1/trace?peer="+name, nil).WithContext(ctx))
		if w.Code != http.StatusOK {
			t.Errorf("--peer %q: %d %s", name, w.Code, w.Body)
		}
	}
}
