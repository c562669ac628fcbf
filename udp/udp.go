// Package udp is weft's underlay socket: one UDP socket read and written in
// batches (recvmmsg/sendmmsg through golang.org/x/net's ipv4/ipv6 batch API),
// with UDP GSO on send and UDP GRO on receive where the kernel has them.
//
// Flow: Listen opens the socket and preallocates everything the hot path
// needs, separately for the read side (read.go) and the write side (write.go),
// so one reader goroutine and one writer goroutine can run at the same time
// without sharing scratch state.
package udp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Offloads reports which socket offloads are active and why one is off.
type Offloads struct {
	GSO    bool   `json:"gso"`
	GRO    bool   `json:"gro"`
	Reason string `json:"reason,omitempty"`
}

// Config describes the socket.
type Config struct {
	// Listen is the local address and port, e.g. 0.0.0.0:6081. An IPv4
	// address (including 0.0.0.0) opens an IPv4 socket; an IPv6 address
	// (including ::) opens an IPv6-only socket. Port 0 picks a free port.
	Listen netip.AddrPort
	// BatchSize is the most datagrams one Read or Write handles (default 128,
	// at most 1024, the kernel's sendmmsg/recvmmsg vector limit).
	BatchSize int
	// DisableGSO and DisableGRO turn the offloads off (for benchmarks and
	// kernels where they misbehave).
	DisableGSO, DisableGRO bool
}

// DefaultConfig listens on all IPv4 addresses on the GENEVE port.
func DefaultConfig() Config {
	return Config{Listen: netip.AddrPortFrom(netip.IPv4Unspecified(), 6081), BatchSize: DefaultBatchSize}
}

const (
	// DefaultBatchSize is BatchSize when Config leaves it zero.
	DefaultBatchSize = 128
	maxBatchSize     = 1024 // UIO_MAXIOV: the kernel clamps vlen to it

	// socketBuffer is the SO_RCVBUF/SO_SNDBUF we ask for: a few milliseconds
	// of multi-gigabit traffic, so a busy reader does not drop bursts.
	socketBuffer = 7 << 20
)

// ErrAddrInUse is returned (wrapped) by Listen when the address is taken.
var ErrAddrInUse = errors.New("address already in use")

// Stats are cumulative counters; compare two snapshots to measure batching.
type Stats struct {
	ReadCalls      uint64 `json:"read_calls"`      // recvmmsg calls that returned messages
	ReadMessages   uint64 `json:"read_messages"`   // messages received; a GRO message holds several datagrams
	ReadDatagrams  uint64 `json:"read_datagrams"`  // datagrams handed to callers of Read
	Oversize       uint64 `json:"oversize"`        // received messages dropped because the kernel truncated them (a guard: 64 KiB slots hold any datagram)
	WriteCalls     uint64 `json:"write_calls"`     // sendmmsg calls
	WriteMessages  uint64 `json:"write_messages"`  // messages sent; a GSO message holds several datagrams
	WriteDatagrams uint64 `json:"write_datagrams"` // datagrams sent
	WriteErrors    uint64 `json:"write_errors"`    // datagrams not sent because of an error
}

// batchConn is what ipv4.PacketConn and ipv6.PacketConn have in common; their
// Message types are both aliases of the same internal type.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

var (
	_ batchConn = (*ipv4.PacketConn)(nil)
	_ batchConn = (*ipv6.PacketConn)(nil)
)

// Conn is a batched UDP socket. Read and Write may run concurrently with each
// other, but neither with itself. The other methods are safe at any time.
type Conn struct {
	uc    *net.UDPConn
	bc    batchConn
	local netip.AddrPort
	v6    bool // IPv6 socket: destinations must be IPv6
	batch int

	closed atomic.Bool
	gso    atomic.Bool // read on every Write, cleared once if the kernel rejects GSO

	mu       sync.Mutex // guards offloads
	offloads Offloads

	rd reader // owned by the goroutine calling Read
	wr writer // owned by the goroutine calling Write

	stats struct {
		readCalls, readMessages, readDatagrams, oversize       atomic.Uint64
		writeCalls, writeMessages, writeDatagrams, writeErrors atomic.Uint64
	}
}

// Listen opens the socket described by cfg, sizes its buffers, enables GRO and
// probes GSO (unless disabled), and preallocates the batch state.
func Listen(cfg Config) (*Conn, error) {
	return listenConn(cfg, false)
}

// listenConn is Listen, with SO_REUSEPORT set before the bind when reusePort
// (ListenGroup).
func listenConn(cfg Config, reusePort bool) (*Conn, error) {
	if !cfg.Listen.IsValid() {
		return nil, fmt.Errorf("udp: invalid listen address %v", cfg.Listen)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 0 || cfg.BatchSize > maxBatchSize {
		return nil, fmt.Errorf("udp: batch size %d out of range 1..%d", cfg.BatchSize, maxBatchSize)
	}
	addr := netip.AddrPortFrom(cfg.Listen.Addr().Unmap(), cfg.Listen.Port())
	network := "udp4"
	if addr.Addr().Is6() {
		network = "udp6"
	}
	var lc net.ListenConfig
	if reusePort {
		lc.Control = setReusePort
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("udp: listen %v: %w", addr, ErrAddrInUse)
		}
		return nil, fmt.Errorf("udp: listen %v: %w", addr, err)
	}
	uc := pc.(*net.UDPConn)
	c := &Conn{uc: uc, v6: network == "udp6", batch: cfg.BatchSize}
	if c.v6 {
		c.bc = ipv6.NewPacketConn(uc)
	} else {
		c.bc = ipv4.NewPacketConn(uc)
	}
	c.local = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	c.local = netip.AddrPortFrom(c.local.Addr().Unmap(), c.local.Port())
	if err := c.setup(cfg); err != nil {
		uc.Close()
		return nil, fmt.Errorf("udp: listen %v: %w", addr, err)
	}
	c.rd.init(cfg.BatchSize)
	c.wr.init(cfg.BatchSize)
	return c, nil
}

// setup sets the socket options. Failing to get large buffers or an offload is
// not fatal: the socket works, only slower, and Offloads says why.
func (c *Conn) setup(cfg Config) error {
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return err
	}
	var reasons []string
	cerr := rc.Control(func(fd uintptr) {
		s := int(fd)
		// The FORCE variants ignore net.core.[rw]mem_max but need CAP_NET_ADMIN.
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
		}
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer) != nil {
			_ = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, socketBuffer)
		}
		switch {
		case cfg.DisableGRO:
			reasons = append(reasons, "gro: disabled by config")
		default:
			if err := unix.SetsockoptInt(s, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
				reasons = append(reasons, "gro: "+err.Error())
			} else {
				c.offloads.GRO = true
			}
		}
		switch {
		case cfg.DisableGSO:
			reasons = append(reasons, "gso: disabled by config")
		default:
			// Reading UDP_SEGMENT succeeds exactly when the kernel knows it (4.18+).
			if _, err := unix.GetsockoptInt(s, unix.SOL_UDP, unix.UDP_SEGMENT); err != nil {
				reasons = append(reasons, "gso: "+err.Error())
			} else {
				c.offloads.GSO = true
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	c.offloads.Reason = strings.Join(reasons, "; ")
	c.gso.Store(c.offloads.GSO)
	return nil
}

// disableGSO turns GSO off for good after the kernel rejected a GSO send.
func (c *Conn) disableGSO(err error) {
	c.gso.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offloads.GSO = false
	r := "gso: disabled after send error: " + err.Error()
	if c.offloads.Reason != "" {
		r = c.offloads.Reason + "; " + r
	}
	c.offloads.Reason = r
}

// Offloads reports the active offloads and why any is off.
func (c *Conn) Offloads() Offloads {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offloads
}

// LocalAddr is the bound address, with the port the kernel chose for port 0.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// BatchSize is the most datagrams one Read or Write handles per syscall round.
func (c *Conn) BatchSize() int { return c.batch }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	s := &c.stats
	return Stats{
		ReadCalls:      s.readCalls.Load(),
		ReadMessages:   s.readMessages.Load(),
		ReadDatagrams:  s.readDatagrams.Load(),
		Oversize:       s.oversize.Load(),
		WriteCalls:     s.writeCalls.Load(),
		WriteMessages:  s.writeMessages.Load(),
		WriteDatagrams: s.writeDatagrams.Load(),
		WriteErrors:    s.writeErrors.Load(),
	}
}

// Close closes the socket; a blocked Read or Write returns net.ErrClosed.
// Closing twice returns net.ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return net.ErrClosed
	}
	return c.uc.Close()
}

// LogValue keeps log lines flat: gso=true gro=true reason=….
func (o Offloads) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("gso", o.GSO), slog.Bool("gro", o.GRO), slog.String("reason", o.Reason))
}
