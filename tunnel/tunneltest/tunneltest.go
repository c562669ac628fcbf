// Package tunneltest provides an in-memory tunnel.Device for in-process
// tests: the test injects the packets the node will Read, and observes the
// packets the node Writes. It checks the Device contract strictly (buffer
// count and size, write offset), so a node that would only fail on a real
// device under TSO fails here in every test run.
package tunneltest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weftnet/weft/tunnel"
)

// QueueLen is how many packets Inject and Write may queue before they block.
const QueueLen = 1024

// Device is a channel-based tunnel.Device. Read and Write follow the
// tunnel.Device rules (one reader, one writer, concurrently); Inject,
// Written and Close may be called from any goroutine.
type Device struct {
	name       string
	mtu, batch int
	in         chan []byte   // injected, waiting for Read
	out        chan []byte   // written, waiting for the test
	done       chan struct{} // closed by Close
	closeOnce  sync.Once

	pending []byte // owned by the reader: taken from in but did not fit the last Read
}

var _ tunnel.Device = (*Device)(nil)

// New returns an open Device whose Read returns at most batch packets per
// call. It panics if mtu or batch is less than 1.
func New(name string, mtu, batch int) *Device {
	if mtu < 1 || batch < 1 {
		panic(fmt.Sprintf("tunneltest.New: mtu %d and batch %d must be >= 1", mtu, batch))
	}
	return &Device{
		name:  name,
		mtu:   mtu,
		batch: batch,
		in:    make(chan []byte, QueueLen),
		out:   make(chan []byte, QueueLen),
		done:  make(chan struct{}),
	}
}

// Inject queues a copy of pkt for Read, as if the kernel had routed it into
// the TUN. It blocks while QueueLen packets wait, and does nothing after
// Close. The MTU is not enforced.
func (d *Device) Inject(pkt []byte) {
	cp := append([]byte(nil), pkt...)
	select {
	case <-d.done:
		return
	default:
	}
	select {
	case d.in <- cp:
	case <-d.done:
	}
}

// Written delivers a copy of each packet passed to Write, in order. It is
// never closed: select on it with a timeout or on a test's context. While
// QueueLen packets wait unread, Write blocks (a real TUN would not).
func (d *Device) Written() <-chan []byte { return d.out }

// Next returns the next packet passed to Write, or an error if none comes
// within timeout.
func (d *Device) Next(timeout time.Duration) ([]byte, error) {
	select {
	case p := <-d.out:
		return p, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s: no packet came out of the TUN within %v", d.name, timeout)
	}
}

// Read blocks until a packet is injected or the device closes, then returns
// it and, without blocking, up to BatchSize-1 more. Packet i is placed at
// bufs[i][offset:offset+sizes[i]]. len(bufs) must be at least BatchSize and
// every buffer must hold offset+MTU bytes; a packet that still does not fit
// is dropped with an error, as the real device does.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-d.done:
		return 0, tunnel.ErrClosed
	default:
	}
	if err := d.checkRead(bufs, sizes, offset); err != nil {
		return 0, err
	}
	pkt := d.pending
	d.pending = nil
	if pkt == nil {
		select {
		case pkt = <-d.in:
		case <-d.done:
			return 0, tunnel.ErrClosed
		}
	}
	if len(pkt) > len(bufs[0])-offset {
		return 0, fmt.Errorf("tunneltest: packet of %d bytes does not fit buffer of %d at offset %d", len(pkt), len(bufs[0]), offset)
	}
	sizes[0] = copy(bufs[0][offset:], pkt)
	n := 1
	for n < d.batch {
		select {
		case pkt = <-d.in:
		default:
			return n, nil
		}
		if len(pkt) > len(bufs[n])-offset {
			d.pending = pkt // fails (alone) on the next Read
			return n, nil
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
	}
	return n, nil
}

func (d *Device) checkRead(bufs [][]byte, sizes []int, offset int) error {
	switch {
	case offset < 0:
		return fmt.Errorf("tunneltest: negative read offset %d", offset)
	case len(bufs) < d.batch:
		return fmt.Errorf("tunneltest: Read with %d buffers, want BatchSize %d", len(bufs), d.batch)
	case len(sizes) < len(bufs):
		return fmt.Errorf("tunneltest: Read with %d sizes for %d buffers", len(sizes), len(bufs))
	}
	for i, b := range bufs {
		if len(b) < offset+d.mtu {
			return fmt.Errorf("tunneltest: Read buffer %d holds %d bytes, want offset+MTU = %d", i, len(b), offset+d.mtu)
		}
	}
	return nil
}

// Write queues a copy of each bufs[i][offset:] for Written. Like the
// wireguard driver it requires offset >= tunnel.WriteOffset and scribbles
// over the WriteOffset bytes before offset, so a caller that keeps state
// there finds out. Empty packets are skipped with a per-packet error.
func (d *Device) Write(bufs [][]byte, offset int) error {
	if offset < tunnel.WriteOffset {
		return fmt.Errorf("tunneltest: write offset %d is less than tunnel.WriteOffset (%d)", offset, tunnel.WriteOffset)
	}
	select {
	case <-d.done:
		return tunnel.ErrClosed
	default:
	}
	var errs []error
	for i, b := range bufs {
		if len(b) <= offset {
			errs = append(errs, fmt.Errorf("tunneltest: packet %d is empty (len %d, offset %d)", i, len(b), offset))
			continue
		}
		cp := append([]byte(nil), b[offset:]...)
		clear(b[offset-tunnel.WriteOffset : offset])
		select {
		case d.out <- cp:
		case <-d.done:
			return tunnel.ErrClosed
		}
	}
	return errors.Join(errs...)
}

// BatchSize returns the batch given to New.
func (d *Device) BatchSize() int { return d.batch }

// Name returns the name given to New.
func (d *Device) Name() string { return d.name }

// MTU returns the MTU given to New.
func (d *Device) MTU() int { return d.mtu }

// Offloads reports none: the fake neither splits nor coalesces.
func (d *Device) Offloads() tunnel.Offloads {
	return tunnel.Offloads{Reason: "tunneltest: no offloads"}
}

// Close unblocks Read, Write and Inject; afterwards Read and Write return
// tunnel.ErrClosed. Packets still queued are dropped. It always returns nil.
func (d *Device) Close() error {
	d.closeOnce.Do(func() { close(d.done) })
	return nil
}
