package testenv

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrTimeout is wrapped by Poll's error when the timeout expired.
var ErrTimeout = errors.New("timed out")

// Polling intervals: the first retry comes quickly, so an in-process
// condition that holds within a millisecond costs about that, and the
// interval doubles up to maxInterval, so a condition that shells out (ip,
// a control socket) is not asked more than 20 times a second.
const (
	minInterval = time.Millisecond
	maxInterval = 50 * time.Millisecond
)

// Poll calls cond until it returns nil, for at most timeout, first after
// 1 ms and then at doubling intervals up to 50 ms. cond runs at least once,
// so timeout <= 0 means "check once". On failure the error names what was
// awaited and wraps both ErrTimeout (or ctx's error) and cond's last error.
// cond should itself be bounded in time.
//
// Poll is the only polling loop of weft's tests and test harness: WaitFor
// wraps it for tests, lab.WaitFor for the lab.
func Poll(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	interval := minInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("waiting for %s: %w after %v: %w", what, ErrTimeout, timeout, err)
		}
		timer.Reset(min(interval, left))
		interval = min(2*interval, maxInterval)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w: %w", what, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// errNotYet is what WaitFor's cond reports to Poll while it is false.
var errNotYet = errors.New("condition still false")

// WaitFor polls cond (see Poll) until it is true and returns how long that
// took; it fails t if cond is still false after timeout. what names the
// condition in the failure.
func WaitFor(t TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	err := Poll(context.Background(), timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return time.Since(start)
}
