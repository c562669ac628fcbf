// Package udp is weft's underlay socket: one UDP socket read and written in
// batches (recvmmsg/sendmmsg through golang.org/x/net's ipv4/ipv6 batch API),
// with UDP GSO on send and UDP GRO on receive where the kernel has them.
package udp

import (
	"net/netip"
)

// Offloads reports which socket offloads are active and why one is off.
type Offloads struct {
	GSO    bool   `json:"gso"`
	GRO    bool   `json:"gro"`
	Reason string `json:"reason,omitempty"`
}

// Config describes the socket.
type Config struct {
	// Listen is the local address and port, e.g. 0.0.0.0:6081.
	Listen netip.AddrPort
	// BatchSize is the most datagrams one Read or Write handles (default 128).
	BatchSize int
	// DisableGSO and DisableGRO turn the offloads off (for benchmarks and
	// kernels where they misbehave).
	DisableGSO, DisableGRO bool
}
