package api

import (
	"fmt"
	"io"
	"net/http"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"
)

// Profiles serves Go's profiler under /debug/pprof/ on a mux of its own:
// `curl --unix-socket <run-dir>/weft.sock http://weft/debug/pprof/profile?seconds=10 > cpu.pprof`,
// then `go tool pprof`. It uses runtime/pprof directly rather than
// net/http/pprof, whose import registers handlers on http.DefaultServeMux.
// A profile costs nothing until one is asked for.
func Profiles() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "profile: CPU profile, ?seconds=N (default 30)\ntrace: execution trace, ?seconds=N (default 1)")
		for _, p := range pprof.Profiles() {
			fmt.Fprintf(w, "%s: %d (?debug=1 for text)\n", p.Name(), p.Count())
		}
	})
	mux.HandleFunc("GET /debug/pprof/profile", timed(30, pprof.StartCPUProfile, pprof.StopCPUProfile))
	mux.HandleFunc("GET /debug/pprof/trace", timed(1, trace.Start, trace.Stop))
	mux.HandleFunc("GET /debug/pprof/{name}", func(w http.ResponseWriter, r *http.Request) {
		p := pprof.Lookup(r.PathValue("name"))
		if p == nil {
			WriteError(w, http.StatusNotFound, fmt.Errorf("no profile %q", r.PathValue("name")))
			return
		}
		debug, _ := strconv.Atoi(r.URL.Query().Get("debug"))
		if debug > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		p.WriteTo(w, debug)
	})
	return mux
}

// timed serves a recording that runs for ?seconds=N (default def): start
// writes it to the answer, stop ends it.
func timed(def int, start func(io.Writer) error, stop func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := seconds(r, def)
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := start(w); err != nil {
			WriteError(w, http.StatusConflict, fmt.Errorf("%s: %w", r.URL.Path, err))
			return
		}
		sleep(r, d)
		stop()
	}
}

// seconds is the request's ?seconds=N, bounded to 1 s–5 min.
func seconds(r *http.Request, def int) time.Duration {
	n, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || n <= 0 {
		n = def
	}
	return time.Duration(min(n, 300)) * time.Second
}

// sleep waits d or until the client goes away.
func sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}
