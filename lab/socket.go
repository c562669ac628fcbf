package lab

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNetns runs open on an OS thread inside h's namespace and returns its
// result: sockets opened there keep the namespace after the thread leaves,
// so tests can send hand-made traffic from a host. The thread is switched
// back before it is released; if that fails its goroutine parks for good
// rather than let other code run in h's namespace (or let the thread exit,
// which would SIGKILL the processes it forked: see Host.Command).
func InNetns[T any](h *Host, open func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("current netns: %w", err)}
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromName(h.Netns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("%s: %w", h.Netns, err)}
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			done <- result{err: fmt.Errorf("enter %s: %w", h.Netns, err)}
		} else {
			v, err := open()
			done <- result{v, err}
		}
		if err := netns.Set(orig); err != nil {
			select {} // stranded in h's namespace: never run anything else here
		}
		runtime.UnlockOSThread()
	}()
	r := <-done
	return r.v, r.err
}
