package tunnel

// The wireguard driver wraps golang.zx2c4.com/wireguard/tun. With the
// virtio-net header on, one read() may return a TSO/USO superpacket that the
// library splits in Go into up to its own batch of packets, and Write
// coalesces TCP and UDP packets (GRO) into the spare capacity of the caller's
// buffers. Read chains library reads (see Read), so BatchSize is a multiple
// of the library's batch.
//
// We open the clone device ourselves rather than call tun.CreateTUN, which
// leaks its fd when TUNSETIFF fails and fails outright when the kernel refuses
// TUNSETOFFLOAD. createWireguardTUN does CreateTUN's first half (adding
// IFF_TUN_EXCL, so the kernel refuses a name that appeared since Open's check)
// and hands the file to tun.CreateTUNFromFile, which is the rest of it.
//
// Several queues (openWireguardQueues) are the same steps once per queue: the
// first TUNSETIFF creates the device with IFF_MULTI_QUEUE, each later one on
// the same name attaches another queue (same flags, no IFF_TUN_EXCL), and
// every queue's file goes to CreateTUNFromFile, which has no multi-queue
// option of its own. Each queue is a Device of its own; the link goes when
// the last is closed.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// tunTCPOffloads are what tun.CreateTUNFromFile requests when it sees
// IFF_VNET_HDR; it fails if the kernel refuses them, so we ask first.
const tunTCPOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6

// errOffloadRefused marks a kernel that refused TUNSETOFFLOAD; Open then
// falls back to a device without the virtio-net header.
var errOffloadRefused = errors.New("kernel refused TUN offloads (TUNSETOFFLOAD)")

// readsPerCall sizes a Read's buffers: a second library batch, so that one
// Read can take the small packets queued behind the first (see Read).
const readsPerCall = 2

type wireguardDevice struct {
	dev      wgtun.Device
	name     string
	mtu      int
	offloads Offloads

	closed    atomic.Bool // set before dev.Close so late errors read as ErrClosed
	closeOnce sync.Once

	nonEmpty [][]byte // owned by the writer: Write's batch minus empty packets

	libBatch  int      // the library's batch: the buffers one of its reads may fill
	readyFile *os.File // a dup of the TUN fd in Go's poller, to wait for packets on
	ready     syscall.RawConn

	// Owned by the reader: one library read from inside ready.Read.
	tryRead func(fd uintptr) bool // d.tryReadOnce, bound once so waiting allocates nothing
	rBufs   [][]byte
	rSizes  []int
	rOff    int
	rN      int
	rErr    error
}

var _ Device = (*wireguardDevice)(nil)

func openWireguard(name string, mtu int) (Device, error) {
	devs, err := openWireguardQueues(name, mtu, 1)
	if err != nil {
		return nil, err
	}
	return devs[0], nil
}

// openWireguardQueues creates the device with n queues (n > 1 turns on
// IFF_MULTI_QUEUE). On error nothing is left open.
func openWireguardQueues(name string, mtu, n int) ([]Device, error) {
	tf := tunFlags{multiQueue: n > 1, vnetHdr: true}
	first, err := newWireguardQueue(name, mtu, tf, nil)
	if errors.Is(err, errOffloadRefused) {
		tf.vnetHdr = false
		first, err = newWireguardQueue(name, mtu, tf, err)
	}
	if err != nil {
		return nil, err
	}
	devs := []Device{first}
	tf.attach = true // the device exists now: join it, do not refuse it
	for i := 1; i < n; i++ {
		d, err := newWireguardQueue(name, mtu, tf, nil)
		if err != nil {
			for _, d := range devs {
				d.Close()
			}
			return nil, fmt.Errorf("attach TUN queue %d of %d: %w", i+1, n, err)
		}
		d.offloads = first.offloads // the offloads are the device's, decided once
		devs = append(devs, d)
	}
	return devs, nil
}

// tunFlags are the TUNSETIFF choices: every queue of a device must make the
// same ones, or the kernel refuses to attach it.
type tunFlags struct {
	multiQueue bool // IFF_MULTI_QUEUE: the device takes more than one queue
	vnetHdr    bool // IFF_VNET_HDR, and with it TSO and GRO
	attach     bool // a later queue of an existing device: no IFF_TUN_EXCL
}

// newWireguardQueue opens one queue (the first creates the device); refused
// is the offload refusal that made the caller drop vnetHdr, for Offloads.
func newWireguardQueue(name string, mtu int, tf tunFlags, refused error) (*wireguardDevice, error) {
	dev, ready, err := createWireguardTUN(name, mtu, tf)
	if err != nil {
		return nil, err
	}
	d := &wireguardDevice{
		dev:       dev,
		name:      name,
		mtu:       mtu,
		offloads:  wireguardOffloads(dev.BatchSize(), refused),
		libBatch:  dev.BatchSize(),
		readyFile: ready,
	}
	if d.ready, err = ready.SyscallConn(); err != nil {
		d.Close()
		return nil, err
	}
	d.tryRead = d.tryReadOnce
	go drainEvents(dev.Events())
	return d, nil
}

// createWireguardTUN creates the device, returning with it a second file on
// the TUN (see Read); on error nothing is left open.
func createWireguardTUN(name string, mtu int, tf tunFlags) (wgtun.Device, *os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	flags := unix.IFF_TUN | unix.IFF_NO_PI
	if !tf.attach {
		flags |= unix.IFF_TUN_EXCL
	}
	if tf.multiQueue {
		flags |= unix.IFF_MULTI_QUEUE
	}
	if tf.vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(uint16(flags))
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	if tf.vnetHdr {
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tunTCPOffloads); err != nil {
			unix.Close(fd) // the non-persistent link goes with it
			return nil, nil, fmt.Errorf("%w: %w", errOffloadRefused, err)
		}
	}
	// The library's file is blocking when os.NewFile sees it, so it stays
	// out of Go's poller; then the TUN turns non-blocking, and a library
	// read of an empty queue returns EAGAIN instead of parking. Read waits
	// for packets on a dup of the fd, made after that and so in the poller:
	// Close of the dup unblocks a waiting Read.
	file := os.NewFile(uintptr(fd), "/dev/net/tun")
	if err := unix.SetNonblock(fd, true); err != nil {
		file.Close()
		return nil, nil, err
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		file.Close()
		return nil, nil, fmt.Errorf("dup the TUN fd: %w", err)
	}
	ready := os.NewFile(uintptr(dup), "/dev/net/tun")
	// The library sets the MTU with an ioctl too; Open then sets it again
	// over netlink. Validate keeps mtu inside the TUN driver's range, which
	// matters: if this ioctl failed, the library's listener goroutines
	// would outlive the error.
	dev, err := wgtun.CreateTUNFromFile(file, mtu)
	if err != nil {
		ready.Close()
		file.Close()
		return nil, nil, err
	}
	return dev, ready, nil
}

// wireguardOffloads derives Offloads: the library turns the virtio-net header
// (and with it TSO and GRO) on exactly when BatchSize > 1.
func wireguardOffloads(batch int, refused error) Offloads {
	if batch > 1 {
		return Offloads{TSO: true, GRO: true}
	}
	reason := errOffloadRefused.Error()
	if refused != nil {
		reason = refused.Error()
	}
	return Offloads{Reason: reason}
}

// drainEvents empties the library's event channel (buffer 5) until Close
// closes it; unread, its link-status goroutines would block, and Close with
// them.
func drainEvents(events <-chan wgtun.Event) {
	for range events {
	}
}

// Read waits for a packet, then chains library reads while the kernel has
// packets queued and a whole library batch of buffers is left: the library
// returns a small packet alone per read(), and without chaining each one
// would leave in a send of its own. The TUN is non-blocking and the library
// reads it outside Go's poller, so reading an empty queue says EAGAIN: the
// end of a burst costs one read that finds nothing (and the library's error
// value for it, the one allocation here), not a poll per packet.
func (d *wireguardDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.readWait(bufs, sizes, offset)
	for err == nil && len(bufs)-n >= d.libBatch {
		var m int
		m, err = d.read(bufs[n:], sizes[n:], offset)
		n += m
		if errors.Is(err, unix.EAGAIN) {
			return n, nil
		}
	}
	return n, err
}

// readWait is one library read, waiting in Go's poller (on the dup) while
// the queue is empty. The poller re-arms before each try, so a packet that
// arrives between an empty read and the wait is not missed.
func (d *wireguardDevice) readWait(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.rBufs, d.rSizes, d.rOff = bufs, sizes, offset
	err := d.ready.Read(d.tryRead)
	d.rBufs, d.rSizes = nil, nil // keep no reference to the caller's buffers
	if err != nil {
		return 0, ErrClosed // only Close ends the wait
	}
	return d.rN, d.rErr
}

// tryReadOnce is ready.Read's callback: done unless the queue was empty.
func (d *wireguardDevice) tryReadOnce(uintptr) bool {
	d.rN, d.rErr = d.read(d.rBufs, d.rSizes, d.rOff)
	return !errors.Is(d.rErr, unix.EAGAIN)
}

// read is one library read into at most libBatch buffers.
func (d *wireguardDevice) read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.dev.Read(bufs[:min(len(bufs), d.libBatch)], sizes, offset)
	// After Close the library may also report its netlink listener's
	// shutdown: any error then is ErrClosed.
	if err != nil && (d.closed.Load() || isClosedErr(err)) {
		return n, ErrClosed
	}
	return n, err
}

func (d *wireguardDevice) Write(bufs [][]byte, offset int) error {
	if err := checkWriteOffset(offset); err != nil {
		return err
	}
	if d.closed.Load() {
		return ErrClosed
	}
	// The library's GRO pass rejects the whole batch for one empty packet.
	bufs, skipped := d.skipEmpty(bufs, offset)
	var err error
	if len(bufs) > 0 {
		_, err = d.dev.Write(bufs, offset) // returns bytes, not packets
	}
	if d.nonEmpty != nil {
		clear(d.nonEmpty) // keep no reference to the caller's buffers
		d.nonEmpty = d.nonEmpty[:0]
	}
	if err != nil && (d.closed.Load() || isClosedErr(err)) {
		return ErrClosed
	}
	return errors.Join(skipped, err)
}

// skipEmpty returns bufs unchanged when no packet is empty (no allocation),
// else the non-empty ones, gathered in d.nonEmpty, and one error per skipped
// packet.
func (d *wireguardDevice) skipEmpty(bufs [][]byte, offset int) ([][]byte, error) {
	empty := 0
	for _, b := range bufs {
		if len(b) <= offset {
			empty++
		}
	}
	if empty == 0 {
		return bufs, nil
	}
	errs := make([]error, 0, empty)
	for i, b := range bufs {
		if len(b) <= offset {
			errs = append(errs, emptyPacketError(i, len(b), offset))
			continue
		}
		d.nonEmpty = append(d.nonEmpty, b)
	}
	return d.nonEmpty, errors.Join(errs...)
}

// BatchSize allows readsPerCall library reads per Read.
func (d *wireguardDevice) BatchSize() int     { return readsPerCall * d.libBatch }
func (d *wireguardDevice) Name() string       { return d.name }
func (d *wireguardDevice) MTU() int           { return d.mtu }
func (d *wireguardDevice) Offloads() Offloads { return d.offloads }

func (d *wireguardDevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.readyFile.Close() // wakes a Read waiting for packets
		if cerr := d.dev.Close(); cerr != nil {
			err = fmt.Errorf("close tun %s: %w", d.name, cerr)
		}
	})
	return err
}
