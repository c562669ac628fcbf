package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// SocketFile is the control socket's name in the node's run dir.
const SocketFile = "weft.sock"

// Server routes the control socket's endpoints. The parts of an agent add
// their handlers with Handle, before Serve or while it serves (the node's,
// once it is up); Serve may be called once.
type Server struct {
	mux *http.ServeMux
}

// Mux takes endpoints: a Server, or what forwards them to one.
type Mux interface {
	HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request))
}

// NewServer returns a server with no endpoints.
func NewServer() *Server { return &Server{mux: http.NewServeMux()} }

// Handle adds an endpoint (an http.ServeMux pattern, e.g. "GET /v1/status").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleFunc adds an endpoint served by f.
func (s *Server) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	s.mux.HandleFunc(pattern, f)
}

// Serve listens on <runDir>/weft.sock (mode 0600: status shows the
// topology) and serves requests until close is called, which also removes
// the socket file. A socket that answers means another node uses this run
// dir, which is refused; a dead one is a crash's leftover and is replaced.
func (s *Server) Serve(ctx context.Context, runDir string) (close func(), err error) {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, fmt.Errorf("--run-dir: %w", err)
	}
	path := filepath.Join(runDir, SocketFile)
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("--run-dir %s: another weft is running there (%s answers)", runDir, path)
	}
	ln, err := listenPrivate(runDir, path)
	if err != nil {
		return nil, fmt.Errorf("--run-dir: control socket: %w", err)
	}
	ours, err := os.Stat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--run-dir: control socket: %w", err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		ln.Close() // Serve's goroutine may not have taken it yet
		// Remove the socket file only if it is still ours: a node started
		// after a quick restart may already have put its own there.
		if st, err := os.Stat(path); err == nil && os.SameFile(st, ours) {
			os.Remove(path)
		}
	}, nil
}

// listenPrivate listens on a Unix socket at path that is mode 0600 from the
// first moment: it is created in a private directory beside path and renamed
// into place, replacing a crash's leftover. The listener never unlinks path
// on close; Serve's close decides that.
func listenPrivate(dir, path string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(dir, ".weft-sock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(tmp, SocketFile), Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(filepath.Join(tmp, SocketFile), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(filepath.Join(tmp, SocketFile), path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// WriteJSON answers a request with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteError answers a request with an error message that Client.Call
// returns as its error.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, map[string]string{"error": err.Error()})
}
