package node

import (
	"net/http"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/encap"
)

// Status returns a snapshot of the node's state and counters.
func (n *Node) Status() api.Status {
	t := n.table.Load()
	queues, io := n.queueStatus()
	s := api.Status{
		Name: n.cfg.Name, Address: n.cfg.Address(), Subnet: n.cfg.Subnet, Network: n.cfg.Network,
		Address6: n.cfg.Address6(), Subnet6: n.cfg.Subnet6, Network6: n.cfg.Network6,
		MTU: n.mtu, UptimeSeconds: time.Since(n.started).Round(time.Second).Seconds(),
		Listen: n.cfg.Listen, Underlay: api.Underlay(n.underlay),
		Tun:          api.TunStatus{Name: n.tun.Name(), Driver: n.cfg.TunDriver},
		Peers:        make([]api.PeerStatus, 0, len(t.peers)),
		Drops:        n.drops.snapshot(),
		Offloads:     api.OffloadStatus{Tun: api.TunOffloads(n.tun.Offloads()), UDP: api.UDPOffloads(n.udpOffloads())},
		TraceReaders: n.trace.readers(),
		IPMasq:       n.cfg.IPMasq,
		IO:           io,
		Queues:       queues,
	}
	if c, ok := n.codec.(*encap.Sealed); ok {
		ids, primary := c.KeyIDs()
		s.Encryption = api.EncryptionStatus{Enabled: true, Cipher: encap.CipherName(c.Cipher()), Primary: int(primary), Session: c.Session(), KeyFile: n.cfg.KeyFile,
			Rotations: c.Rotations(), RekeyAfterSeconds: n.cfg.RekeyAfter.Seconds()}
		for _, id := range ids {
			s.Encryption.KeyIDs = append(s.Encryption.KeyIDs, int(id))
		}
	}
	if rs := n.reporters.Load(); rs != nil && rs.ttl != nil {
		s.LeaseTTL = rs.ttl.LeaseTTL().String()
	}
	now := time.Now()
	for _, p := range t.peers {
		path := api.PathStatus{State: api.PathUnknown, Reason: "not probed: the peer is " + string(p.State)}
		if p.State.Routable() {
			path = p.path.status(now, n.probeTimeout(), n.lastHeard(p), p.Endpoint)
		}
		s.Peers = append(s.Peers, api.PeerStatus{
			Name: p.Name, Subnet: p.Subnet, Subnet6: p.Subnet6, Endpoint: p.Endpoint, State: p.State,
			RxPackets: p.rxPackets.Load(), TxPackets: p.txPackets.Load(),
			RxBytes: p.rxBytes.Load(), TxBytes: p.txBytes.Load(),
			Path: path,
		})
		if last := n.lastHeard(p); !last.IsZero() {
			s.Peers[len(s.Peers)-1].LastSeen = &last
		}
	}
	return s
}

// lastHeard is when gossip last heard p: the newest of its LastSeen and what
// the node's HeardReporters say. Zero for a peer gossip does not know (a
// static one).
func (n *Node) lastHeard(p *Peer) time.Time {
	last := p.LastSeen
	if last.IsZero() {
		return last
	}
	rs := n.reporters.Load()
	if rs == nil {
		return last
	}
	for _, r := range rs.heard {
		if t, ok := r.LastHeard(p.Name); ok && t.After(last) {
			last = t
		}
	}
	return last
}

// Handlers adds the node's endpoints to the control API: status, trace and
// key rotation.
func (n *Node) Handlers(s api.Mux) {
	s.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, n.Status())
	})
	s.HandleFunc("GET /v1/trace", n.serveTrace)
	n.handleKeys(s)
}
