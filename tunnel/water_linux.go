package tunnel

// The water driver: github.com/songgao/water opens the TUN without the
// virtio-net header, so every Read and Write is one packet and one syscall
// and there are no offloads. It is the portable fallback.
//
// water (built with Go >= 1.11) opens the clone device O_NONBLOCK and wraps
// it with os.NewFile, so the file is in Go's poller and Close unblocks a
// pending Read. We check that rather than trust it (a file outside the poller
// would leave Close waiting behind Read forever) and repair it with pollable.
// water does not ask for O_CLOEXEC, so we set it under syscall.ForkLock: a
// child process holding the fd would keep the link alive after Close.

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"
)

type waterDevice struct {
	file *os.File
	name string
	mtu  int

	closed    atomic.Bool // set before file.Close so late errors read as ErrClosed
	closeOnce sync.Once
}

var _ Device = (*waterDevice)(nil)

func openWater(name string, mtu int) (Device, error) {
	cfg := water.Config{DeviceType: water.TUN} // non-persistent: water clears TUNSETPERSIST
	cfg.Name = name

	syscall.ForkLock.RLock()
	ifce, err := water.New(cfg)
	var file *os.File
	if err == nil {
		var ok bool
		if file, ok = ifce.ReadWriteCloser.(*os.File); !ok {
			ifce.Close()
			err = fmt.Errorf("water returned a %T, want *os.File", ifce.ReadWriteCloser)
		} else {
			err = closeOnExec(file)
		}
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		if file != nil {
			file.Close()
		}
		return nil, err
	}
	if file, err = pollable(file); err != nil {
		return nil, err
	}
	return &waterDevice{file: file, name: ifce.Name(), mtu: mtu}, nil
}

// closeOnExec sets FD_CLOEXEC through SyscallConn, which keeps the fd from
// being closed underneath us (f.Fd() gives no such guarantee).
func closeOnExec(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { unix.CloseOnExec(int(fd)) })
}

// pollable returns f if it is in Go's poller (only such files take
// deadlines), else a non-blocking close-on-exec duplicate that is. It closes
// f in that case, and on error.
func pollable(f *os.File) (*os.File, error) {
	err := f.SetReadDeadline(time.Time{})
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, os.ErrNoDeadline) {
		f.Close()
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	nfd, dupErr := -1, error(nil)
	err = rc.Control(func(fd uintptr) { nfd, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	f.Close() // the duplicate shares the open file, so the TUN stays attached
	if err = errors.Join(err, dupErr); err != nil {
		return nil, fmt.Errorf("duplicate %s: %w", f.Name(), err)
	}
	// Non-blocking before os.NewFile, which then registers it with the poller.
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	return os.NewFile(uintptr(nfd), f.Name()), nil
}

// Read reads one packet: water has no batching.
func (d *waterDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.file.Read(bufs[0][offset:])
	if err != nil {
		if d.closed.Load() || isClosedErr(err) {
			return 0, ErrClosed
		}
		return 0, err
	}
	sizes[0] = n
	return 1, nil
}

// Write writes one packet per syscall; the headroom before offset is unused
// but still required, so callers behave the same under both drivers.
func (d *waterDevice) Write(bufs [][]byte, offset int) error {
	if err := checkWriteOffset(offset); err != nil {
		return err
	}
	var errs []error // stays nil, no allocation, when all packets go out
	for i, b := range bufs {
		if len(b) <= offset {
			errs = append(errs, emptyPacketError(i, len(b), offset))
			continue
		}
		if _, err := d.file.Write(b[offset:]); err != nil {
			if d.closed.Load() || isClosedErr(err) {
				return ErrClosed
			}
			errs = append(errs, fmt.Errorf("packet %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

func (d *waterDevice) BatchSize() int { return 1 }
func (d *waterDevice) Name() string   { return d.name }
func (d *waterDevice) MTU() int       { return d.mtu }
func (d *waterDevice) Offloads() Offloads {
	return Offloads{Reason: "water driver: no offloads"}
}

func (d *waterDevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		if cerr := d.file.Close(); cerr != nil {
			err = fmt.Errorf("close tun %s: %w", d.name, cerr)
		}
	})
	return err
}
