package udp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPack checks how datagrams are grouped into GSO messages, without I/O.
func TestPack(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1000")
	b := netip.MustParseAddrPort("127.0.0.1:2000")
	bad := netip.MustParseAddrPort("[::1]:1000")
	type msg struct{ n, seg int } // datagrams, segment size (0: no UDP_SEGMENT)
	rep := func(n, size int) []int { return slices.Repeat([]int{size}, n) }
	for _, tc := range []struct {
		name  string
		sizes []int
		eps   []netip.AddrPort // nil: all to a
		gso   bool
		batch int
		want  []msg
		end   int // datagrams packed; 0: all
	}{
		{name: "equal run", sizes: rep(5, 100), gso: true, want: []msg{{5, 100}}},
		{name: "shorter last ends run", sizes: []int{100, 100, 50, 100}, gso: true, want: []msg{{3, 100}, {1, 0}}},
		{name: "longer breaks run", sizes: []int{100, 200, 200}, gso: true, want: []msg{{1, 0}, {2, 200}}},
		{name: "alternating endpoints", sizes: rep(4, 100), eps: []netip.AddrPort{a, b, a, b}, gso: true,
			want: []msg{{1, 0}, {1, 0}, {1, 0}, {1, 0}}},
		{name: "runs per endpoint", sizes: rep(5, 100), eps: []netip.AddrPort{a, a, b, b, a}, gso: true,
			want: []msg{{2, 100}, {2, 100}, {1, 0}}},
		{name: "64 segment cap", sizes: rep(70, 100), gso: true, want: []msg{{64, 100}, {6, 100}}},
		{name: "byte cap", sizes: rep(50, 1400), gso: true, want: []msg{{46, 1400}, {4, 1400}}},
		{name: "empty datagrams", sizes: []int{0, 0, 100, 0}, gso: true, want: []msg{{1, 0}, {1, 0}, {1, 0}, {1, 0}}},
		{name: "gso off", sizes: rep(3, 100), want: []msg{{1, 0}, {1, 0}, {1, 0}}},
		{name: "bad endpoint skipped", sizes: rep(3, 100), eps: []netip.AddrPort{a, bad, a}, gso: true, want: []msg{{2, 100}}},
		{name: "batch limit", sizes: rep(10, 100), gso: true, batch: 8, want: []msg{{8, 100}}, end: 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Conn{}
			c.wr.init(cmpOr(tc.batch, DefaultBatchSize))
			bufs := make([][]byte, len(tc.sizes))
			for i, n := range tc.sizes {
				bufs[i] = payload(i, n)
			}
			eps := tc.eps
			if eps == nil {
				eps = repeatEP(a, len(bufs))
			}
			var errs sendErrors
			nmsg, end := c.pack(bufs, eps, 0, tc.gso, &errs)
			if want := cmpOr(tc.end, len(bufs)); end != want {
				t.Errorf("end = %d, want %d", end, want)
			}
			var got []msg
			next := 0
			for _, m := range c.wr.msgs[:nmsg] {
				seg := 0
				if m.OOB != nil {
					seg = int(binary.NativeEndian.Uint16(m.OOB[unix.CmsgLen(0):]))
				}
				got = append(got, msg{len(m.Buffers), seg})
				for _, iov := range m.Buffers { // iovecs point at the caller's buffers, in order
					for next < len(bufs) && !eps[next].Addr().Is4() {
						next++
					}
					if len(iov) > 0 && &iov[0] != &bufs[next][0] {
						t.Errorf("iovec for datagram %d is a copy", next)
					}
					next++
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("messages %v, want %v", got, tc.want)
			}
		})
	}
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

func TestGSORuns(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("gro=%v", gro), func(t *testing.T) {
			snd := listen(t, lo4, true, false)
			r1 := listen(t, lo4, false, gro)
			r2 := listen(t, lo4, false, gro)
			if !snd.Offloads().GSO {
				t.Skipf("kernel has no UDP GSO: %s", snd.Offloads().Reason)
			}
			// A run with a shorter last segment, then runs alternating between
			// r1 and r2, then a run longer than 64 segments to r1.
			var sent1, sent2, bufs [][]byte
			var eps []netip.AddrPort
			add := func(to *Conn, n, size int) {
				for range n {
					p := payload(len(bufs), size)
					bufs, eps = append(bufs, p), append(eps, to.LocalAddr())
					if to == r1 {
						sent1 = append(sent1, p)
					} else {
						sent2 = append(sent2, p)
					}
				}
			}
			add(r1, 7, 1200)
			add(r1, 1, 700)
			for i := range 6 {
				add([]*Conn{r1, r2}[i%2], 1+i%3, 500)
			}
			add(r2, 1, 64)
			add(r2, 150, 400)
			if err := snd.Write(bufs, eps); err != nil {
				t.Fatalf("Write: %v", err)
			}
			checkSame(t, readN(t, r1, len(sent1), 128), sent1, snd.LocalAddr())
			checkSame(t, readN(t, r2, len(sent2), 128), sent2, snd.LocalAddr())
			s := snd.Stats()
			// One message for the 7+1 run, six alternating ones (the 64-byte
			// datagram ends the last as its shorter segment), three for the 150
			// (the first Write batch of 128 ends inside them): 10.
			if s.WriteMessages != 10 || s.WriteDatagrams != uint64(len(bufs)) {
				t.Errorf("stats %+v: want all %d datagrams in 10 messages", s, len(bufs))
			}
			t.Logf("sender %+v", s)
		})
	}
}

// TestGROSplit sends one burst of equal datagrams from a GSO sender and checks
// the GRO receiver hands them back one by one.
func TestGROSplit(t *testing.T) {
	for _, addr := range []netip.AddrPort{lo4, lo6} {
		t.Run(addr.Addr().String(), func(t *testing.T) {
			snd := listen(t, addr, true, false)
			rcv := listen(t, addr, false, true)
			const n, size = 40, 1000
			var sent [][]byte
			for i := range n {
				sent = append(sent, payload(i, size))
			}
			if err := snd.Write(sent, repeatEP(rcv.LocalAddr(), n)); err != nil {
				t.Fatal(err)
			}
			checkSame(t, readN(t, rcv, n, 128), sent, snd.LocalAddr())
			s := rcv.Stats()
			if s.ReadDatagrams != n {
				t.Errorf("ReadDatagrams = %d, want %d", s.ReadDatagrams, n)
			}
			if s.ReadMessages < n {
				t.Logf("GRO coalesced: %d datagrams in %d messages, %d recvmmsg calls", n, s.ReadMessages, s.ReadCalls)
				if s.ReadCalls >= n {
					t.Errorf("coalesced, yet %d read calls for %d datagrams", s.ReadCalls, n)
				}
			} else {
				t.Logf("kernel did not coalesce: %d messages for %d datagrams", s.ReadMessages, n)
			}
		})
	}
}

// TestLeftover reads a queued burst a few datagrams at a time: what did not
// fit one Read comes first in the next, without another syscall.
func TestLeftover(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("gro=%v", gro), func(t *testing.T) {
			snd := listen(t, lo4, true, false)
			rcv := listen(t, lo4, false, gro)
			const n, per = 20, 6
			var sent [][]byte
			for i := range n {
				sent = append(sent, payload(i, 500))
			}
			if err := snd.Write(sent, repeatEP(rcv.LocalAddr(), n)); err != nil {
				t.Fatal(err)
			}
			var got []datagram
			for reads := 0; len(got) < n; reads++ {
				if reads > n {
					t.Fatalf("%d reads for %d datagrams", reads, n)
				}
				before := rcv.Stats().ReadCalls
				pending := rcv.rd.next < rcv.rd.n
				part := readN(t, rcv, min(per, n-len(got)), per)
				if pending && rcv.Stats().ReadCalls != before {
					t.Errorf("read %d: made a syscall although datagrams were pending", reads)
				}
				got = append(got, part...)
			}
			checkSame(t, got, sent, snd.LocalAddr())
			t.Logf("%+v", rcv.Stats())
		})
	}
}

// TestMixedSizes sends small, large and GSO-run datagrams in one batch: each
// comes out whole and alone (readN checks the views are capped), and nothing
// counts as oversize.
func TestMixedSizes(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			snd := listen(t, lo4, gso, false)
			rcv := listen(t, lo4, false, true)
			small1, big, small2 := payload(0, 100), payload(1, 30000), payload(2, 1400)
			runs := [][]byte{payload(3, 1600), payload(4, 1600), payload(5, 1600)} // one GSO message when on
			last := payload(6, 10)
			bufs := append([][]byte{small1, big, small2}, append(runs, last)...)
			if err := snd.Write(bufs, repeatEP(rcv.LocalAddr(), len(bufs))); err != nil {
				t.Fatal(err)
			}
			checkSame(t, readN(t, rcv, len(bufs), 8), bufs, snd.LocalAddr())
			if s := rcv.Stats(); s.Oversize != 0 {
				t.Errorf("Oversize = %d, want 0 (%+v)", s.Oversize, s)
			}
		})
	}
}

// TestGSOFallback makes the kernel reject GSO (SO_NO_CHECK: UDP_SEGMENT needs
// checksums, so the send fails with EINVAL) and checks Write turns GSO off,
// says why, and still delivers every datagram exactly once.
func TestGSOFallback(t *testing.T) {
	snd := listen(t, lo4, true, false)
	rcv := listen(t, lo4, false, true)
	if !snd.Offloads().GSO {
		t.Skipf("kernel has no UDP GSO: %s", snd.Offloads().Reason)
	}
	rc, err := snd.uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_NO_CHECK: %v %v", err, serr)
	}
	// A single datagram first, so the rejected GSO message is not the first
	// of the sendmmsg call, then a run.
	sent := [][]byte{payload(0, 300)}
	for i := range 10 {
		sent = append(sent, payload(i+1, 1000))
	}
	if err := snd.Write(sent, repeatEP(rcv.LocalAddr(), len(sent))); err != nil {
		t.Fatalf("Write: %v", err)
	}
	checkSame(t, readN(t, rcv, len(sent), 64), sent, snd.LocalAddr())
	off := snd.Offloads()
	if off.GSO || !strings.Contains(off.Reason, "gso: disabled after send error") {
		t.Fatalf("Offloads() = %+v, want GSO off with the reason", off)
	}
	t.Logf("Offloads() = %+v", off)
	if s := snd.Stats(); s.WriteDatagrams != uint64(len(sent)) || s.WriteErrors != 0 {
		t.Errorf("stats %+v", s)
	}
	// Later writes go straight out without GSO.
	if err := snd.Write(sent, repeatEP(rcv.LocalAddr(), len(sent))); err != nil {
		t.Fatalf("second Write: %v", err)
	}
	checkSame(t, readN(t, rcv, len(sent), 64), sent, snd.LocalAddr())
}

var raceEnabled bool // set by race_test.go

func TestWriteAllocs(t *testing.T) {
	for _, gso := range []bool{true, false} {
		t.Run(fmt.Sprintf("gso=%v", gso), func(t *testing.T) {
			snd := listen(t, lo4, gso, false)
			r1 := listen(t, lo4, false, false)
			r2 := listen(t, lo6, false, false)
			snd6 := listen(t, lo6, gso, false)
			bufs := make([][]byte, 64)
			for i := range bufs {
				bufs[i] = payload(i, 1400)
			}
			eps := repeatEP(r1.LocalAddr(), len(bufs))
			eps[40] = netip.AddrPortFrom(netip.AddrFrom16(r1.LocalAddr().Addr().As16()), r1.LocalAddr().Port()) // mapped
			eps6 := repeatEP(r2.LocalAddr(), len(bufs))
			// The receivers never read: their queues fill and the kernel drops,
			// which costs the sender nothing.
			allocs := testing.AllocsPerRun(200, func() {
				if err := snd.Write(bufs, eps); err != nil {
					t.Fatal(err)
				}
				if err := snd6.Write(bufs, eps6); err != nil {
					t.Fatal(err)
				}
			})
			switch {
			case raceEnabled:
				t.Logf("race detector: %.1f allocations per call (x/net's sync.Pool), not checked", allocs)
			case allocs != 0:
				t.Errorf("Write allocates %.1f times per call", allocs)
			}
		})
	}
}
