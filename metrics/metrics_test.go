package metrics

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/peer"
)

// fakeGossip is a Gossip with fixed answers.
type fakeGossip struct {
	leases  []membership.Lease
	members []membership.MemberStatus
	stats   map[string]uint64
	health  int
}

var _ Gossip = (*fakeGossip)(nil)

func (g *fakeGossip) Leases() []membership.Lease         { return g.leases }
func (g *fakeGossip) Members() []membership.MemberStatus { return g.members }
func (g *fakeGossip) Stats() map[string]uint64           { return g.stats }
func (g *fakeGossip) HealthScore() int                   { return g.health }

func testGossip() *fakeGossip {
	return &fakeGossip{
		leases: []membership.Lease{{Name: "h1"}, {Name: "h2"}, {Name: "h3"}},
		members: []membership.MemberStatus{
			{Name: "h2", State: peer.Alive}, {Name: "h3", State: peer.Alive}, {Name: "h4", State: peer.Dead},
		},
		stats:  map[string]uint64{"overlap": 2, "bad_meta": 0, "wrong_network": 5},
		health: 3,
	}
}

// testStatus is a node with two peers, drops, some offloads and encryption;
// every counter has its own value, so a crossed field shows.
func testStatus() api.Status {
	lastOK := time.Now()
	checked := time.UnixMilli(1_700_000_000_500)
	return api.Status{
		Name: "h1", Subnet: netip.MustParsePrefix("10.244.1.0/24"),
		Tun: api.TunStatus{Name: "weft0", Driver: "wireguard"},
		Peers: []api.PeerStatus{
			{Name: "h2", State: peer.Alive, RxPackets: 11, RxBytes: 12, TxPackets: 13, TxBytes: 14,
				Path: api.PathStatus{State: api.PathOK, RTTMs: 1.5, Loss: 0.2, LastOK: &lastOK}},
			{Name: "h3", State: peer.Static, RxPackets: 21, RxBytes: 22, TxPackets: 23, TxBytes: 24,
				Path: api.PathStatus{State: api.PathUnreachable, Loss: 1, Checked: &checked}},
		},
		Drops:      map[string]uint64{"no_route": 7, "unknown_peer": 3, "replay": 0},
		Offloads:   api.OffloadStatus{Tun: api.TunOffloads{TSO: true}, UDP: api.UDPOffloads{GSO: true, GRO: true}},
		Encryption: api.EncryptionStatus{Enabled: true, Cipher: "aes-256-gcm", KeyIDs: []int{9}, Primary: 9, Rotations: 5},
		Queues: []api.QueueStatus{
			{Queue: 0, TunReads: 101, TunReadPackets: 102, TunWrites: 103, TunWritePackets: 104,
				UDP: api.UDPStats{ReadCalls: 201, ReadMessages: 202, ReadDatagrams: 203, Oversize: 204,
					WriteCalls: 205, WriteMessages: 206, WriteDatagrams: 207, WriteErrors: 208}},
			{Queue: 1, TunReads: 301, TunReadPackets: 302, TunWrites: 303, TunWritePackets: 304,
				UDP: api.UDPStats{ReadCalls: 401, ReadMessages: 402, ReadDatagrams: 403, Oversize: 404,
					WriteCalls: 405, WriteMessages: 406, WriteDatagrams: 407, WriteErrors: 408}},
		},
	}
}

// series is one gathered sample: its labels as "k=v,k=v" (sorted) and value.
type series map[string]float64

// gather returns reg's weft_ families, name → labels → value, and their types.
func gather(t *testing.T, reg *prometheus.Registry) (map[string]series, map[string]dto.MetricType) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out, types := map[string]series{}, map[string]dto.MetricType{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "weft_") {
			continue
		}
		s := series{}
		for _, m := range f.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(kv)
			key := strings.Join(kv, ",")
			if _, dup := s[key]; dup {
				t.Errorf("%s{%s} gathered twice", f.GetName(), key)
			}
			switch {
			case m.Counter != nil:
				s[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				s[key] = m.Gauge.GetValue()
			default:
				t.Errorf("%s: neither counter nor gauge", f.GetName())
			}
		}
		out[f.GetName()], types[f.GetName()] = s, f.GetType()
	}
	return out, types
}

func TestRegistry(t *testing.T) {
	st := testStatus()
	reg := NewRegistry("1.2.3", func() api.Status { return st }, testGossip())
	got, types := gather(t, reg)

	want := map[string]series{
		"weft_build_info":                  {"version=1.2.3": 1},
		"weft_peer_received_packets_total": {"peer=h2": 11, "peer=h3": 21},
		"weft_peer_received_bytes_total":   {"peer=h2": 12, "peer=h3": 22},
		"weft_peer_sent_packets_total":     {"peer=h2": 13, "peer=h3": 23},
		"weft_peer_sent_bytes_total":       {"peer=h2": 14, "peer=h3": 24},
		"weft_peer_path_state": {
			"peer=h2,state=ok": 1, "peer=h2,state=unreachable": 0, "peer=h2,state=unknown": 0,
			"peer=h3,state=ok": 0, "peer=h3,state=unreachable": 1, "peer=h3,state=unknown": 0,
		},
		"weft_peer_path_rtt_seconds": {"peer=h2": 0.0015}, // none for h3: it never answered
		"weft_peer_path_loss_ratio":  {"peer=h2": 0.2, "peer=h3": 1},
		// h2 has no "checked" time in testStatus: no series for it.
		"weft_peer_path_checked_timestamp_seconds": {"peer=h3": 1_700_000_000.5},
		"weft_peers": {
			"state=static": 1, "state=alive": 1, "state=dead": 0, "state=left": 0,
		},
		"weft_dropped_packets_total": {"reason=no_route": 7, "reason=unknown_peer": 3, "reason=replay": 0},
		"weft_offload_enabled": {
			"device=tun,offload=tso": 1, "device=tun,offload=gro": 0,
			"device=udp,offload=gso": 1, "device=udp,offload=gro": 1,
		},
		"weft_node_info":               {"cipher=aes-256-gcm,name=h1,subnet6=,subnet=10.244.1.0/24,tun_driver=wireguard": 1},
		"weft_session_rotations_total": {"": 5},

		"weft_tun_read_calls_total":         {"queue=0": 101, "queue=1": 301},
		"weft_tun_read_packets_total":       {"queue=0": 102, "queue=1": 302},
		"weft_tun_write_calls_total":        {"queue=0": 103, "queue=1": 303},
		"weft_tun_write_packets_total":      {"queue=0": 104, "queue=1": 304},
		"weft_udp_read_calls_total":         {"queue=0": 201, "queue=1": 401},
		"weft_udp_read_messages_total":      {"queue=0": 202, "queue=1": 402},
		"weft_udp_received_datagrams_total": {"queue=0": 203, "queue=1": 403},
		"weft_udp_oversize_datagrams_total": {"queue=0": 204, "queue=1": 404},
		"weft_udp_write_calls_total":        {"queue=0": 205, "queue=1": 405},
		"weft_udp_write_messages_total":     {"queue=0": 206, "queue=1": 406},
		"weft_udp_sent_datagrams_total":     {"queue=0": 207, "queue=1": 407},
		"weft_udp_send_errors_total":        {"queue=0": 208, "queue=1": 408},

		"weft_leases":                {"": 3},
		"weft_gossip_members":        {"state=alive": 2, "state=dead": 1, "state=left": 0},
		"weft_gossip_rejected_total": {"reason=overlap": 2, "reason=bad_meta": 0, "reason=wrong_network": 5},
		"weft_gossip_health_score":   {"": 3},
	}
	for name, ws := range want {
		gs, ok := got[name]
		if !ok {
			t.Errorf("%s: not gathered", name)
			continue
		}
		for labels, v := range ws {
			if g, ok := gs[labels]; !ok {
				t.Errorf("%s{%s}: missing (have %v)", name, labels, gs)
			} else if g != v {
				t.Errorf("%s{%s} = %v, want %v", name, labels, g, v)
			}
		}
		for labels := range gs {
			if _, ok := ws[labels]; !ok {
				t.Errorf("%s{%s}: not expected", name, labels)
			}
		}
		wantType := dto.MetricType_GAUGE
		if strings.HasSuffix(name, "_total") {
			wantType = dto.MetricType_COUNTER
		}
		if types[name] != wantType {
			t.Errorf("%s is a %v, want a %v", name, types[name], wantType)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: gathered but not checked by this test", name)
		}
	}
	// weft_peers has every state, so a dashboard's zero is a series.
	if n := len(got["weft_peers"]); n != len(peer.States) {
		t.Errorf("weft_peers has %d series, want one for each of the %d peer states", n, len(peer.States))
	}
	// Exactly one path state is 1 for each peer.
	for _, p := range st.Peers {
		var ones []string
		for labels, v := range got["weft_peer_path_state"] {
			if strings.HasPrefix(labels, "peer="+p.Name+",") && v == 1 {
				ones = append(ones, labels)
			}
		}
		if len(ones) != 1 {
			t.Errorf("peer %s: path states at 1: %q, want exactly one", p.Name, ones)
		}
	}
}

// TestRegistryScrapeTime: values come from status at each scrape, and an
// insecure node's cipher is "none".
func TestRegistryScrapeTime(t *testing.T) {
	st := testStatus()
	reg := NewRegistry("dev", func() api.Status { return st }, nil)
	if got, _ := gather(t, reg); got["weft_peer_sent_packets_total"]["peer=h2"] != 13 {
		t.Fatalf("first scrape: weft_peer_sent_packets_total{peer=h2} = %v, want 13", got["weft_peer_sent_packets_total"]["peer=h2"])
	}
	st.Peers[0].TxPackets = 99
	st.Peers = st.Peers[:1] // h3 left the table
	st.Encryption = api.EncryptionStatus{}
	got, _ := gather(t, reg)
	if v := got["weft_peer_sent_packets_total"]["peer=h2"]; v != 99 {
		t.Errorf("second scrape: weft_peer_sent_packets_total{peer=h2} = %v, want 99", v)
	}
	if _, ok := got["weft_peer_sent_packets_total"]["peer=h3"]; ok {
		t.Error("a peer that left the table still has series")
	}
	if _, ok := got["weft_node_info"]["cipher=none,name=h1,subnet6=,subnet=10.244.1.0/24,tun_driver=wireguard"]; !ok {
		t.Errorf("insecure node: weft_node_info %v, want cipher=none", got["weft_node_info"])
	}
}

// TestRegistryNoGossip: with gossip off there are no gossip series.
func TestRegistryNoGossip(t *testing.T) {
	reg := NewRegistry("dev", testStatus, nil)
	got, _ := gather(t, reg)
	for name := range got {
		if strings.HasPrefix(name, "weft_gossip_") || name == "weft_leases" {
			t.Errorf("gossip off, but %s is exported", name)
		}
	}
	if _, ok := got["weft_peers"]; !ok {
		t.Error("gossip off: the node's series are missing too")
	}
	// The standard collectors are there.
	fams, _ := reg.Gather()
	var goSeen, procSeen bool
	for _, f := range fams {
		goSeen = goSeen || f.GetName() == "go_goroutines"
		procSeen = procSeen || strings.HasPrefix(f.GetName(), "process_")
	}
	if !goSeen || !procSeen {
		t.Errorf("go_goroutines gathered: %v, process_* gathered: %v; want both", goSeen, procSeen)
	}
}
