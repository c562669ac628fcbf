// Package tunnel opens and configures the TUN device that carries a node's
// overlay traffic between the kernel and weft. Two drivers sit behind the one
// Device interface: "wireguard" (golang.zx2c4.com/wireguard/tun, with the
// virtio-net header, TSO on read and GRO on write, batched) and "water"
// (github.com/songgao/water, one packet per call, the portable fallback).
package tunnel

import (
	"errors"
	"net/netip"
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

// ErrClosed is returned by Read and Write once the device is closed.
var ErrClosed = errors.New("tunnel closed")

// Device is a TUN device. Packets are bare IPv4/IPv6 packets.
//
// Read and Write may be called concurrently with each other (one reader
// goroutine, one writer goroutine), but neither is safe for concurrent use
// with itself.
type Device interface {
	// Read blocks until at least one packet is available and reads up to
	// len(bufs) packets. Packet i is placed at bufs[i][offset:offset+sizes[i]].
	// Every buffer must hold offset+MTU bytes at least; with TSO one read may
	// return up to BatchSize packets split from one superpacket.
	// len(bufs) must be BatchSize() and len(sizes) >= len(bufs).
	// It returns ErrClosed after Close.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)

	// Write writes each bufs[i][offset:] as one packet. offset must be at
	// least WriteOffset; the bytes in front of offset are scratch space. With
	// GRO the driver may coalesce packets into the spare capacity of bufs, so
	// buffers must not overlap and should have capacity offset+65535. It
	// returns ErrClosed after Close; other errors are per-packet failures
	// (joined) and the batch has still been attempted in full.
	Write(bufs [][]byte, offset int) error

	// BatchSize is the most packets one Read returns. It never changes.
	BatchSize() int

	// Name is the interface name in the kernel.
	Name() string

	// MTU is the MTU the device was configured with.
	MTU() int

	// Offloads says which offloads are active and why one is off.
	Offloads() Offloads

	// Close removes the device (and with it its addresses and routes).
	// It unblocks a pending Read. Safe to call more than once.
	Close() error
}

// Offloads reports the TUN offloads in use. Reason is empty when both are on.
type Offloads struct {
	TSO    bool   `json:"tso"`    // kernel hands us TCP superpackets (split in userspace)
	GRO    bool   `json:"gro"`    // we hand the kernel coalesced TCP/UDP packets
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
	// Routes are installed through the interface once it is up (the whole
	// overlay network). They go away with the interface.
	Routes []netip.Prefix
}
