package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// killWait bounds the wait for a process after SIGKILL.
const killWait = 5 * time.Second

// maxOutput caps the output Proc keeps; older output is dropped.
const maxOutput = 4 << 20

// errStuck means a process survived SIGKILL (e.g. stuck in the kernel).
var errStuck = errors.New("process did not exit after SIGKILL")

// ErrKilled is returned by Stop when the process ignored the signal for the
// whole timeout and had to be killed with SIGKILL.
var ErrKilled = errors.New("killed with SIGKILL after timeout")

// Proc is a background process started with Host.Start. Its methods are
// safe for concurrent use.
type Proc struct {
	Host *Host  // where it runs
	Name string // the program

	cmd     *exec.Cmd
	out     tailBuffer
	logFile *os.File      // nil without Config.LogDir; closed by wait
	done    chan struct{} // closed once the process was reaped
	err     error         // Wait's result; written before done closes
	sent    atomic.Int32  // last signal Stop sent; dying by it is success
}

func (p *Proc) String() string { return fmt.Sprintf("%s: %s (pid %d)", p.Host.Netns, p.Name, p.Pid()) }

// Pid returns the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process wrote to stdout and stderr so far (the
// last 4 MiB).
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns its exit error, like
// exec.Cmd.Wait. It does not time out; use Done in a select, or Stop.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

func (p *Proc) wait() {
	err := p.cmd.Wait()
	if p.logFile != nil {
		p.logFile.Close()
	}
	if err != nil {
		err = fmt.Errorf("%s: %s: %w", p.Host.Netns, p.Name, err)
	}
	p.err = err
	close(p.done)
	p.Host.lab.log.Debug("exited", "host", p.Host.Name, "cmd", p.Name, "pid", p.Pid(), "err", err)
}

// Stop sends sig to the process group, waits up to timeout for the process
// to exit, then sends SIGKILL. It returns nil when the process exited with
// status 0 or by sig, ErrKilled when it needed SIGKILL, and the exit error
// otherwise (also when it had exited on its own before Stop). After the
// process is gone, what is left of its group is killed too. Stopping a
// stopped process returns nil again.
func (p *Proc) Stop(sig os.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return p.result()
	default:
	}
	s, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("%v: stop: unsupported signal %v", p, sig)
	}
	pid := p.Pid()
	p.sent.Store(int32(s))
	_ = killGroup(pid, s)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		_ = killGroup(pid, syscall.SIGKILL) // stragglers of the group
		return p.result()
	case <-t.C:
	}
	p.sent.Store(int32(syscall.SIGKILL))
	_ = killGroup(pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%v: no exit %v after %v: %w", p, sig, timeout, ErrKilled)
	case <-time.After(killWait):
		return fmt.Errorf("%v: %w", p, errStuck)
	}
}

// result is the exit error, or nil when the process died of the signal
// Stop sent. Call only after done is closed.
func (p *Proc) result() error {
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		ws, ok := ee.Sys().(syscall.WaitStatus)
		if ok && ws.Signaled() && int32(ws.Signal()) == p.sent.Load() {
			return nil
		}
	}
	return p.err
}

// killGroup signals the process group led by pid; a group already gone is
// not an error.
func killGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// tailBuffer is a concurrency-safe writer that keeps the last maxOutput bytes.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - maxOutput; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
