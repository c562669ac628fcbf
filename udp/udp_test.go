package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

// All tests use loopback only.
var (
	lo4 = netip.MustParseAddrPort("127.0.0.1:0")
	lo6 = netip.MustParseAddrPort("[::1]:0")
)

const ioTimeout = 10 * time.Second

func listen(t testing.TB, addr netip.AddrPort, gso, gro bool) *Conn {
	t.Helper()
	c, err := Listen(Config{Listen: addr, DisableGSO: !gso, DisableGRO: !gro})
	if err != nil {
		t.Fatalf("Listen(%v): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// payload makes datagram i of size n, distinct from every other datagram.
func payload(i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*131 + j*7 + 1)
	}
	return b
}

type datagram struct {
	data []byte
	from netip.AddrPort
}

// readN reads until want datagrams arrived, failing after ioTimeout; at most
// per are asked for per Read. Every datagram must be capped at its length, so
// that a caller appending to one cannot overwrite the next.
func readN(t testing.TB, c *Conn, want, per int) []datagram {
	t.Helper()
	c.uc.SetReadDeadline(time.Now().Add(ioTimeout))
	defer c.uc.SetReadDeadline(time.Time{})
	dgrams := make([][]byte, per)
	eps := make([]netip.AddrPort, per)
	var got []datagram
	for calls := 0; len(got) < want; calls++ {
		if calls > want+10 {
			t.Fatalf("read %d of %d datagrams in %d calls", len(got), want, calls)
		}
		n, err := c.Read(dgrams[:min(per, want-len(got))], eps)
		if err != nil {
			t.Fatalf("Read after %d of %d datagrams: %v", len(got), want, err)
		}
		for i := range n {
			if cap(dgrams[i]) != len(dgrams[i]) {
				t.Fatalf("datagram %d: len %d but cap %d", len(got), len(dgrams[i]), cap(dgrams[i]))
			}
			got = append(got, datagram{bytes.Clone(dgrams[i]), eps[i]})
		}
	}
	return got
}

// checkSame fails unless got holds exactly sent, in order, all from src.
func checkSame(t testing.TB, got []datagram, sent [][]byte, src netip.AddrPort) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i].data, sent[i]) {
			t.Fatalf("datagram %d: got %d bytes %x..., want %d bytes %x...", i,
				len(got[i].data), head(got[i].data), len(sent[i]), head(sent[i]))
		}
		if got[i].from != src {
			t.Fatalf("datagram %d from %v, want %v", i, got[i].from, src)
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func repeatEP(ep netip.AddrPort, n int) []netip.AddrPort {
	eps := make([]netip.AddrPort, n)
	for i := range eps {
		eps[i] = ep
	}
	return eps
}

// mixedSizes has equal runs, shorter tails, longer breaks, tiny and large
// datagrams, and more than one batch of them.
func mixedSizes() []int {
	var s []int
	for range 10 {
		s = append(s, 1200)
	}
	s = append(s, 300, 1400, 1400, 1400, 1, 1, 9000, 9000, 100)
	for i := range 120 {
		s = append(s, 1+(i*397)%1472)
	}
	for range 70 {
		s = append(s, 1000)
	}
	return append(s, 999, 20000, 8)
}

func TestRoundTrip(t *testing.T) {
	for _, fam := range []struct {
		name string
		addr netip.AddrPort
	}{{"ipv4", lo4}, {"ipv6", lo6}} {
		for _, gso := range []bool{true, false} {
			for _, gro := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/gso=%v/gro=%v", fam.name, gso, gro), func(t *testing.T) {
					snd := listen(t, fam.addr, gso, false)
					rcv := listen(t, fam.addr, false, gro)
					if got := snd.Offloads().GSO; got != gso {
						t.Errorf("sender Offloads().GSO = %v, want %v (%s)", got, gso, snd.Offloads().Reason)
					}
					if got := rcv.Offloads().GRO; got != gro {
						t.Errorf("receiver Offloads().GRO = %v, want %v (%s)", got, gro, rcv.Offloads().Reason)
					}
					var sent [][]byte
					for i, n := range mixedSizes() {
						sent = append(sent, payload(i, n))
					}
					if err := snd.Write(sent, repeatEP(rcv.LocalAddr(), len(sent))); err != nil {
						t.Fatalf("Write: %v", err)
					}
					got := readN(t, rcv, len(sent), rcv.BatchSize())
					checkSame(t, got, sent, snd.LocalAddr())
					ws, rs := snd.Stats(), rcv.Stats()
					if ws.WriteDatagrams != uint64(len(sent)) || ws.WriteErrors != 0 {
						t.Errorf("write stats %+v", ws)
					}
					if gso && ws.WriteMessages >= ws.WriteDatagrams {
						t.Errorf("GSO on but %d messages for %d datagrams", ws.WriteMessages, ws.WriteDatagrams)
					}
					if !gso && ws.WriteMessages != ws.WriteDatagrams {
						t.Errorf("GSO off but %d messages for %d datagrams", ws.WriteMessages, ws.WriteDatagrams)
					}
					t.Logf("sender %+v", ws)
					t.Logf("receiver %+v", rs)
				})
			}
		}
	}
}

func TestListenAddrInUse(t *testing.T) {
	for _, addr := range []netip.AddrPort{lo4, lo6} {
		c := listen(t, addr, true, true)
		_, err := Listen(Config{Listen: c.LocalAddr()})
		if !errors.Is(err, ErrAddrInUse) {
			t.Fatalf("second Listen(%v) = %v, want ErrAddrInUse", c.LocalAddr(), err)
		}
		if !strings.Contains(err.Error(), c.LocalAddr().String()) {
			t.Errorf("error %q does not name the address %v", err, c.LocalAddr())
		}
	}
}

func TestListenConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Listen: lo4, BatchSize: -1}, {Listen: lo4, BatchSize: 5000}} {
		if c, err := Listen(cfg); err == nil {
			c.Close()
			t.Errorf("Listen(%+v) succeeded", cfg)
		}
	}
	c, err := Listen(Config{Listen: lo4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.BatchSize() != DefaultBatchSize {
		t.Errorf("BatchSize() = %d, want %d", c.BatchSize(), DefaultBatchSize)
	}
	if !c.LocalAddr().Addr().Is4() || c.LocalAddr().Port() == 0 {
		t.Errorf("LocalAddr() = %v", c.LocalAddr())
	}
	if DefaultConfig().Listen.Port() != 6081 {
		t.Errorf("DefaultConfig() = %+v", DefaultConfig())
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	c := listen(t, lo4, true, true)
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([][]byte, 1), make([]netip.AddrPort, 1))
		done <- err
	}()
	// Wait until the reader is parked in the poller, so Close really
	// interrupts a pending read rather than racing ahead of it.
	testenv.WaitFor(t, ioTimeout, "the reader to block in Read", readerParked)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Read still blocked after Close")
	}
	if _, err := c.Read(make([][]byte, 1), make([]netip.AddrPort, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read on closed Conn = %v", err)
	}
	if err := c.Write([][]byte{{1}}, []netip.AddrPort{lo4}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write on closed Conn = %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

// readerParked reports whether some goroutine waits for I/O inside Conn.Read.
func readerParked() bool {
	buf := make([]byte, 1<<20)
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "[IO wait") && strings.Contains(g, "udp.(*Conn).Read(") {
			return true
		}
	}
	return false
}

func TestWriteBadEndpoint(t *testing.T) {
	snd := listen(t, lo4, true, false)
	rcv := listen(t, lo4, false, true)
	to := rcv.LocalAddr()
	bufs := [][]byte{payload(0, 100), payload(1, 100), payload(2, 100), payload(3, 100)}
	eps := []netip.AddrPort{to, netip.MustParseAddrPort("[::1]:9"), netip.AddrPortFrom(to.Addr(), 0), to}
	err := snd.Write(bufs, eps)
	if err == nil || !errors.Is(err, errBadEndpoint) {
		t.Fatalf("Write = %v, want errBadEndpoint", err)
	}
	checkSame(t, readN(t, rcv, 2, 8), [][]byte{bufs[0], bufs[3]}, snd.LocalAddr())
	if s := snd.Stats(); s.WriteErrors != 2 || s.WriteDatagrams != 2 {
		t.Errorf("stats %+v, want 2 errors and 2 datagrams", s)
	}
	if !snd.Offloads().GSO {
		t.Errorf("a bad endpoint turned GSO off: %+v", snd.Offloads())
	}
	if err := snd.Write(bufs, eps[:1]); err == nil {
		t.Error("Write with fewer endpoints than buffers succeeded")
	}
}

// TestConcurrentReadWrite runs Read and Write at once (for the race detector)
// and checks nothing is lost or reordered.
func TestConcurrentReadWrite(t *testing.T) {
	snd := listen(t, lo4, false, false)
	rcv := listen(t, lo4, false, true)
	const batches, per = 20, 64
	var sent [][]byte
	for i := range batches * per {
		sent = append(sent, payload(i, 1000))
	}
	errc := make(chan error, 1)
	go func() {
		eps := repeatEP(rcv.LocalAddr(), per)
		for i := range batches {
			if err := snd.Write(sent[i*per:(i+1)*per], eps); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := readN(t, rcv, len(sent), rcv.BatchSize())
	if err := <-errc; err != nil {
		t.Fatalf("Write: %v", err)
	}
	checkSame(t, got, sent, snd.LocalAddr())
	s := rcv.Stats()
	t.Logf("%d datagrams in %d recvmmsg calls", s.ReadDatagrams, s.ReadCalls)
}
