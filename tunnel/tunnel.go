// Package tunnel opens and configures the TUN device that carries a node's
// overlay traffic between the kernel and weft. Two drivers sit behind the one
// Device interface: "wireguard" (golang.zx2c4.com/wireguard/tun, with the
// virtio-net header, TSO on read and GRO on write, batched) and "water"
// (github.com/songgao/water, one packet per call, the portable fallback).
package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
)

// Driver names accepted by Config.Driver and weft's --tun-driver flag.
const (
	DriverWireguard = "wireguard"
	DriverWater     = "water"
)

// Drivers lists the valid Config.Driver values, default first.
var Drivers = []string{DriverWireguard, DriverWater}

// WriteOffset is the least headroom Device.Write needs in front of each
// packet: the wireguard driver writes a virtio-net header there.
const WriteOffset = 10

// ErrClosed is returned by Read and Write once the device is closed, or once
// its link was deleted from outside (the kernel then answers EBADFD).
var ErrClosed = errors.New("tunnel closed")

// ErrExists is wrapped by Open's error when a link with the requested name
// already exists: another weft, or any other interface.
var ErrExists = errors.New("tun device already exists")

// ErrRouteExists means a route for one of Config.Routes is already in the
// main table: another weft on this host, or a network that clashes.
var ErrRouteExists = errors.New("route already exists")

// Limits Validate enforces.
const (
	MaxNameLen = 15    // IFNAMSIZ less the NUL
	MinMTU     = 576   // least IPv4 datagram every host must accept
	MinMTU6    = 1280  // IPv6 minimum link MTU; the kernel disables IPv6 below it
	MaxMTU     = 65535 // largest IP packet, and the TUN driver's max_mtu
	MaxQueues  = 256   // the kernel's MAX_TAP_QUEUES
)

// Device is a TUN device, or one queue of a multi-queue device. Packets are
// bare IPv4/IPv6 packets.
//
// Read and Write may be called concurrently with each other (one reader
// goroutine, one writer goroutine), but neither is safe for concurrent use
// with itself. The queues of one device are independent of each other.
type Device interface {
	// Read blocks until at least one packet is available and reads up to
	// len(bufs) packets. Packet i is placed at bufs[i][offset:offset+sizes[i]].
	// Every buffer must hold offset+MTU bytes at least; with TSO one read may
	// return up to BatchSize packets split from one superpacket.
	// len(bufs) must be BatchSize() and len(sizes) >= len(bufs). Like
	// io.Reader, it may return n > 0 packets together with an error about
	// a later read: handle the packets first. It returns ErrClosed after
	// Close. Any other error concerns one read (a malformed superpacket, a
	// short buffer): count it and read again.
	// The packets are the caller's; the device keeps no reference to bufs.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)

	// Write writes each bufs[i][offset:] as one packet. offset must be at
	// least WriteOffset; the bytes in front of offset are scratch space. With
	// GRO the driver may coalesce packets into the spare capacity of bufs, so
	// buffers must not overlap and should have capacity offset+65535; the
	// contents of bufs are undefined after Write (headers rewritten). It
	// returns ErrClosed after Close; other errors are per-packet failures
	// (joined) and the batch has still been attempted in full, except that
	// offset < WriteOffset fails the whole batch. An empty packet is skipped
	// with a per-packet error. The device keeps no reference to bufs.
	Write(bufs [][]byte, offset int) error

	// BatchSize is the most packets one Read returns. It never changes.
	// BatchSize, Name, MTU and Offloads are safe for concurrent use, even
	// after Close, and make no syscalls.
	BatchSize() int

	// Name is the interface name in the kernel.
	Name() string

	// MTU is the MTU the device was configured with.
	MTU() int

	// Offloads says which offloads are active and why one is off.
	Offloads() Offloads

	// Close removes the device (and with it its addresses and routes);
	// of a multi-queue device, it detaches the queue, and the device goes
	// with the last one. It unblocks a pending Read and may be called from any goroutine,
	// concurrently with Read and Write. Calls after the first return nil.
	Close() error
}

// Offloads reports the TUN offloads in use. Reason is empty when both are on.
type Offloads struct {
	TSO    bool   `json:"tso"` // kernel hands us TCP superpackets (split in userspace)
	GRO    bool   `json:"gro"` // we hand the kernel coalesced TCP/UDP packets
	Reason string `json:"reason,omitempty"`
}

// Config describes the device to create.
type Config struct {
	// Name of the interface, e.g. "weft0". Creating fails if it exists.
	Name string
	// Driver is one of Drivers; empty means DriverWireguard.
	Driver string
	// MTU of the interface in bytes (inner packet size).
	MTU int
	// Address is the node's overlay address with its prefix length, assigned
	// to the interface (weft uses the subnet's network address as a /32).
	Address netip.Prefix
	// Address6 is a dual-stack node's IPv6 overlay address (a /128), added
	// beside Address; zero on a single-stack node.
	Address6 netip.Prefix
	// Routes are installed through the interface once it is up (the whole
	// overlay network). They go away with the interface.
	Routes []netip.Prefix
	// Queues is how many queues OpenQueues opens on the device, each a
	// Device of its own that one reader and one writer use; 0 means 1.
	// The kernel hands each flow's packets to one queue (by a hash of its
	// addresses and ports, and then to the queue that last wrote that
	// flow's packets in the other direction), so reading several queues in
	// parallel keeps each flow in order. The water driver has one queue.
	Queues int
}

// Validate reports the first problem with c, in words fit for a user. Open
// calls it; cmd may call it earlier to reject flags before doing anything.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("tun name is empty")
	case len(c.Name) > MaxNameLen:
		return fmt.Errorf("tun name %q is %d bytes; Linux allows at most %d", c.Name, len(c.Name), MaxNameLen)
	case c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, "/: \t\n"):
		return fmt.Errorf("tun name %q is not a valid interface name", c.Name)
	}
	if c.driver() == "" {
		return fmt.Errorf("unknown tun driver %q (valid: %s)", c.Driver, strings.Join(Drivers, ", "))
	}
	if c.Queues < 0 || c.Queues > MaxQueues {
		return fmt.Errorf("tun queues %d out of range 1..%d", c.Queues, MaxQueues)
	}
	if c.Queues > 1 && c.driver() == DriverWater {
		return fmt.Errorf("tun driver %s has one queue, not %d", DriverWater, c.Queues)
	}
	if !c.Address.IsValid() || c.Address.Addr().Is4In6() || c.Address.Addr().Zone() != "" {
		return fmt.Errorf("tun address %q is not a plain IPv4 or IPv6 prefix", c.Address)
	}
	if c.Address6.IsValid() && (!c.Address6.Addr().Is6() || c.Address6.Addr().Is4In6() || c.Address6.Addr().Zone() != "") {
		return fmt.Errorf("tun address %q is not a plain IPv6 prefix", c.Address6)
	}
	minMTU, why := MinMTU, ""
	if c.usesIPv6() {
		minMTU, why = MinMTU6, " (IPv6 needs 1280)"
	}
	if c.MTU < minMTU || c.MTU > MaxMTU {
		return fmt.Errorf("tun MTU %d out of range %d..%d%s", c.MTU, minMTU, MaxMTU, why)
	}
	for _, r := range c.Routes {
		if !r.IsValid() || r.Addr().Is4In6() || r.Addr().Zone() != "" {
			return fmt.Errorf("tun route %q is not a plain IPv4 or IPv6 prefix", r)
		}
		if r != r.Masked() {
			return fmt.Errorf("tun route %s has host bits set (did you mean %s?)", r, r.Masked())
		}
	}
	return nil
}

// driver resolves the default and returns "" for an unknown driver.
func (c Config) driver() string {
	if c.Driver == "" {
		return DriverWireguard
	}
	for _, d := range Drivers {
		if c.Driver == d {
			return d
		}
	}
	return ""
}

// checkWriteOffset enforces WriteOffset in every driver, so a caller that
// leaves too little headroom fails with water too, not only with wireguard.
func checkWriteOffset(offset int) error {
	if offset < WriteOffset {
		return fmt.Errorf("write offset %d is less than tunnel.WriteOffset (%d)", offset, WriteOffset)
	}
	return nil
}

func emptyPacketError(i, n, offset int) error {
	return fmt.Errorf("packet %d is empty (len %d, offset %d)", i, n, offset)
}

// usesIPv6 reports whether the address or any route is IPv6.
func (c Config) usesIPv6() bool {
	for _, p := range append([]netip.Prefix{c.Address, c.Address6}, c.Routes...) {
		if p.Addr().Is6() {
			return true
		}
	}
	return false
}

// LogValue keeps log lines flat: tso=true gro=true reason=….
func (o Offloads) LogValue() slog.Value {
	return slog.GroupValue(slog.Bool("tso", o.TSO), slog.Bool("gro", o.GRO), slog.String("reason", o.Reason))
}
