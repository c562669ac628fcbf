package node

// Live trace: `weft trace` attaches to the control socket and gets one event
// per inner packet the loops handle — where it went or why it was dropped.
// With no one attached the loops pay one atomic load per packet. With
// someone attached each event is matched against their filter and queued
// without blocking; a reader that falls behind loses events (counted and
// reported to it), never traffic.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/api"
)

// traceQueue is how many events a reader may fall behind before it loses some.
const traceQueue = 4096

type traceSub struct {
	filter api.TraceFilter
	events chan api.TraceEvent
	lost   atomic.Uint64
}

// tracer fans events out to the attached readers.
type tracer struct {
	mu   sync.Mutex
	subs atomic.Pointer[[]*traceSub] // replaced whole; nil or empty: no one attached
}

// on reports whether anyone is attached: the loops' only cost otherwise.
func (t *tracer) on() bool { return t.readers() > 0 }

// readers returns how many readers are attached.
func (t *tracer) readers() int {
	if s := t.subs.Load(); s != nil {
		return len(*s)
	}
	return 0
}

func (t *tracer) attach(f api.TraceFilter) *traceSub {
	sub := &traceSub{filter: f, events: make(chan api.TraceEvent, traceQueue)}
	t.mu.Lock()
	defer t.mu.Unlock()
	var subs []*traceSub
	if old := t.subs.Load(); old != nil {
		subs = append(subs, *old...)
	}
	subs = append(subs, sub)
	t.subs.Store(&subs)
	return sub
}

func (t *tracer) detach(sub *traceSub) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var subs []*traceSub
	for _, s := range *t.subs.Load() {
		if s != sub {
			subs = append(subs, s)
		}
	}
	t.subs.Store(&subs)
}

// packet records the fate of an inner packet pkt (parsed as ip, ok false if
// it could not be) going dir to or from peer (nil: none). reason is pass
// for delivered or sent.
func (t *tracer) packet(dir string, peer *Peer, pkt []byte, ip ipInfo, ok bool, reason dropReason) {
	e := api.TraceEvent{Time: time.Now(), Dir: dir, Size: len(pkt), Verdict: api.VerdictDropped}
	if peer != nil {
		e.Peer = peer.Name
	}
	if ok {
		e.Src, e.Dst, e.Proto = ip.src, ip.dst, ip.proto
		e.SrcPort, e.DstPort = ports(pkt, ip)
	}
	t.emit(&e, reason, pkt)
}

// datagram records a datagram from ep (peer, if known) dropped before its
// inner packet could be read.
func (t *tracer) datagram(peer *Peer, ep netip.AddrPort, size int, reason dropReason) {
	e := api.TraceEvent{Time: time.Now(), Dir: api.TraceIn, From: ep, Size: size, Verdict: api.VerdictDropped}
	if peer != nil {
		e.Peer = peer.Name
	}
	t.emit(&e, reason, nil)
}

func (t *tracer) emit(e *api.TraceEvent, reason dropReason, pkt []byte) {
	switch {
	case reason != pass:
		e.Reason = dropNames[reason]
	case e.Dir == api.TraceOut:
		e.Verdict = api.VerdictSent
	default:
		e.Verdict = api.VerdictDelivered
	}
	for _, s := range *t.subs.Load() {
		if !s.filter.Match(e) {
			continue
		}
		ev := *e
		if s.filter.Packets && pkt != nil {
			ev.Packet = append([]byte(nil), pkt...)
		}
		select {
		case s.events <- ev:
		default:
			s.lost.Add(1)
		}
	}
}

// ports returns the TCP or UDP ports of pkt, if it has them.
func ports(pkt []byte, ip ipInfo) (src, dst uint16) {
	if ip.proto != 6 && ip.proto != 17 || !ip.firstFrag {
		return 0, 0
	}
	hl := 40
	if pkt[0]>>4 == 4 {
		hl = int(pkt[0]&0x0f) * 4
	}
	if len(pkt) < hl+4 {
		return 0, 0
	}
	return binary.BigEndian.Uint16(pkt[hl:]), binary.BigEndian.Uint16(pkt[hl+2:])
}

// serveTrace streams events matching the query's filter as JSON lines
// until the reader goes away. Every second in which events were lost, a
// notice with the total lost so far goes out. A filter for a peer the node
// does not know (a typo would otherwise wait for packets forever) is 400.
func (n *Node) serveTrace(w http.ResponseWriter, r *http.Request) {
	f, err := api.ParseTraceFilter(r.URL.Query())
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	if f.Peer != "" && !n.table.Load().has(f.Peer) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("no peer named %s (weft status lists the peers)", f.Peer))
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		api.WriteError(w, http.StatusInternalServerError, fmt.Errorf("streaming not supported"))
		return
	}
	sub := n.trace.attach(f)
	defer n.trace.detach(sub)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	enc := json.NewEncoder(w)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case e := <-sub.events:
			if enc.Encode(&e) != nil {
				return
			}
			// Flush when the queue is drained: batches under load,
			// line by line when quiet.
			if len(sub.events) == 0 {
				flusher.Flush()
			}
		case <-tick.C:
			if lost := sub.lost.Load(); lost != reported {
				reported = lost
				if enc.Encode(&api.TraceEvent{Time: time.Now(), Lost: lost}) != nil {
					return
				}
				flusher.Flush()
			}
		}
	}
}
