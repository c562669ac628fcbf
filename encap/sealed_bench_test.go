package encap

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestSealedNoAllocs(t *testing.T) {
	for _, c := range ciphers {
		s := newSealed(t, "a", c, 0)
		p := s.NewPeer("a")
		pkt := ipv4(1400)
		// Sealing works in place: open into the other buffer, whose
		// plaintext the next run seals.
		var bufs [2][]byte
		for i := range bufs {
			bufs[i] = make([]byte, SealedHeaderLen+len(pkt)+TagLen)
		}
		copy(bufs[0][SealedHeaderLen:], pkt)
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			d, err := s.Seal(bufs[i], SealedHeaderLen, len(pkt))
			if err != nil {
				t.Fatal(err)
			}
			i = 1 - i
			if _, err := s.OpenFrom(bufs[i][SealedHeaderLen:], d, p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: seal+open allocate %.1f times per packet", CipherName(c), allocs)
		}
	}
}

// Seal from several goroutines while keys rotate; open from several too, on
// one peer state. Every counter is used once and every packet opens once.
func TestSealedConcurrent(t *testing.T) {
	const senders, perSender = 4, 500
	tx := newSealed(t, "a", CipherAuto, 0)
	rx := newSealed(t, "b", CipherAuto, 0)
	p := rx.NewPeer("a")
	k2 := testKey(2)
	for _, s := range []*Sealed{tx, rx} {
		if _, err := s.AddKey(k2); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := tx.KeyIDs()

	dgrams := make(chan []byte, senders*perSender)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			pkt := ipv4(100)
			for range perSender {
				buf := make([]byte, SealedOverhead+len(pkt))
				copy(buf[SealedHeaderLen:], pkt)
				d, err := tx.Seal(buf, SealedHeaderLen, len(pkt))
				if err != nil {
					t.Error(err)
					return
				}
				dgrams <- d
			}
		})
	}
	wg.Go(func() { // the control goroutine
		for i := range 50 {
			if err := tx.SetPrimary(ids[i%2]); err != nil {
				t.Error(err)
			}
			_, _ = rx.KeyIDs()
		}
	})
	wg.Wait()
	close(dgrams)

	seen := map[uint64]bool{}
	var all [][]byte
	for d := range dgrams {
		o, _ := ParseSealedOption(d)
		if seen[o.Counter] {
			t.Fatalf("counter %d used twice", o.Counter)
		}
		seen[o.Counter] = true
		all = append(all, d)
	}
	var mu sync.Mutex
	opened := 0
	for i := range 4 {
		wg.Go(func() {
			for j := i; j < len(all); j += 4 {
				// 2000 packets: none can fall behind the replay window.
				if _, err := rx.OpenFrom(nil, all[j], p); err != nil {
					t.Errorf("packet %d: %v", j, err)
					continue
				}
				mu.Lock()
				opened++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if opened != senders*perSender {
		t.Fatalf("opened %d of %d", opened, senders*perSender)
	}
}

func FuzzOpenSealed(f *testing.F) {
	key := testKey(1)
	var seeds [][]byte
	for _, c := range ciphers {
		s := newSealed(f, "a", c, 1000, key)
		seeds = append(seeds, sealPkt(f, s, ipv4(20)), sealPkt(f, s, ipv6(8)), sealPkt(f, s, ipv4(300)),
			sealQueuePkt(f, s, 1, ipv4(20)), sealQueuePkt(f, s, MaxQueues-1, ipv6(8)))
		// And a later session's (a fixed id: fuzz workers rebuild the seeds).
		s = newSealed(f, "a", c, 2000, key)
		seeds = append(seeds, sealPkt(f, s, ipv4(20)), sealPkt(f, s, ipv4(60)))
	}
	for _, d := range seeds {
		f.Add(bytes.Clone(d))
	}
	plain, _ := NewPlain(7)
	f.Add(seal(f, plain, ipv4(20)))
	f.Add(seeds[0][:SealedHeaderLen])
	f.Add([]byte{0x06, 0x40, 0x88, 0xb5, 0, 0, 7, 0, 0xff, 0x57, 0x81, 0x05})
	f.Add([]byte{})
	rx := newSealed(f, "b", CipherAuto, 0, key)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		p := rx.NewPeer("a")
		inner, err := rx.OpenFrom(nil, b, p)
		if err != nil {
			return
		}
		// What opened once never opens again: the replay window of
		// whichever session it landed in holds it.
		if _, err := rx.OpenFrom(nil, in, p); err != ErrReplay {
			t.Fatalf("datagram opened twice (second time: %v): % x", err, in)
		}
		// Only what a key holder sealed opens: the fuzzer cannot forge.
		for _, d := range seeds {
			if bytes.Equal(in, d) {
				if len(inner) < 20 {
					t.Fatalf("seed opened to % x", inner)
				}
				return
			}
		}
		t.Fatalf("forged datagram opened: % x", in)
	})
}

// benchmarkSealOpen seals in place in one buffer and opens into the other,
// whose plaintext the next round seals, as a packet would cross two nodes.
func benchmarkSealOpen(b *testing.B, size int, seal func([]byte, int, int) ([]byte, error), open func(dst, d []byte) ([]byte, error), head, tail int) {
	var bufs [2][]byte
	for i := range bufs {
		bufs[i] = make([]byte, head+size+tail)
	}
	copy(bufs[0][head:], ipv4(size))
	i := 0
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		d, err := seal(bufs[i], head, size)
		if err != nil {
			b.Fatal(err)
		}
		i = 1 - i
		if _, err := open(bufs[i][head:], d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealOpen is one packet sealed and opened again: the CPU both ends
// of a tunnel spend per packet.
func BenchmarkSealOpen(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, c := range ciphers {
			b.Run(fmt.Sprintf("%s/%d", CipherName(c), size), func(b *testing.B) {
				s := newSealed(b, "a", c, 0)
				p := s.NewPeer("a")
				benchmarkSealOpen(b, size, s.Seal, func(dst, d []byte) ([]byte, error) { return s.OpenFrom(dst, d, p) }, SealedHeaderLen, TagLen)
			})
		}
		b.Run(fmt.Sprintf("plain/%d", size), func(b *testing.B) {
			c, _ := NewPlain(1)
			benchmarkSealOpen(b, size, c.Seal, func(dst, d []byte) ([]byte, error) { return c.OpenFrom(dst, d, nil) }, HeaderLen, 0)
		})
	}
}

// BenchmarkSeal is the sending half alone.
func BenchmarkSeal(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, c := range ciphers {
			b.Run(fmt.Sprintf("%s/%d", CipherName(c), size), func(b *testing.B) {
				s := newSealed(b, "a", c, 0)
				pkt := ipv4(size)
				buf := make([]byte, SealedOverhead+size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					copy(buf[SealedHeaderLen:], pkt)
					if _, err := s.Seal(buf, SealedHeaderLen, size); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkNewSession is what a datagram announcing a session the receiver
// has not seen costs before its tag can be checked (one key derivation):
// the price of a forged "new session" datagram from a spoofed peer address.
func BenchmarkNewSession(b *testing.B) {
	for _, c := range ciphers {
		b.Run(CipherName(c), func(b *testing.B) {
			k, _ := newKey(testKey(1))
			b.ReportAllocs()
			sess := uint64(1)
			for b.Loop() {
				sess++
				_ = newAEAD(k, sess, c, "a")
			}
		})
	}
}
