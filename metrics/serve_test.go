package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reg := NewRegistry("1.2.3", testStatus, nil)
	if err := Serve(ctx, "127.0.0.1:0", reg, log); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// Serve logs where it listens before it returns.
	m := regexp.MustCompile(`url=(http://127\.0\.0\.1:[1-9][0-9]*/metrics)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no serving metrics url in the log: %q", logs.String())
	}
	url := m[1]

	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	for _, want := range []string{
		`weft_build_info{version="1.2.3"} 1`,
		`weft_peer_sent_packets_total{peer="h2"} 13`,
		`weft_peers{state="static"} 1`,
		"# TYPE weft_dropped_packets_total counter",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Only GET /metrics is served.
	for _, tc := range []struct{ method, path string }{{"POST", "/metrics"}, {"GET", "/"}, {"GET", "/debug/pprof/"}} {
		req, _ := http.NewRequest(tc.method, strings.TrimSuffix(url, "/metrics")+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			t.Errorf("%s %s: %s, want an error", tc.method, tc.path, resp.Status)
		}
	}

	// Ending ctx stops the server: wait until the port refuses.
	cancel()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/metrics")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break // refused, or reset while in the closed listener's backlog
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 10s after ctx ended", addr)
		}
		runtime.Gosched()
	}
	if strings.Contains(logs.String(), "metrics server stopped") {
		t.Errorf("an orderly stop logged an error: %q", logs.String())
	}
}

func TestServeBadAddr(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := NewRegistry("dev", testStatus, nil)
	for _, tc := range []struct {
		addr string
		is   error
	}{
		{taken.Addr().String(), syscall.EADDRINUSE},
		{"9586", nil},
		{"127.0.0.1:http-nope", nil},
	} {
		err := Serve(t.Context(), tc.addr, reg, log)
		if err == nil || !strings.HasPrefix(err.Error(), "--metrics-addr: ") {
			t.Errorf("Serve(%q): error %v, want one starting with --metrics-addr", tc.addr, err)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("Serve(%q): error %v, want it to wrap %v", tc.addr, err, tc.is)
		}
	}
}

// TestDocListsMetrics: docs/metrics.md lists every weft_ metric exported,
// and lists no metric that is not, so the page cannot drift from the code.
func TestDocListsMetrics(t *testing.T) {
	doc, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	// Everything is exported: gossip on, a peer with an answered probe.
	reg := NewRegistry("dev", testStatus, testGossip())
	got, _ := gather(t, reg)
	if _, ok := got["weft_peer_path_rtt_seconds"]; !ok {
		t.Fatal("weft_peer_path_rtt_seconds not gathered: this test would miss it")
	}
	var names []string
	for name := range got {
		names = append(names, name)
		if !bytes.Contains(doc, []byte("`"+name+"`")) {
			t.Errorf("%s is exported but docs/metrics.md does not list it (as `%s`)", name, name)
		}
	}
	for _, m := range regexp.MustCompile("`(weft_[a-z0-9_]+)`").FindAllSubmatch(doc, -1) {
		if name := string(m[1]); !slices.Contains(names, name) {
			t.Errorf("docs/metrics.md lists %s, which is not exported", name)
		}
	}
}
