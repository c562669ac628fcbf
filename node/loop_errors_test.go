package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/tunnel"
)

func TestLoopErrors(t *testing.T) {
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	l := newLoopErrors(n, "UDP read", dropUDPReadError)
	var slept []time.Duration
	l.sleep = func(d time.Duration) { slept = append(slept, d) }

	// Closed, however wrapped: stop, silently, nothing counted.
	for _, err := range []error{net.ErrClosed, fmt.Errorf("read: %w", tunnel.ErrClosed)} {
		if stop, e := l.check(err); !stop || e != nil {
			t.Fatalf("%v: stop %v, err %v; want a silent stop", err, stop, e)
		}
	}
	// Transient: counted, the first without a pause, then backing off
	// longer, up to the cap; a success resets the run.
	transient := fmt.Errorf("read: %w", syscall.ENOBUFS)
	for range 3 {
		if stop, _ := l.check(transient); stop {
			t.Fatal("a transient error stopped the loop")
		}
	}
	if want := []time.Duration{time.Millisecond, 2 * time.Millisecond}; fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Fatalf("backoff %v, want %v", slept, want)
	}
	if c := n.drops.snapshot()["udp_read_error"]; c != 3 {
		t.Fatalf("%d udp_read_error, want 3", c)
	}
	l.check(nil)
	slept = nil
	// Fatal: maxFailures in a row end the loop with the last error.
	var stop bool
	var err error
	for i := 0; !stop; i++ {
		if i == maxFailures {
			t.Fatalf("still running after %d failures", i)
		}
		stop, err = l.check(transient)
	}
	if !errors.Is(err, syscall.ENOBUFS) || l.failed != maxFailures {
		t.Fatalf("fatal after %d: %v", l.failed, err)
	}
	if len(slept) != maxFailures-2 || slept[len(slept)-1] != maxBackoff {
		t.Fatalf("backoff over the run: %d pauses, last %v", len(slept), slept[len(slept)-1])
	}
}
