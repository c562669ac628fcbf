package node

import "net/http/pprof"

// handleDebug serves Go's profiler on the control socket under /debug/pprof/
// (root only, like the socket): `curl --unix-socket <run-dir>/weft.sock
// http://weft/debug/pprof/profile?seconds=10 > cpu.pprof`, then `go tool pprof`.
// A profile costs nothing until one is asked for; docs/performance.md says
// what the profiles of a loaded node show.
func (n *Node) handleDebug() {
	n.mux.HandleFunc("/debug/pprof/", pprof.Index) // heap, allocs, goroutine, block, mutex, …
	n.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	n.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	n.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	n.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
