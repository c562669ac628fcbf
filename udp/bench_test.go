package udp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkLoopback writes a batch of 64 datagrams of 1400 bytes and reads
// them back, on loopback, in one goroutine (so the numbers count syscalls and
// copies, not scheduling). Without GSO, nothing coalesces on loopback: that is
// the uncoalesced-underlay case, where datagrams/read shows how many datagrams
// one recvmmsg takes.
func BenchmarkLoopback(b *testing.B) {
	const batch, size = 64, 1400
	for _, gso := range []bool{true, false} {
		b.Run(fmt.Sprintf("gso=%v", gso), func(b *testing.B) {
			snd := listen(b, lo4, gso, false)
			rcv := listen(b, lo4, false, true)
			out := make([][]byte, batch)
			for i := range out {
				out[i] = payload(i, size)
			}
			eps := repeatEP(rcv.LocalAddr(), batch)
			in := make([][]byte, rcv.BatchSize())
			from := make([]netip.AddrPort, len(in))
			// A lost datagram would block Read: fail instead, after a bound.
			rcv.uc.SetReadDeadline(time.Now().Add(2 * time.Minute))
			w0, r0 := snd.Stats(), rcv.Stats()
			b.SetBytes(batch * size)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := snd.Write(out, eps); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < batch; {
					n, err := rcv.Read(in[:batch-got], from)
					if err != nil {
						b.Fatalf("Read: %v (%d of %d datagrams)", err, got, batch)
					}
					got += n
				}
			}
			b.StopTimer()
			w, r := snd.Stats(), rcv.Stats()
			b.ReportMetric(float64(r.ReadDatagrams-r0.ReadDatagrams)/float64(r.ReadCalls-r0.ReadCalls), "datagrams/read")
			b.ReportMetric(float64(w.WriteDatagrams-w0.WriteDatagrams)/float64(w.WriteCalls-w0.WriteCalls), "datagrams/write")
			b.ReportMetric(float64(r.ReadMessages-r0.ReadMessages)/float64(r.ReadCalls-r0.ReadCalls), "msgs/read")
		})
	}
}
