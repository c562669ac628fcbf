package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

func TestPollTimeout(t *testing.T) {
	calls := 0
	start := time.Now()
	err := testenv.Poll(t.Context(), 200*time.Millisecond, "the moon to rise", func() error {
		calls++
		return errors.New("still dark")
	})
	took := time.Since(start)
	if err == nil || !errors.Is(err, testenv.ErrTimeout) ||
		!strings.Contains(err.Error(), "the moon to rise") || !strings.Contains(err.Error(), "still dark") {
		t.Fatalf("Poll: %v", err)
	}
	if took < 200*time.Millisecond || took > 2*time.Second || calls < 2 {
		t.Errorf("took %v with %d calls", took, calls)
	}

	n := 0
	if err := testenv.Poll(t.Context(), time.Second, "third call", func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Errorf("Poll success: %v after %d calls", err, n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := testenv.Poll(ctx, time.Minute, "nothing", func() error { return errors.New("no") }); !errors.Is(err, context.Canceled) {
		t.Errorf("Poll with a cancelled ctx: %v", err)
	}
	if err := testenv.Poll(t.Context(), 0, "once", func() error { return errors.New("no") }); !errors.Is(err, testenv.ErrTimeout) {
		t.Errorf("Poll with no time: %v", err)
	}
}

// fakeTB records a Fatalf instead of stopping the test.
type fakeTB struct{ fatal string }

func (*fakeTB) Helper()                             {}
func (f *fakeTB) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (*fakeTB) Skipf(string, ...any)                {}

func TestWaitFor(t *testing.T) {
	n := 0
	took := testenv.WaitFor(t, time.Second, "the fifth call", func() bool { n++; return n == 5 })
	if n != 5 || took <= 0 || took > time.Second {
		t.Errorf("WaitFor returned after %v and %d calls", took, n)
	}
	// Early retries are quick: five calls within well under the 50 ms cap.
	if took > 40*time.Millisecond {
		t.Logf("five calls took %v (a loaded machine?)", took)
	}

	var f fakeTB
	testenv.WaitFor(&f, 30*time.Millisecond, "never", func() bool { return false })
	if !strings.Contains(f.fatal, "waiting for never") || !strings.Contains(f.fatal, "timed out") {
		t.Errorf("WaitFor on a false condition: Fatalf(%q)", f.fatal)
	}
}
