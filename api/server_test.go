package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testServer is a control socket with a few endpoints shaped like the
// node's: a status, a JSON POST, errors and a trace stream.
type testServer struct {
	srv *Server
	// streamDone is closed when a /v1/trace handler sees its client go away.
	streamDone chan struct{}
}

func newTestServer() *testServer {
	ts := &testServer{srv: NewServer(), streamDone: make(chan struct{})}
	ts.srv.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, Status{Name: "h1", Subnet: netip.MustParsePrefix("10.244.1.0/24"),
			Peers: []PeerStatus{{Name: "h2", Path: PathStatus{State: PathOK}}}})
	})
	ts.srv.HandleFunc("POST /v1/keys", func(w http.ResponseWriter, r *http.Request) {
		var req KeyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			WriteError(w, http.StatusBadRequest, fmt.Errorf("key request: %w", err))
			return
		}
		if req.Key == "in-use" {
			WriteError(w, http.StatusConflict, errors.New("key 7 is already held"))
			return
		}
		WriteJSON(w, http.StatusOK, KeyAnswer{ID: len(req.Key)})
	})
	ts.srv.HandleFunc("GET /v1/plain-error", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not json", http.StatusTeapot)
	})
	ts.srv.HandleFunc("GET /v1/trace", func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseTraceFilter(r.URL.Query())
		if err != nil {
			WriteError(w, http.StatusBadRequest, err)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, e := range []TraceEvent{
			{Dir: TraceOut, Peer: "h2", Verdict: VerdictSent, Size: 100},
			{Dir: TraceIn, Peer: "h3", Verdict: VerdictDropped, Reason: "replay", Size: 200},
			{Dir: TraceOut, Peer: "h2", Verdict: VerdictDropped, Reason: "no_route", Size: 300},
		} {
			if f.Match(&e) {
				enc.Encode(e)
			}
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done() // a stream lasts until the reader leaves
		close(ts.streamDone)
	})
	return ts
}

// serve starts ts on dir and closes it when the test ends.
func (ts *testServer) serve(t *testing.T, dir string) (closeFn func()) {
	t.Helper()
	closeFn, err := ts.srv.Serve(t.Context(), dir)
	if err != nil {
		t.Fatalf("Serve(%s): %v", dir, err)
	}
	t.Cleanup(closeFn)
	return closeFn
}

func TestClientRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer()
	ts.serve(t, dir)
	c := NewClient(dir)
	ctx := t.Context()

	s, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if s.Name != "h1" || s.Subnet.String() != "10.244.1.0/24" || len(s.Peers) != 1 || s.Peers[0].Path.State != PathOK {
		t.Errorf("Status = %+v, want node h1 with subnet 10.244.1.0/24 and one ok peer", s)
	}

	var ans KeyAnswer
	if err := c.Call(ctx, http.MethodPost, "/v1/keys", KeyRequest{Key: "abcde"}, &ans); err != nil {
		t.Fatalf("Call POST /v1/keys: %v", err)
	}
	if ans.ID != 5 {
		t.Errorf("KeyAnswer.ID = %d, want 5 (the handler must see the JSON body)", ans.ID)
	}
	// out == nil: the answer is not decoded, and a 2xx is no error.
	if err := c.Call(ctx, http.MethodPost, "/v1/keys", KeyRequest{Key: "x"}, nil); err != nil {
		t.Errorf("Call with nil out: %v", err)
	}

	errCases := []struct {
		method, path string
		in           any
		want         string // the whole error message, or a part of it
		exact        bool
	}{
		{http.MethodPost, "/v1/keys", KeyRequest{Key: "in-use"}, "key 7 is already held", true},
		{http.MethodPost, "/v1/keys", "not an object", "key request: ", false},
		{http.MethodGet, "/v1/plain-error", nil, "answered 418 I'm a teapot", false},
		{http.MethodGet, "/v1/nothing-here", nil, "answered 404 Not Found", false},
		{http.MethodDelete, "/v1/status", nil, "answered 405 Method Not Allowed", false},
	}
	for _, tc := range errCases {
		err := c.Call(ctx, tc.method, tc.path, tc.in, &ans)
		switch {
		case err == nil:
			t.Errorf("%s %s: no error, want %q", tc.method, tc.path, tc.want)
		case tc.exact && err.Error() != tc.want:
			t.Errorf("%s %s: error %q, want exactly the node's message %q", tc.method, tc.path, err, tc.want)
		case !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s %s: error %q, want it to contain %q", tc.method, tc.path, err, tc.want)
		}
	}
}

func TestClientStream(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer()
	ts.serve(t, dir)
	c := NewClient(dir)

	f := TraceFilter{DropsOnly: true}
	body, err := c.Stream(t.Context(), "/v1/trace?"+f.Query().Encode())
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	sc := bufio.NewScanner(body)
	var got []string
	for len(got) < 2 && sc.Scan() {
		var e TraceEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e.Peer+" "+e.Reason)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	if want := []string{"h3 replay", "h2 no_route"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("streamed events %q, want %q (the drops only, in order)", got, want)
	}
	// Closing the body ends the stream on the server's side.
	body.Close()
	<-ts.streamDone

	// An error answer to a stream is an error with the node's message.
	_, err = c.Stream(t.Context(), "/v1/trace?proto=sctp")
	if err == nil || !strings.HasPrefix(err.Error(), "proto \"sctp\"") {
		t.Errorf("Stream with a bad filter: error %v, want the node's message starting with proto \"sctp\"", err)
	}
}

func TestServeSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "weft") // Serve makes the run dir
	ts := newTestServer()
	closeFn := ts.serve(t, dir)
	path := filepath.Join(dir, SocketFile)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with mode 0600", fi.Mode())
	}

	// A second node on the same run dir is refused, and the first keeps its socket.
	if close2, err := NewServer().Serve(t.Context(), dir); err == nil {
		close2()
		t.Fatal("a second Serve on a run dir whose socket answers succeeded")
	} else if !strings.Contains(err.Error(), "another weft is running there") {
		t.Errorf("second Serve: error %q, want it to say another weft is running there", err)
	}
	if _, err := NewSocketClient(path).Status(t.Context()); err != nil {
		t.Errorf("the first node stopped answering after a refused second Serve: %v", err)
	}

	closeFn()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after close, stat of the socket: %v, want it gone", err)
	}
	_, err = NewClient(dir).Status(t.Context())
	if want := "no weft node is running with --run-dir " + dir; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Status after close: error %v, want it to contain %q", err, want)
	}
}

// TestServeReplacesStale: what a crash leaves at the socket's path is not a
// running node, and the next Serve takes the path over.
func TestServeReplacesStale(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(t *testing.T, path string)
	}{
		{"dead socket", func(t *testing.T, path string) {
			ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			ln.SetUnlinkOnClose(false) // as if the process died
			ln.Close()
		}},
		{"plain file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, SocketFile)
			tc.leave(t, path)
			if _, err := os.Lstat(path); err != nil {
				t.Fatalf("the stale file is not there: %v", err)
			}
			newTestServer().serve(t, dir)
			if _, err := NewClient(dir).Status(t.Context()); err != nil {
				t.Errorf("Status after replacing a %s: %v", tc.name, err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
				t.Errorf("after replacing a %s: stat %v, %v; want a socket with mode 0600", tc.name, fi, err)
			}
		})
	}
}

func TestClientNoNode(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []*Client{NewClient(dir), NewSocketClient(filepath.Join(dir, SocketFile))} {
		_, err := c.Status(context.Background())
		if want := "no weft node is running with --run-dir " + dir; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Status with no node: error %v, want it to contain %q", err, want)
		}
	}
	// A run dir that does not exist says the same.
	_, err := NewClient(filepath.Join(dir, "nope")).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no weft node is running") {
		t.Errorf("Status with a missing run dir: error %v, want no weft node is running", err)
	}
}

// TestServeRestart: a node that stops and another that starts on the same
// run dir right after (an in-process restart, or a retry after a failed
// start) must end with a socket that answers.
func TestServeRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketFile)
	for i := range 300 {
		close1, err := NewServer().Serve(t.Context(), dir)
		if err != nil {
			t.Fatalf("round %d: first Serve: %v", i, err)
		}
		close1()
		ts := newTestServer()
		close2, err := ts.srv.Serve(t.Context(), dir)
		if err != nil {
			t.Fatalf("round %d: Serve right after close: %v", i, err)
		}
		_, err = NewSocketClient(path).Status(t.Context())
		close2()
		if err != nil {
			t.Fatalf("round %d: the restarted node does not answer: %v", i, err)
		}
	}
}
