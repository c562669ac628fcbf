// Package api is weft's control API: the wire types the node's control socket
// (<run-dir>/weft.sock, HTTP over a Unix socket, root only) speaks, the server
// that routes its endpoints, and the client that `weft`, weft-cni and the lab
// use. It depends on nothing that needs root — no TUN, no netlink, no
// Prometheus — so every client can import it cheaply.
//
// Endpoints (all JSON; an error answers {"error": "…"} with a 4xx/5xx code):
//
//	GET    /v1/status              Status (the contract of `weft status --json`)
//	GET    /v1/trace?FILTER        a stream of TraceEvent, one JSON object a line
//	POST   /v1/keys                KeyRequest → KeyAnswer: accept a new cluster key
//	POST   /v1/keys/{id}/use       KeyAnswer: send with key id
//	DELETE /v1/keys/{id}           KeyAnswer: stop accepting key id
//	GET    /v1/leases              []Lease: the cluster's subnet leases
//	POST   /v1/leases/{name}/release  free a gone node's lease
//	GET    /debug/pprof/…          Go's profiles (Profiles)
package api
