package tunnel

// White-box tests of the drivers' own safety nets.

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/testenv"
)

// TestDriversRefuseTakenName covers the race Open's LinkByName check cannot:
// a TUN of that name appearing in between. The kernel answers EBUSY, which
// Open reports as ErrExists. (water leaks an unattached fd here; that is
// why Open checks first.)
func TestDriversRefuseTakenName(t *testing.T) {
	testenv.Require(t)
	const name = "wt-taken"
	first, err := openWireguard(name, 1400)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	for driver, open := range map[string]func(string, int) (Device, error){
		DriverWireguard: openWireguard,
		DriverWater:     openWater,
	} {
		dev, err := open(name, 1400)
		if err == nil {
			dev.Close()
			t.Errorf("%s: created a second %q", driver, name)
		} else if !errors.Is(err, unix.EBUSY) {
			t.Errorf("%s: err = %v, want EBUSY", driver, err)
		}
	}
}

// TestPollableRepairsBlockingFile covers water's fallback with a pipe opened
// blocking, which os.NewFile leaves outside the poller: after pollable, Close
// must unblock a pending Read.
func TestPollableRepairsBlockingFile(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(p[1]), "pipe-w")
	t.Cleanup(func() { w.Close() })
	blocking := os.NewFile(uintptr(p[0]), "pipe-r")
	if err := blocking.SetReadDeadline(time.Time{}); !errors.Is(err, os.ErrNoDeadline) {
		t.Fatalf("test premise: a blocking file should refuse deadlines, got %v", err)
	}
	f, err := pollable(blocking)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("pollable returned a file outside the poller: %v", err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := f.Read(buf); err != nil || string(buf[:n]) != "x" {
		t.Fatalf("read through the duplicate: %q, %v", buf[:n], err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := f.Read(buf)
		errc <- err
	}()
	f.Close()
	select {
	case err := <-errc:
		if !isClosedErr(err) {
			t.Errorf("Read after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestWireguardOffloadsReason(t *testing.T) {
	if got := wireguardOffloads(128, nil); !got.TSO || !got.GRO || got.Reason != "" {
		t.Errorf("batch 128: %+v, want TSO and GRO", got)
	}
	refused := errors.Join(errOffloadRefused, unix.EINVAL)
	if got := wireguardOffloads(1, refused); got.TSO || got.GRO || got.Reason != refused.Error() {
		t.Errorf("refused: %+v, want off with the kernel's answer", got)
	}
}
