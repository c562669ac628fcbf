package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProfiles(t *testing.T) {
	h := Profiles()
	for _, tc := range []struct {
		method, path string
		code         int
		contains     string // in the body; "" for any non-empty body
	}{
		{"GET", "/debug/pprof/", 200, "goroutine: "},
		{"GET", "/debug/pprof/", 200, "profile: CPU profile"},
		{"GET", "/debug/pprof/heap", 200, ""},
		{"GET", "/debug/pprof/heap?debug=1", 200, "heap profile:"},
		{"GET", "/debug/pprof/goroutine?debug=1", 200, "goroutine profile:"},
		{"GET", "/debug/pprof/nope", 404, `"error":"no profile \"nope\""`},
		{"POST", "/debug/pprof/heap", 405, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		body := rec.Body.String()
		if rec.Code != tc.code {
			t.Errorf("%s %s: code %d, want %d (body %.100q)", tc.method, tc.path, rec.Code, tc.code, body)
			continue
		}
		if tc.code != 200 {
			if tc.contains != "" && !strings.Contains(body, tc.contains) {
				t.Errorf("%s %s: body %q, want it to contain %q", tc.method, tc.path, body, tc.contains)
			}
			continue
		}
		if len(body) == 0 || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: body %.200q, want it non-empty and to contain %q", tc.method, tc.path, body, tc.contains)
		}
	}
}

// TestProfilesOverSocket mounts Profiles as the agent does and reads the
// heap profile through the control socket.
func TestProfilesOverSocket(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer()
	ts.srv.Handle("/debug/pprof/", Profiles())
	ts.serve(t, dir)
	c := NewClient(dir)
	body, err := c.Stream(t.Context(), "/debug/pprof/heap")
	if err != nil {
		t.Fatalf("heap profile: %v", err)
	}
	var b bytes.Buffer
	b.ReadFrom(body)
	body.Close()
	// runtime/pprof writes a gzipped protobuf.
	if b.Len() < 2 || b.Bytes()[0] != 0x1f || b.Bytes()[1] != 0x8b {
		t.Errorf("heap profile: %d bytes starting %.4x, want a gzip stream", b.Len(), b.Bytes())
	}
	if _, err := c.Stream(t.Context(), "/debug/pprof/nope"); err == nil || err.Error() != `no profile "nope"` {
		t.Errorf("unknown profile over the socket: error %v, want no profile \"nope\"", err)
	}
}

// TestNoDefaultServeMux: importing api must not register pprof (or
// anything) on http.DefaultServeMux, which any other server in the process
// might serve.
func TestNoDefaultServeMux(t *testing.T) {
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		_, pattern := http.DefaultServeMux.Handler(httptest.NewRequest("GET", path, nil))
		if pattern != "" {
			t.Errorf("http.DefaultServeMux routes %s to %q, want nothing registered", path, pattern)
		}
	}
}

func TestProfileSeconds(t *testing.T) {
	for q, want := range map[string]time.Duration{
		"":                     7 * time.Second, // the default
		"?seconds=0":           7 * time.Second,
		"?seconds=-3":          7 * time.Second,
		"?seconds=x":           7 * time.Second,
		"?seconds=1":           time.Second,
		"?seconds=45":          45 * time.Second,
		"?seconds=1e9":         7 * time.Second,
		"?seconds=301":         300 * time.Second, // bounded to 5 min
		"?seconds=99999999999": 300 * time.Second,
	} {
		if got := seconds(httptest.NewRequest("GET", "/debug/pprof/profile"+q, nil), 7); got != want {
			t.Errorf("seconds(%q) = %v, want %v", q, got, want)
		}
	}
}
