package api

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// Trace directions and verdicts.
const (
	TraceOut = "out" // from the TUN towards a peer
	TraceIn  = "in"  // from a peer towards the TUN

	VerdictSent      = "sent"
	VerdictDelivered = "delivered"
	VerdictDropped   = "dropped"
)

// TraceEvent is one packet's fate. Its JSON is what /v1/trace streams, one
// object a line.
type TraceEvent struct {
	Time    time.Time      `json:"time"`
	Dir     string         `json:"dir,omitempty"`
	Peer    string         `json:"peer,omitempty"` // the peer it went to or came from, if known
	From    netip.AddrPort `json:"from,omitzero"`  // outer source of a datagram from no known peer, or not opened
	Proto   uint8          `json:"proto,omitempty"`
	Src     netip.Addr     `json:"src,omitzero"` // inner addresses and ports; zero when the packet could not be read
	Dst     netip.Addr     `json:"dst,omitzero"`
	SrcPort uint16         `json:"sport,omitempty"`
	DstPort uint16         `json:"dport,omitempty"`
	Size    int            `json:"size"` // inner packet bytes (datagram bytes if not opened)
	Verdict string         `json:"verdict,omitempty"`
	Reason  string         `json:"reason,omitempty"` // the drop reason
	Packet  []byte         `json:"packet,omitempty"` // the inner packet, if the reader asked for packets
	Lost    uint64         `json:"lost,omitempty"`   // set on a notice (no packet): events lost to a slow reader so far
}

var protoNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}

// String is the event as `weft trace` prints it: time, direction, peer,
// protocol, inner addresses, size and verdict.
func (e *TraceEvent) String() string {
	peer := e.Peer
	if peer == "" {
		peer = "-"
	}
	what := "?"
	switch {
	case e.Src.IsValid():
		p := protoNames[e.Proto]
		if p == "" {
			p = "proto " + strconv.Itoa(int(e.Proto))
		}
		src, dst := e.Src.String(), e.Dst.String()
		if e.SrcPort != 0 || e.DstPort != 0 { // [v6]:port, v4:port
			src = netip.AddrPortFrom(e.Src, e.SrcPort).String()
			dst = netip.AddrPortFrom(e.Dst, e.DstPort).String()
		}
		what = fmt.Sprintf("%s %s > %s", p, src, dst)
	case e.From.IsValid():
		what = "datagram from " + e.From.String()
	}
	verdict := e.Verdict
	if e.Reason != "" {
		verdict += " (" + e.Reason + ")"
	}
	return fmt.Sprintf("%s %-3s %-10s %s %dB %s", e.Time.Format("15:04:05.000000"), e.Dir, peer, what, e.Size, verdict)
}

// TraceFilter selects events; zero fields match everything.
type TraceFilter struct {
	Peer      string
	Host      netip.Addr // inner source or destination
	Proto     uint8      // 0: any
	DropsOnly bool
	Packets   bool // copy the inner packet into events (for pcap)
}

// Match reports whether e passes the filter.
func (f *TraceFilter) Match(e *TraceEvent) bool {
	switch {
	case f.DropsOnly && e.Verdict != VerdictDropped:
	case f.Peer != "" && e.Peer != f.Peer:
	case f.Host.IsValid() && e.Src != f.Host && e.Dst != f.Host:
	case f.Proto != 0 && e.Proto != f.Proto:
	default:
		return true
	}
	return false
}

// Query is the filter as /v1/trace's query string.
func (f *TraceFilter) Query() url.Values {
	q := url.Values{}
	if f.Peer != "" {
		q.Set("peer", f.Peer)
	}
	if f.Host.IsValid() {
		q.Set("host", f.Host.String())
	}
	if f.Proto != 0 {
		q.Set("proto", strconv.Itoa(int(f.Proto)))
	}
	if f.DropsOnly {
		q.Set("drops", "1")
	}
	if f.Packets {
		q.Set("packets", "1")
	}
	return q
}

// protoNumbers are the names weft trace's --proto takes.
var protoNumbers = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}

// ParseTraceFilter reads a filter from /v1/trace's query. Its errors start
// with the parameter's name, which is also weft trace's flag.
func ParseTraceFilter(q url.Values) (TraceFilter, error) {
	f := TraceFilter{Peer: q.Get("peer"), DropsOnly: q.Get("drops") == "1", Packets: q.Get("packets") == "1"}
	if h := q.Get("host"); h != "" {
		a, err := netip.ParseAddr(h)
		if err != nil {
			return f, fmt.Errorf("host %q: not an IP address", h)
		}
		f.Host = a
	}
	if p := q.Get("proto"); p != "" {
		n, ok := protoNumbers[p]
		if !ok {
			v, err := strconv.ParseUint(p, 10, 8)
			if err != nil {
				return f, fmt.Errorf("proto %q: want tcp, udp, icmp, icmpv6 or a protocol number", p)
			}
			n = uint8(v)
		}
		f.Proto = n
	}
	return f, nil
}
