package bench

// Parsers of the traffic tools' output: iperf3's JSON report (-J) and
// ping's per-reply lines. They are pure functions over captured text, tested
// against samples in testdata/.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrNoReplies is returned by ParsePing when not a single echo was answered.
var ErrNoReplies = errors.New("no ping replies")

// Iperf is what the harness takes from one iperf3 client run.
type Iperf struct {
	// BitsPerSecond is the rate the receiver saw (TCP: sum_received;
	// UDP: payload bytes delivered over the test time).
	BitsPerSecond float64
	// Bytes is the payload the receiver got.
	Bytes float64
	// Seconds is the receiver's measured test duration.
	Seconds float64
	// Retransmits counts TCP retransmissions (sender side); 0 for UDP.
	Retransmits int
	// UDP only: datagrams the receiver expected (highest sequence seen)
	// and how many of them never arrived.
	Packets, LostPackets int
}

// PacketsPerSecond is the rate of UDP datagrams delivered to the receiver.
func (r Iperf) PacketsPerSecond() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Packets-r.LostPackets) / r.Seconds
}

// LossPercent is the share of UDP datagrams sent but never delivered.
func (r Iperf) LossPercent() float64 {
	if r.Packets <= 0 {
		return 0
	}
	return 100 * float64(r.LostPackets) / float64(r.Packets)
}

// iperfSum is one of the "sum*" objects under "end" in iperf3's JSON.
type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	Bytes         float64 `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int     `json:"retransmits"`
	Packets       int     `json:"packets"`
	LostPackets   int     `json:"lost_packets"`
}

// ParseIperf reads the JSON report of an iperf3 client (iperf3 -c … -J).
// For TCP it takes end.sum_received (with the sender's retransmits); for
// UDP end.sum_received, or end.sum from iperf3 versions before 3.11 that do
// not split the two sides. A report carrying iperf3's "error" field is an
// error naming it.
func ParseIperf(data []byte) (Iperf, error) {
	var doc struct {
		End struct {
			Sum         *iperfSum `json:"sum"`
			SumSent     *iperfSum `json:"sum_sent"`
			SumReceived *iperfSum `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return Iperf{}, fmt.Errorf("iperf3 JSON: %w", err)
	}
	if doc.Error != "" {
		return Iperf{}, fmt.Errorf("iperf3: %s", doc.Error)
	}
	recv := doc.End.SumReceived
	if recv == nil {
		recv = doc.End.Sum
	}
	if recv == nil {
		return Iperf{}, errors.New("iperf3 JSON: no end.sum_received or end.sum")
	}
	r := Iperf{BitsPerSecond: recv.BitsPerSecond, Bytes: recv.Bytes, Seconds: recv.Seconds,
		Packets: recv.Packets, LostPackets: recv.LostPackets}
	if doc.End.SumSent != nil {
		r.Retransmits = doc.End.SumSent.Retransmits
	}
	return r, nil
}

// Ping is what the harness takes from one ping run.
type Ping struct {
	RTTs        []float64 // milliseconds, one per answered echo, in order (duplicates left out)
	Transmitted int       // from the summary line; 0 when it is missing
	Received    int
}

// P50 and P99 are the median and 99th percentile round-trip times in ms.
func (p Ping) P50() float64 { return Percentile(p.RTTs, 50) }
func (p Ping) P99() float64 { return Percentile(p.RTTs, 99) }

// LossPercent is the share of echoes not answered, from the summary line.
func (p Ping) LossPercent() float64 {
	if p.Transmitted == 0 {
		return 0
	}
	return 100 * float64(p.Transmitted-p.Received) / float64(p.Transmitted)
}

var (
	// 64 bytes from 10.99.0.2: icmp_seq=1 ttl=64 time=0.049 ms
	pingReplyRE = regexp.MustCompile(`\bicmp_seq=\d+ .*\btime[=<]([0-9.]+) ms`)
	// 30 packets transmitted, 25 received, …
	pingSummaryRE = regexp.MustCompile(`^(\d+) packets transmitted, (\d+) (?:packets )?received`)
)

// ParsePing reads the output of iputils ping (ping -n …): the time= of each
// reply, ignoring duplicates, and the transmitted/received counts. It
// returns ErrNoReplies when no reply was seen.
func ParsePing(out string) (Ping, error) {
	var p Ping
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := pingSummaryRE.FindStringSubmatch(line); m != nil {
			p.Transmitted, _ = strconv.Atoi(m[1])
			p.Received, _ = strconv.Atoi(m[2])
			continue
		}
		m := pingReplyRE.FindStringSubmatch(line)
		if m == nil || strings.Contains(line, "(DUP!)") {
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return p, fmt.Errorf("ping: bad time in %q: %w", line, err)
		}
		p.RTTs = append(p.RTTs, v)
	}
	if len(p.RTTs) == 0 {
		return p, fmt.Errorf("%w (%d transmitted)", ErrNoReplies, p.Transmitted)
	}
	return p, nil
}
