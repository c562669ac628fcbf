package api

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseTraceFilter(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  TraceFilter
	}{
		{"", TraceFilter{}},
		{"peer=h2", TraceFilter{Peer: "h2"}},
		{"host=10.244.1.5", TraceFilter{Host: netip.MustParseAddr("10.244.1.5")}},
		{"host=fd00::1", TraceFilter{Host: netip.MustParseAddr("fd00::1")}},
		{"proto=tcp", TraceFilter{Proto: 6}},
		{"proto=udp", TraceFilter{Proto: 17}},
		{"proto=icmp", TraceFilter{Proto: 1}},
		{"proto=icmpv6", TraceFilter{Proto: 58}},
		{"proto=47", TraceFilter{Proto: 47}},
		{"proto=255", TraceFilter{Proto: 255}},
		{"drops=1", TraceFilter{DropsOnly: true}},
		{"packets=1", TraceFilter{Packets: true}},
		{"peer=h3&host=10.0.0.1&proto=udp&drops=1&packets=1",
			TraceFilter{Peer: "h3", Host: netip.MustParseAddr("10.0.0.1"), Proto: 17, DropsOnly: true, Packets: true}},
	} {
		q, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTraceFilter(q)
		if err != nil || got != tc.want {
			t.Errorf("ParseTraceFilter(%q) = %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
}

func TestParseTraceFilterErrors(t *testing.T) {
	for _, query := range []string{
		"host=10.244.1",
		"host=h2",
		"host=10.0.0.0/24",
		"proto=sctp",
		"proto=TCP",
		"proto=256",
		"proto=-1",
		"proto=6x",
	} {
		q, _ := url.ParseQuery(query)
		param, _, _ := strings.Cut(query, "=")
		_, err := ParseTraceFilter(q)
		// Errors start with the parameter's name, which is weft trace's flag.
		if err == nil || !strings.HasPrefix(err.Error(), param+" ") {
			t.Errorf("ParseTraceFilter(%q): error %v, want one starting with %q", query, err, param)
		}
	}
}

func TestTraceFilterQueryRoundTrip(t *testing.T) {
	for _, f := range []TraceFilter{
		{},
		{Peer: "h2"},
		{Host: netip.MustParseAddr("10.244.2.7")},
		{Host: netip.MustParseAddr("fd00:1::7")},
		{Proto: 6},
		{Proto: 47}, // no name: goes as a number
		{DropsOnly: true},
		{Packets: true},
		{Peer: "node-a.example", Host: netip.MustParseAddr("10.1.2.3"), Proto: 58, DropsOnly: true, Packets: true},
	} {
		// Through the wire form: encoded and parsed as the server sees it.
		q, err := url.ParseQuery(f.Query().Encode())
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTraceFilter(q)
		if err != nil || got != f {
			t.Errorf("ParseTraceFilter(%+v.Query()) = %+v, %v; want the filter back", f, got, err)
		}
	}
	if q := (&TraceFilter{}).Query(); len(q) != 0 {
		t.Errorf("the empty filter's query is %q, want empty", q.Encode())
	}
}

func TestTraceFilterMatch(t *testing.T) {
	a, b, c := netip.MustParseAddr("10.244.1.2"), netip.MustParseAddr("10.244.2.3"), netip.MustParseAddr("10.244.3.4")
	sent := TraceEvent{Dir: TraceOut, Peer: "h2", Proto: 6, Src: a, Dst: b, Verdict: VerdictSent}
	drop := TraceEvent{Dir: TraceIn, Peer: "h3", Proto: 17, Src: c, Dst: a, Verdict: VerdictDropped, Reason: "replay"}
	unknown := TraceEvent{Dir: TraceIn, From: netip.MustParseAddrPort("192.0.2.9:6081"), Verdict: VerdictDropped, Reason: "unknown_peer"}
	for _, tc := range []struct {
		f                    TraceFilter
		sent, drop, datagram bool
	}{
		{TraceFilter{}, true, true, true},
		{TraceFilter{Packets: true}, true, true, true}, // Packets selects nothing
		{TraceFilter{DropsOnly: true}, false, true, true},
		{TraceFilter{Peer: "h2"}, true, false, false},
		{TraceFilter{Peer: "h9"}, false, false, false},
		{TraceFilter{Host: a}, true, true, false}, // source or destination
		{TraceFilter{Host: b}, true, false, false},
		{TraceFilter{Host: c}, false, true, false},
		{TraceFilter{Proto: 6}, true, false, false},
		{TraceFilter{Proto: 17}, false, true, false},
		{TraceFilter{Proto: 17, Peer: "h2"}, false, false, false}, // all fields must match
		{TraceFilter{DropsOnly: true, Host: a}, false, true, false},
	} {
		for _, x := range []struct {
			e    *TraceEvent
			want bool
		}{{&sent, tc.sent}, {&drop, tc.drop}, {&unknown, tc.datagram}} {
			if got := tc.f.Match(x.e); got != x.want {
				t.Errorf("%+v.Match(%s) = %v, want %v", tc.f, x.e, got, x.want)
			}
		}
	}
}

func TestTraceEventString(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 890123000, time.UTC)
	for _, tc := range []struct {
		e    TraceEvent
		want string
	}{
		{TraceEvent{Time: at, Dir: TraceOut, Peer: "h2", Proto: 6,
			Src: netip.MustParseAddr("10.244.1.2"), SrcPort: 40000, Dst: netip.MustParseAddr("10.244.2.3"), DstPort: 5201,
			Size: 1400, Verdict: VerdictSent},
			"05:06:07.890123 out h2         tcp 10.244.1.2:40000 > 10.244.2.3:5201 1400B sent"},
		{TraceEvent{Time: at, Dir: TraceIn, From: netip.MustParseAddrPort("192.0.2.9:6081"),
			Size: 120, Verdict: VerdictDropped, Reason: "unknown_peer"},
			"05:06:07.890123 in  -          datagram from 192.0.2.9:6081 120B dropped (unknown_peer)"},
		{TraceEvent{Time: at, Dir: TraceOut, Proto: 1,
			Src: netip.MustParseAddr("10.244.1.2"), Dst: netip.MustParseAddr("10.244.99.1"),
			Size: 84, Verdict: VerdictDropped, Reason: "no_route"},
			"05:06:07.890123 out -          icmp 10.244.1.2 > 10.244.99.1 84B dropped (no_route)"},
		{TraceEvent{Time: at, Dir: TraceIn, Peer: "a-long-peer-name", Proto: 47,
			Src: netip.MustParseAddr("10.244.3.1"), Dst: netip.MustParseAddr("10.244.1.2"),
			Size: 60, Verdict: VerdictDelivered},
			"05:06:07.890123 in  a-long-peer-name proto 47 10.244.3.1 > 10.244.1.2 60B delivered"},
		{TraceEvent{Time: at, Dir: TraceIn, Peer: "h2", Size: 30, Verdict: VerdictDropped, Reason: "short"},
			"05:06:07.890123 in  h2         ? 30B dropped (short)"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("String() =\n%q\nwant\n%q", got, tc.want)
		}
	}
}

// TestTraceEventStringIPv6: an IPv6 address with a port must be bracketed,
// or "fd00::1:80" reads as the address fd00::1:80.
func TestTraceEventStringIPv6(t *testing.T) {
	e := TraceEvent{Dir: TraceOut, Peer: "h2", Proto: 6,
		Src: netip.MustParseAddr("fd00:1::2"), SrcPort: 40000, Dst: netip.MustParseAddr("fd00:2::3"), DstPort: 80,
		Size: 80, Verdict: VerdictSent}
	if got, want := e.String(), "tcp [fd00:1::2]:40000 > [fd00:2::3]:80 80B sent"; !strings.HasSuffix(got, want) {
		t.Errorf("String() = %q, want it to end %q", got, want)
	}
}
