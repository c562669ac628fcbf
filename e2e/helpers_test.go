package e2e

// The harness every test shares: one lab per test and driver, weft on its
// hosts, the weft CLI run inside a host, sockets made inside a namespace, and
// waits on status counters.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/lab/labtest"
	"github.com/weftnet/weft/tunnel"
)

// Timeouts of the harness; none is an assertion on speed.
const (
	labTimeout  = time.Minute      // building a lab and starting weft on it
	cmdTimeout  = 20 * time.Second // one weft CLI run
	waitTimeout = 10 * time.Second // a counter or condition to show up
	ioTimeout   = 5 * time.Second  // one datagram to arrive
)

// overlayNet is the network lab.StartWeft gives weft by default.
var overlayNet = netip.MustParsePrefix("10.244.0.0/16")

// forEachDriver checks root, /dev/net/tun and tools, then runs f once per TUN
// driver as subtests named for the driver. tag is short and unique per
// driver, for lab prefixes.
func forEachDriver(t *testing.T, tools []string, f func(t *testing.T, driver, tag string)) {
	t.Helper()
	testenv.Require(t)
	requireTools(t, append([]string{"ip", "ethtool"}, tools...)...)
	for i, d := range tunnel.Drivers {
		t.Run(d, func(t *testing.T) { f(t, d, fmt.Sprint(i)) })
	}
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	testenv.Need(t, lab.Require(tools...))
}

// prefix names a test's lab: unique per test process and name, and short.
func prefix(name string) string { return fmt.Sprintf("we%d%s", os.Getpid()%10000, name) }

// newLab builds a lab of n hosts in wire mode (offloads off, 1500-byte
// frames) and tears it down when the test ends, failed or not, checking that
// no namespace is left.
func newLab(t *testing.T, name string, hosts int) *lab.Lab {
	t.Helper()
	return labtest.New(t, lab.Config{Hosts: hosts, Prefix: prefix(name)})
}

// startWeft runs weft with driver on every host of l, statically peered, and
// returns the nodes. When the test ends every node must stop cleanly (exit 0
// on SIGTERM); if the test failed, their output goes to the test log.
func startWeft(t *testing.T, l *lab.Lab, driver string, args ...string) []*lab.Weft {
	t.Helper()
	return startWeftCfg(t, l, lab.WeftConfig{Driver: driver, Args: args})
}

// startWeftCfg is startWeft with the lab's full node configuration (Binary
// and Dir are filled in).
func startWeftCfg(t *testing.T, l *lab.Lab, cfg lab.WeftConfig) []*lab.Weft {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), labTimeout)
	defer cancel()
	cfg.Binary, cfg.Dir = weftBin, dir
	nodes, err := l.StartWeft(ctx, cfg)
	stopAtEnd(t, nodes)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// stopAtEnd stops every started node when the test ends; each must stop
// cleanly (exit 0 on SIGTERM). If the test failed, their output goes to the
// test log. Register it after the t.TempDir holding their files, so it runs
// before that is removed.
func stopAtEnd(t *testing.T, nodes []*lab.Weft) {
	t.Cleanup(func() {
		for _, n := range nodes {
			if n == nil || n.Proc == nil {
				continue
			}
			if t.Failed() {
				state := "running"
				select {
				case <-n.Proc.Done():
					state = fmt.Sprintf("exited (%v)", n.Proc.Wait())
				default:
				}
				t.Logf("weft on %s, %s; its output:\n%s", n.Name, state, n.Proc.Output())
			}
			if err := n.Stop(); err != nil {
				t.Errorf("weft on %s did not stop cleanly: %v", n.Name, err)
			}
		}
	})
}

// weftLab is newLab plus startWeft: encrypted nodes sharing a cluster key.
func weftLab(t *testing.T, name string, hosts int, driver string) (*lab.Lab, []*lab.Weft) {
	t.Helper()
	l := newLab(t, name, hosts)
	return l, startWeft(t, l, driver)
}

// insecureWeftLab is weftLab with --insecure nodes (plaintext GENEVE), for
// tests that hand-craft datagrams.
func insecureWeftLab(t *testing.T, name string, hosts int, driver string) (*lab.Lab, []*lab.Weft) {
	t.Helper()
	l := newLab(t, name, hosts)
	return l, startWeftCfg(t, l, lab.WeftConfig{Driver: driver, Insecure: true})
}

// weftRun is the result of one run of the weft binary.
type weftRun struct {
	code           int // exit code; -1 if it did not exit by itself
	stdout, stderr string
}

// runWeft runs the weft binary with args inside h and waits for it, at most
// cmdTimeout (after which it is killed and code is -1).
func runWeft(t *testing.T, h *lab.Host, args ...string) weftRun {
	t.Helper()
	return runIn(t, h, weftBin, args...)
}

// runIn is runWeft for any program (weft under a wrapper such as setpriv).
func runIn(t *testing.T, h *lab.Host, name string, args ...string) weftRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := h.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := weftRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		r.code = -1
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %s %s: %v", h, name, strings.Join(args, " "), err)
	}
	return r
}

// cliStatus runs `weft status --run-dir <w's> args...` inside w's host and
// returns its standard output.
func cliStatus(t *testing.T, w *lab.Weft, args ...string) string {
	t.Helper()
	r := runWeft(t, w.Host, append([]string{"status", "--run-dir", w.RunDir}, args...)...)
	if r.code != 0 {
		t.Fatalf("%s: weft status %v: exit %d\nstdout: %s\nstderr: %s", w.Host, args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// cliStatusJSON runs `weft status --json` and decodes its output twice: into
// api.Status and into a generic map, to check the key names themselves.
func cliStatusJSON(t *testing.T, w *lab.Weft) (api.Status, map[string]any) {
	t.Helper()
	out := cliStatus(t, w, "--json")
	var s api.Status
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%s: weft status --json: %v\n%s", w.Host, err, out)
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%s: weft status --json: %v\n%s", w.Host, err, out)
	}
	return s, m
}

// status asks w for its status over the control socket.
func status(t *testing.T, w *lab.Weft) *api.Status {
	t.Helper()
	s, err := w.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// peer returns the status of the peer named name, or fails the test.
func peer(t *testing.T, s *api.Status, name string) api.PeerStatus {
	t.Helper()
	for _, p := range s.Peers {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("%s: no peer %q in status: %+v", s.Name, name, s.Peers)
	return api.PeerStatus{}
}

// waitDrops waits until every reason in want has exactly its count on w.
func waitDrops(t *testing.T, w *lab.Weft, want map[string]uint64) {
	t.Helper()
	err := testenv.Poll(t.Context(), waitTimeout, fmt.Sprintf("%s drops %v", w.Name, want), func() error {
		s, err := w.Status(t.Context())
		if err != nil {
			return err
		}
		var diff []string
		for reason, n := range want {
			got, ok := s.Drops[reason]
			if !ok {
				return fmt.Errorf("status has no drop reason %q: %v", reason, s.Drops)
			}
			if got != n {
				diff = append(diff, fmt.Sprintf("%s=%d", reason, got))
			}
		}
		if len(diff) > 0 {
			return fmt.Errorf("have %s", strings.Join(diff, " "))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// listenUDP opens a UDP socket on addr inside h, closed when the test ends.
func listenUDP(t *testing.T, h *lab.Host, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := lab.InNetns(h, func() (*net.UDPConn, error) {
		return net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	})
	if err != nil {
		t.Fatalf("%s: listen udp %s: %v", h, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// listenTCP opens a TCP listener on addr inside h, closed when the test ends.
func listenTCP(t *testing.T, h *lab.Host, addr netip.AddrPort) *net.TCPListener {
	t.Helper()
	ln, err := lab.InNetns(h, func() (*net.TCPListener, error) {
		return net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	})
	if err != nil {
		t.Fatalf("%s: listen tcp %s: %v", h, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialTCP connects from inside h to addr, closed when the test ends.
func dialTCP(t *testing.T, h *lab.Host, addr netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := lab.InNetns(h, func() (*net.TCPConn, error) {
		d := net.Dialer{Timeout: ioTimeout}
		c, err := d.Dial("tcp", addr.String())
		if err != nil {
			return nil, err
		}
		return c.(*net.TCPConn), nil
	})
	if err != nil {
		t.Fatalf("%s: dial tcp %s: %v", h, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvUDP reads one datagram from c, waiting at most timeout.
func recvUDP(c *net.UDPConn, timeout time.Duration) ([]byte, netip.AddrPort, error) {
	buf := make([]byte, 65536)
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, netip.AddrPort{}, err
	}
	n, from, err := c.ReadFromUDPAddrPort(buf)
	return buf[:n], from, err
}

// sendUDP sends b from c to to, failing the test on error.
func sendUDP(t *testing.T, c *net.UDPConn, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatalf("send %d bytes to %s: %v", len(b), to, err)
	}
}

// ping is Host.Ping from a to b's overlay address, failing the test on error.
func ping(t *testing.T, a, b *lab.Weft, count int) {
	t.Helper()
	if err := a.Host.Ping(t.Context(), b.Addr, count); err != nil {
		t.Fatalf("ping %s → %s (%s): %v", a.Name, b.Name, b.Addr, err)
	}
}

// tcpTransfer streams total bytes of pseudo-random data from a to b's
// overlay address over TCP and checks SHA-256 at both ends. Two minutes
// bound it: a limit, not a speed requirement.
func tcpTransfer(t *testing.T, a, b *lab.Weft, total int64) {
	t.Helper()
	tcpTransferTo(t, a.Host, b.Host, b.Addr, total)
}

// tcpTransferTo is tcpTransfer from host a to the address to on host b,
// IPv4 or IPv6.
func tcpTransferTo(t *testing.T, a, b *lab.Host, to netip.Addr, total int64) {
	t.Helper()
	tcpStream(t, a, b, to, func(sent int64) bool { return sent < total })
}

// tcpTransferFor is tcpTransfer for a time instead of a size: it streams
// for d and returns how many bytes went through.
func tcpTransferFor(t *testing.T, a, b *lab.Weft, d time.Duration) int64 {
	t.Helper()
	end := time.Now().Add(d)
	return tcpStream(t, a.Host, b.Host, b.Addr, func(int64) bool { return time.Now().Before(end) })
}

// tcpStream is tcpTransferTo and tcpTransferFor: it sends to to on b while
// more says so and returns the bytes sent, all received and checked.
func tcpStream(t *testing.T, a, b *lab.Host, to netip.Addr, more func(sent int64) bool) int64 {
	t.Helper()
	dst := netip.AddrPortFrom(to, 5201)
	deadline := time.Now().Add(2 * time.Minute)
	ln := listenTCP(t, b, dst)
	ln.SetDeadline(deadline)

	type result struct {
		n   int64
		sum []byte
		err error
	}
	received := make(chan result, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			received <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		h := sha256.New()
		n, err := io.Copy(h, c)
		received <- result{n, h.Sum(nil), err}
	}()

	c := dialTCP(t, a, dst)
	c.SetDeadline(deadline)
	src := rand.NewChaCha8([32]byte{'w', 'e', 'f', 't'})
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var sent int64
	for ; more(sent); sent += int64(len(buf)) {
		src.Read(buf)
		h.Write(buf)
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("send after %d bytes: %v", sent, err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := <-received // bounded by the deadline on both sockets
	if r.err != nil {
		t.Fatalf("receive: %v after %d bytes", r.err, r.n)
	}
	if r.n != sent || !bytes.Equal(r.sum, h.Sum(nil)) {
		t.Fatalf("received %d bytes sha256 %x; sent %d bytes sha256 %x", r.n, r.sum, sent, h.Sum(nil))
	}
	return sent
}
