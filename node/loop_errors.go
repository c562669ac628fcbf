package node

// The forwarding loops' one error policy for the I/O calls they loop on
// (TUN reads, UDP reads). An error is
//
//	closed     our own shutdown closed the device or socket: the loop
//	           returns nil, silently
//	transient  anything else, while fewer than maxFailures in a row: it is
//	           counted (the batch it held is lost), logged at most once a
//	           minute, and the loop backs off before its next call, longer
//	           the longer the run of failures, so a failing device is not
//	           spun on
//	fatal      maxFailures in a row: the loop returns the error, and Run
//	           makes that one orderly shutdown (its first cause wins)

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"golang.org/x/time/rate"

	"github.com/weftnet/weft/tunnel"
)

const (
	// maxFailures in a row end a loop: a malformed superpacket or a
	// burst of ICMP errors is counted and skipped, a device that only
	// fails is reported rather than retried for ever (about 12 s of
	// backoff).
	maxFailures = 100
	// maxBackoff caps the pause after a failure; the first failure of a
	// run waits not at all.
	maxBackoff = 128 * time.Millisecond
)

// loopErrors applies the policy to one loop's calls; the loop owns it.
type loopErrors struct {
	n      *Node
	what   string     // the call, for messages: "TUN read"
	drop   dropReason // what a failed call is counted as
	warn   *rate.Limiter
	sleep  func(time.Duration) // time.Sleep; tests replace it
	failed int                 // failures in a row
}

func newLoopErrors(n *Node, what string, drop dropReason) *loopErrors {
	return &loopErrors{n: n, what: what, drop: drop, warn: rate.NewLimiter(rate.Every(time.Minute), 1), sleep: time.Sleep}
}

// check classifies the result of one call: stop says the loop must return
// err (nil when closed, the fatal error otherwise). A nil err resets the run.
func (l *loopErrors) check(err error) (stop bool, _ error) {
	if err == nil {
		l.failed = 0
		return false, nil
	}
	if isClosed(err) {
		return true, nil
	}
	if l.failed++; l.failed >= maxFailures {
		return true, fmt.Errorf("%d %ss failed in a row, last: %w", l.failed, l.what, err)
	}
	l.n.drops.add(l.drop, 1)
	l.n.warnLimited(l.warn, l.what+" failed", err)
	if l.failed > 1 {
		l.sleep(min(time.Millisecond<<min(l.failed-2, 8), maxBackoff))
	}
	return false, nil
}

// isClosed reports whether err says the device or socket was closed, which
// only our own shutdown does.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, tunnel.ErrClosed) || errors.Is(err, os.ErrClosed)
}
