package bench

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

// The samples were captured from iperf 3.12 between two namespaces on a veth
// pair (see testdata/).
func TestParseIperf(t *testing.T) {
	for _, tc := range []struct {
		file        string
		bps, bytes  float64
		retransmits int
		pps, loss   float64
	}{
		{file: "iperf3-tcp1.json", bps: 16857693975.537855, bytes: 2110128128, retransmits: 11210},
		{file: "iperf3-tcp4.json", bps: 35776026198.29232, bytes: 4479122704, retransmits: 12346},
		{file: "iperf3-udp64.json", bps: 270259524.611851, bytes: 33784704,
			pps: (546948 - 19062) / 1.000067, loss: 100 * 19062.0 / 546948},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := ParseIperf(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !near(r.BitsPerSecond, tc.bps) || r.Bytes != tc.bytes || r.Retransmits != tc.retransmits {
				t.Errorf("got %+v, want bps %v bytes %v retransmits %d", r, tc.bps, tc.bytes, tc.retransmits)
			}
			if !near(r.PacketsPerSecond(), tc.pps) || !near(r.LossPercent(), tc.loss) {
				t.Errorf("pps %v loss %v, want %v %v", r.PacketsPerSecond(), r.LossPercent(), tc.pps, tc.loss)
			}
		})
	}
}

func TestParseIperfUDPDeliveredMatchesBytes(t *testing.T) {
	// Delivered datagrams (packets − lost) times the 64-byte length must be
	// the receiver's byte count: the parser reads the receiver's side.
	r, err := ParseIperf(readTestdata(t, "iperf3-udp64.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(r.Packets-r.LostPackets) * 64; got != r.Bytes {
		t.Errorf("delivered × 64 = %v, receiver bytes %v", got, r.Bytes)
	}
}

func TestParseIperfOldUDPFormat(t *testing.T) {
	// iperf3 before 3.11 reports UDP only in end.sum.
	doc := `{"end": {"sum": {"seconds": 2, "bytes": 6400, "bits_per_second": 25600,
		"packets": 120, "lost_packets": 20, "lost_percent": 16.6}}}`
	r, err := ParseIperf([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if r.PacketsPerSecond() != 50 || !near(r.LossPercent(), 100*20.0/120) {
		t.Errorf("got %+v: pps %v loss %v", r, r.PacketsPerSecond(), r.LossPercent())
	}
}

func TestParseIperfErrors(t *testing.T) {
	_, err := ParseIperf(readTestdata(t, "iperf3-error.json"))
	if err == nil || !strings.Contains(err.Error(), "unable to connect to server") {
		t.Errorf("error report: got %v", err)
	}
	for _, bad := range []string{"", "iperf3: error - the server is busy", `{"end": {}}`} {
		if _, err := ParseIperf([]byte(bad)); err == nil {
			t.Errorf("ParseIperf(%q): no error", bad)
		}
	}
}

// The ping samples are iputils ping -n -i 0.01 between two namespaces; the
// "loss" one had an nftables rule drop ~30 % of the echo requests.
func TestParsePing(t *testing.T) {
	for _, tc := range []struct {
		file                  string
		n, transmitted, recv  int
		p50, p99, lossPercent float64
	}{
		{file: "ping-idle.txt", n: 20, transmitted: 20, recv: 20, p50: 0.011, p99: 0.049},
		{file: "ping-loss.txt", n: 25, transmitted: 30, recv: 25, p50: 0.044, p99: 0.081, lossPercent: 100 * 5.0 / 30},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := ParsePing(string(readTestdata(t, tc.file)))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.RTTs) != tc.n || p.Transmitted != tc.transmitted || p.Received != tc.recv {
				t.Errorf("got %d RTTs, %d/%d, want %d, %d/%d", len(p.RTTs), p.Received, p.Transmitted, tc.n, tc.recv, tc.transmitted)
			}
			if p.P50() != tc.p50 || p.P99() != tc.p99 || !near(p.LossPercent(), tc.lossPercent) {
				t.Errorf("p50 %v p99 %v loss %v, want %v %v %v", p.P50(), p.P99(), p.LossPercent(), tc.p50, tc.p99, tc.lossPercent)
			}
		})
	}
}

func TestParsePingNoReplies(t *testing.T) {
	p, err := ParsePing(string(readTestdata(t, "ping-none.txt")))
	if !errors.Is(err, ErrNoReplies) {
		t.Fatalf("got %v, want ErrNoReplies", err)
	}
	if p.Transmitted != 5 || p.Received != 0 {
		t.Errorf("got %d/%d, want 0/5", p.Received, p.Transmitted)
	}
}

func TestParsePingSkipsDuplicatesAndErrors(t *testing.T) {
	out := `PING 10.244.2.0 (10.244.2.0) 56(84) bytes of data.
64 bytes from 10.244.2.0: icmp_seq=1 ttl=64 time=1.50 ms
64 bytes from 10.244.2.0: icmp_seq=1 ttl=64 time=1.90 ms (DUP!)
From 10.244.1.0 icmp_seq=2 Destination Net Unreachable
64 bytes from 10.244.2.0: icmp_seq=3 ttl=64 time<1 ms

--- 10.244.2.0 ping statistics ---
3 packets transmitted, 2 received, +1 duplicates, +1 errors, 33.3333% packet loss, time 20ms
`
	p, err := ParsePing(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.RTTs) != 2 || p.RTTs[0] != 1.5 || p.RTTs[1] != 1 || p.Transmitted != 3 || p.Received != 2 {
		t.Errorf("got %+v", p)
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift the fields.
	line := "4242 (weft) up) S 1 4242 4242 0 -1 4194560 1830 0 0 0 250 130 0 0 20 0 9 0 1234 1262485504 3079 18446744073709551615\n"
	d, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if d.Seconds() != 3.8 {
		t.Errorf("got %v, want 3.8 s (380 ticks)", d)
	}
	if _, err := parseProcStat("4242 (weft) S 1"); err == nil {
		t.Error("short line: no error")
	}
}

func TestParseCPULine(t *testing.T) {
	a, err := parseCPULine("cpu  100 0 50 800 50 0 0 0 0 0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseCPULine("cpu  200 0 100 850 50 0 0 0 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if got := busyPercent(a, b); got != 75 {
		t.Errorf("busy %v%%, want 75%% (150 of 200 ticks)", got)
	}
	if _, err := parseCPULine("cpu0 1 2 3"); err == nil {
		t.Error("bad line: no error")
	}
}

func TestParseKiB(t *testing.T) {
	if n, err := parseKiB("   12345 kB"); err != nil || n != 12345*1024 {
		t.Errorf("got %d, %v", n, err)
	}
	if _, err := parseKiB("12 MB"); err == nil {
		t.Error("MB: no error")
	}
}
