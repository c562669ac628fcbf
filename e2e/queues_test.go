package e2e

// Parallel pipelines (--queues): many TCP flows at once, each checked end to
// end, and every queue of both nodes carrying some of them.

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
	"github.com/weftnet/weft/tunnel"
)

// TestQueuesParallelFlows runs two nodes with four queues, encrypted and
// --insecure, and sends 64 TCP flows of 2 MiB from h1 to h2 at once, each
// SHA-256-checked. Each connection has its own source port, so the kernel's
// per-flow hashing spreads them over h1's TUN queues; h2's socket group
// steers each datagram to a socket (and TUN queue) by the sending queue the
// sealed header names, or, for plain GENEVE, by a hash of the inner flow. A queue left out by chance would need all 64 flows to hash
// to the three others: 4·(3/4)^64 ≈ 4e-8. So on both nodes every queue must
// have moved packets: h1's read from its TUN queue and sent from its
// socket, h2's received on its socket and written into its TUN queue (which
// fails if steering does not work: without it all of one peer's datagrams
// land on one socket).
func TestQueuesParallelFlows(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool")
	for name, insecure := range map[string]bool{"qs": false, "qi": true} {
		t.Run(fmt.Sprintf("insecure=%v", insecure), func(t *testing.T) {
			l := newLab(t, name, 2)
			parallelFlows(t, startWeftCfg(t, l, lab.WeftConfig{Driver: tunnel.DriverWireguard, Insecure: insecure,
				Args: []string{"--queues", "4"}}))
		})
	}
}

// parallelFlows is TestQueuesParallelFlows between the first two nodes.
func parallelFlows(t *testing.T, nodes []*lab.Weft) {
	const queues, flows, each = 4, 64, 2 << 20
	a, b := nodes[0], nodes[1]

	dst := netip.AddrPortFrom(b.Addr, 5202)
	deadline := time.Now().Add(2 * time.Minute) // a bound, not a speed requirement
	ln := listenTCP(t, b.Host, dst)
	ln.SetDeadline(deadline)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	received := make(chan result, flows)
	go func() {
		for range flows {
			c, err := ln.AcceptTCP()
			if err != nil {
				received <- result{err: err}
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(deadline)
				h := sha256.New()
				n, err := io.Copy(h, c)
				received <- result{[32]byte(h.Sum(nil)), n, err}
			}()
		}
	}()

	conns := make([]*net.TCPConn, flows)
	for i := range conns {
		conns[i] = dialTCP(t, a.Host, dst)
		conns[i].SetDeadline(deadline)
	}
	sent := map[[32]byte]int{} // checksum → flows that sent it
	errs := make(chan error, flows)
	for i, c := range conns {
		data := make([]byte, each)
		rand.NewChaCha8([32]byte{'q', byte(i)}).Read(data)
		sent[sha256.Sum256(data)]++
		go func() {
			_, err := c.Write(data)
			if err == nil {
				err = c.CloseWrite()
			}
			errs <- err
		}()
	}
	for range flows {
		if err := <-errs; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	for i := range flows {
		r := <-received // bounded by the deadline on both sides
		if r.err != nil || r.n != each {
			t.Fatalf("flow %d of %d received: %d bytes, %v", i+1, flows, r.n, r.err)
		}
		if sent[r.sum] == 0 {
			t.Fatalf("flow %d of %d received %d bytes with sha256 %x, which no flow sent", i+1, flows, r.n, r.sum)
		}
		sent[r.sum]--
	}

	checkQueues(t, a.Name, status(t, a), queues, func(q api.QueueStatus) (string, uint64) {
		return "tun_read_packets", q.TunReadPackets
	}, func(q api.QueueStatus) (string, uint64) { return "udp.write_datagrams", q.UDP.WriteDatagrams })
	checkQueues(t, b.Name, status(t, b), queues, func(q api.QueueStatus) (string, uint64) {
		return "udp.read_datagrams", q.UDP.ReadDatagrams
	}, func(q api.QueueStatus) (string, uint64) { return "tun_write_packets", q.TunWritePackets })
	if p := peer(t, status(t, b), a.Name); p.RxBytes < flows*each {
		t.Errorf("%s: rx_bytes from %s is %d after %d bytes", b.Name, a.Name, p.RxBytes, flows*each)
	}
	for _, n := range nodes {
		for reason, v := range status(t, n).Drops {
			if v > 0 && (reason == "replay" || reason == "auth_failed" || reason == "old_session") {
				t.Errorf("%s: %d datagrams dropped as %s", n.Name, v, reason)
			}
		}
	}
}

// checkQueues fails unless s has want queues, numbered in order, on each of
// which every counter moved.
func checkQueues(t *testing.T, name string, s *api.Status, want int, counters ...func(api.QueueStatus) (string, uint64)) {
	t.Helper()
	if len(s.Queues) != want {
		t.Fatalf("%s: %d queues in status, want %d: %+v", name, len(s.Queues), want, s.Queues)
	}
	var idle []string
	for i, q := range s.Queues {
		if q.Queue != i {
			t.Errorf("%s: queue %d at index %d", name, q.Queue, i)
		}
		for _, c := range counters {
			if what, v := c(q); v == 0 {
				idle = append(idle, fmt.Sprintf("queue %d's %s", i, what))
			}
		}
	}
	if len(idle) > 0 {
		t.Errorf("%s: %s stayed 0; all queues: %+v", name, strings.Join(idle, ", "), s.Queues)
	}
}
