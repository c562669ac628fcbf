package bench

// Traffic runners: iperf3 and ping from host 1 to host 2 over one path,
// each run inside the lab's namespaces (never in the root one) and bounded
// by a timeout.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/weftnet/weft/lab"
)

// Timeouts of the runners, beyond the traffic's own duration. None is a
// claim about speed: they only stop a hung tool.
const (
	toolSlack      = 30 * time.Second // iperf3/ping beyond their planned run time
	busyRetry      = 10 * time.Second // iperf3 server still finishing the previous test
	reachTimeout   = 20 * time.Second // a new path answering its first ping
	serverTimeout  = 10 * time.Second // iperf3 -s listening
	iperfPort      = "5201"
	pingInterval   = 10 * time.Millisecond // ping -i 0.01 (needs root)
	connectTimeout = "3000"                // iperf3 --connect-timeout, ms
)

// traffic sends from src to addr, host 2's address on the path under test.
type traffic struct {
	src     *lab.Host
	addr    netip.Addr
	seconds int // iperf3 -t
}

// startServer runs a long-lived iperf3 server on h (until the lab closes)
// and waits until it listens.
func startServer(ctx context.Context, h *lab.Host) (*lab.Proc, error) {
	p, err := h.Start(context.Background(), "iperf3", "-s", "-p", iperfPort)
	if err != nil {
		return nil, err
	}
	err = lab.WaitFor(ctx, serverTimeout, "iperf3 server on "+h.Name, func() error {
		select {
		case <-p.Done():
			return fmt.Errorf("iperf3 -s exited: %v\n%s", p.Wait(), p.Output())
		default:
		}
		out, err := h.Run(ctx, "ss", "-Hltn", "sport = :"+iperfPort)
		if err == nil && strings.TrimSpace(out) == "" {
			err = errors.New("not listening yet")
		}
		return err
	})
	return p, err
}

// iperf runs one iperf3 client test for t.seconds with extra arguments
// (e.g. -P 4, or -u -l 64 -b 0) and parses its JSON report. When the server
// is still busy with the previous test it tries again for a while.
func (t traffic) iperf(ctx context.Context, extra ...string) (Iperf, error) {
	args := append([]string{"-c", t.addr.String(), "-p", iperfPort, "-t", fmt.Sprint(t.seconds),
		"-J", "--connect-timeout", connectTimeout}, extra...)
	deadline := time.Now().Add(busyRetry)
	for {
		res, err := t.iperfOnce(ctx, args)
		if err == nil || !strings.Contains(err.Error(), "busy") || time.Now().After(deadline) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (t traffic) iperfOnce(ctx context.Context, args []string) (Iperf, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(t.seconds)*time.Second+toolSlack)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := t.src.Command(ctx, "iperf3", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	res, err := ParseIperf(stdout.Bytes())
	if err != nil {
		return res, fmt.Errorf("%s: iperf3 %s: %w (%v) %s", t.src.Name, strings.Join(args, " "), err, runErr,
			strings.TrimSpace(stderr.String()))
	}
	return res, nil
}

// ping sends count echoes, pingInterval apart, and parses the replies.
func (t traffic) ping(ctx context.Context, count int) (Ping, error) {
	planned := time.Duration(count) * pingInterval
	ctx, cancel := context.WithTimeout(ctx, planned+toolSlack)
	defer cancel()
	var out bytes.Buffer
	cmd := t.src.Command(ctx, "ping", "-n", "-i", fmt.Sprintf("%.3f", pingInterval.Seconds()),
		"-c", fmt.Sprint(count), "-W", "1", t.addr.String())
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run() // exit 1 when replies were missing: judged by the parser
	p, err := ParsePing(out.String())
	if err != nil {
		return p, fmt.Errorf("%s: ping %s: %w (%v)\n%s", t.src.Name, t.addr, err, runErr, tail(out.String(), 500))
	}
	return p, nil
}

// reachable waits until one echo comes back over the path: a path is up
// once ARP (vxlan) or the daemons' routes (weft) are in place.
func (t traffic) reachable(ctx context.Context) error {
	return lab.WaitFor(ctx, reachTimeout, fmt.Sprintf("%s to reach %s", t.src.Name, t.addr), func() error {
		_, err := t.src.Run(ctx, "ping", "-n", "-c", "1", "-W", "1", t.addr.String())
		return err
	})
}

// pingUnderLoad runs one TCP stream for t.seconds and, while it runs, pings
// addr; at the end of the ping (the stream still running) it calls
// whileLoaded, which samples the daemons' memory. The stream's own result is
// returned too (its error fails the step: a ping over an idle path would be
// mislabelled).
func (t traffic) pingUnderLoad(ctx context.Context, whileLoaded func()) (Ping, Iperf, error) {
	total := time.Duration(t.seconds) * time.Second
	lead := min(500*time.Millisecond, total/4) // let the stream ramp up; stop before it ends
	count := max(int((total-2*lead)/pingInterval), 10)

	type iperfResult struct {
		r   Iperf
		err error
	}
	done := make(chan iperfResult, 1)
	go func() {
		r, err := t.iperf(ctx)
		done <- iperfResult{r, err}
	}()
	select {
	case <-time.After(lead):
	case r := <-done:
		return Ping{}, r.r, fmt.Errorf("load stream ended before the ping: %w", r.err)
	}
	p, perr := t.ping(ctx, count)
	if whileLoaded != nil {
		whileLoaded()
	}
	r := <-done
	return p, r.r, errors.Join(perr, r.err)
}
