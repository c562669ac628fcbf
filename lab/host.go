package lab

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultRunTimeout bounds Host.Run when ctx has no deadline, so a hung
// command cannot hang a test.
const DefaultRunTimeout = time.Minute

// waitDelay bounds Wait after the process exited or was killed while a
// grandchild still holds its output pipe.
const waitDelay = 2 * time.Second

// Host is one network namespace of a lab. Its methods are safe for
// concurrent use.
type Host struct {
	Name  string     // "h1".."hN"; "u" for Lab.Switch; AddNetns's name
	Netns string     // namespace name, for `ip netns exec` and `ip -n`
	Addr  netip.Addr // underlay address (for Lab.Switch: the gateway)
	Addr6 netip.Addr // IPv6 underlay address with Config.Underlay6; zero without
	Link  string     // underlay interface inside Netns: "eth0" ("br0" for Lab.Switch)
	// Port is the host's bridge port in the underlay namespace (Lab.Switch),
	// e.g. "h1": netem there shapes traffic towards this host. Empty for Switch.
	Port string

	lab *Lab
}

func (h *Host) String() string { return h.Netns }

// Command returns a command that runs name inside the host's namespace
// (ip netns exec, which execs name in place, so the pid is name's). The
// process gets its own process group, killed as a whole when ctx ends, and
// SIGKILL when this process dies (Pdeathsig; Go's caveat applies: it fires
// when the forking OS thread exits, which the runtime only does for threads
// locked with runtime.LockOSThread: never let a goroutine that may have
// started lab processes exit while locked; see InNetns). Command does not
// track the process;
// Close still kills it, as it kills everything in the lab's namespaces.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	return cmd
}

// Run runs name inside the host's namespace and returns its combined
// output. The error names the host and command and includes the output.
// Without a deadline on ctx, Run gives up after DefaultRunTimeout.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRunTimeout)
		defer cancel()
	}
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return string(out), fmt.Errorf("%s: %s: %w\n%s", h.Netns, strings.Join(append([]string{name}, args...), " "), err, out)
	}
	return string(out), nil
}

// Start starts name in the background inside the host's namespace. Its
// stdout and stderr go to a buffer (Proc.Output) and, with Config.LogDir, to
// a log file. The lab tracks the process and stops it in Close. ctx bounds
// the process's life: when ctx ends its process group is killed, so pass a
// context that lives as long as the process should (e.g. context.Background()
// to run until Stop or Close).
func (h *Host) Start(ctx context.Context, name string, args ...string) (*Proc, error) {
	l := h.lab
	cmd := h.Command(ctx, name, args...)
	p := &Proc{Host: h, Name: name, cmd: cmd, done: make(chan struct{})}
	var w io.Writer = &p.out

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("%s: start %s: %w", h.Netns, name, ErrClosed)
	}
	if dir := l.cfg.LogDir; dir != "" {
		l.seq++
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", h.Netns, filepath.Base(name), l.seq)))
		if err != nil {
			return nil, fmt.Errorf("%s: start %s: %w", h.Netns, name, err)
		}
		p.logFile = f
		w = io.MultiWriter(&p.out, f)
	}
	cmd.Stdout, cmd.Stderr = w, w // the same comparable writer: one pipe, no interleaving races
	if err := cmd.Start(); err != nil {
		if p.logFile != nil {
			p.logFile.Close()
		}
		return nil, fmt.Errorf("%s: start %s: %w", h.Netns, name, err)
	}
	l.procs = append(l.procs, p)
	l.log.Debug("started", "host", h.Name, "cmd", name, "pid", cmd.Process.Pid)
	go p.wait()
	return p, nil
}

// Ping sends count echo requests (0.2 s apart) to addr and fails unless
// every one is answered within a bounded deadline.
func (h *Host) Ping(ctx context.Context, addr netip.Addr, count int) error {
	return h.ping(ctx, addr, count)
}

// PingDF is Ping with size-byte payloads and the don't-fragment bit set
// (ping -M do -s size): it fails when a packet of that size does not fit the
// path MTU (payload + 28 bytes of IPv4/ICMP headers).
func (h *Host) PingDF(ctx context.Context, addr netip.Addr, count, size int) error {
	return h.ping(ctx, addr, count, "-M", "do", "-s", fmt.Sprint(size))
}

func (h *Host) ping(ctx context.Context, addr netip.Addr, count int, extra ...string) error {
	if count < 1 {
		count = 1
	}
	// With both -c and -w, ping exits 0 only when all count replies arrived.
	deadline := count/5 + 2
	args := append([]string{"-n", "-q", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", "-w", fmt.Sprint(deadline)}, extra...)
	_, err := h.Run(ctx, "ping", append(args, addr.String())...)
	return err
}
