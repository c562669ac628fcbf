// Package metrics exports a node's state to Prometheus. Everything is read
// at scrape time from the same snapshot as `weft status` (and the gossip
// view), so the forwarding loops pay nothing for it. docs/metrics.md lists
// the metrics with example queries and alerts.
package metrics

import (
	"net/netip"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/peer"
)

// nodeCollector exports a node's status.
type nodeCollector struct {
	status func() api.Status

	peerRxPackets, peerRxBytes, peerTxPackets, peerTxBytes *prometheus.Desc
	pathState, pathRTT, pathLoss, pathChecked              *prometheus.Desc
	peers, drops, offload, info                            *prometheus.Desc
	rotations                                              *prometheus.Desc
	tunReads, tunReadPackets, tunWrites, tunWritePackets   *prometheus.Desc
	udpReads, udpReadMsgs, udpRx, udpWrites, udpWriteMsgs  *prometheus.Desc
	udpTx, udpErrors, udpOversize                          *prometheus.Desc
}

// newNodeCollector exports the status that status returns.
func newNodeCollector(status func() api.Status) *nodeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("weft_"+name, help, labels, nil)
	}
	return &nodeCollector{
		status:          status,
		peerRxPackets:   d("peer_received_packets_total", "Inner packets from the peer delivered into the TUN.", "peer"),
		peerRxBytes:     d("peer_received_bytes_total", "Bytes of inner packets from the peer delivered into the TUN.", "peer"),
		peerTxPackets:   d("peer_sent_packets_total", "Inner packets sent to the peer.", "peer"),
		peerTxBytes:     d("peer_sent_bytes_total", "Bytes of inner packets sent to the peer.", "peer"),
		pathState:       d("peer_path_state", "1 for the state the data path to the peer is in (ok, unreachable, unknown), from probes and data from the peer.", "peer", "state"),
		pathRTT:         d("peer_path_rtt_seconds", "Round-trip time of the last answered probe to the peer.", "peer"),
		pathLoss:        d("peer_path_loss_ratio", "Fraction of the last probes to the peer that went unanswered.", "peer"),
		pathChecked:     d("peer_path_checked_timestamp_seconds", "When the path state was last confirmed (an answer, data from the peer, a probe counted lost), in Unix seconds.", "peer"),
		peers:           d("peers", "Peers known, by state (static, alive, dead, left).", "state"),
		drops:           d("dropped_packets_total", "Packets and datagrams dropped, by reason (see weft status).", "reason"),
		offload:         d("offload_enabled", "1 if the offload is active on the device.", "device", "offload"),
		info:            d("node_info", "The node's name, subnet (and IPv6 subnet6 when dual-stack, else empty), TUN driver and cipher (value 1).", "name", "subnet", "subnet6", "tun_driver", "cipher"),
		rotations:       d("session_rotations_total", "Sending sessions started after the first (every --rekey-after, and after 2^28 packets)."),
		tunReads:        d("tun_read_calls_total", "TUN reads that returned packets.", "queue"),
		tunReadPackets:  d("tun_read_packets_total", "Packets TUN reads returned (TSO superpackets split).", "queue"),
		tunWrites:       d("tun_write_calls_total", "Batches written into the TUN.", "queue"),
		tunWritePackets: d("tun_write_packets_total", "Packets written into the TUN, before GRO coalescing.", "queue"),
		udpReads:        d("udp_read_calls_total", "recvmmsg calls that returned datagrams.", "queue"),
		udpReadMsgs:     d("udp_read_messages_total", "Messages received (a GRO message holds several datagrams).", "queue"),
		udpRx:           d("udp_received_datagrams_total", "Datagrams received.", "queue"),
		udpWrites:       d("udp_write_calls_total", "sendmmsg calls.", "queue"),
		udpWriteMsgs:    d("udp_write_messages_total", "Messages sent (a GSO message holds several datagrams).", "queue"),
		udpTx:           d("udp_sent_datagrams_total", "Datagrams sent.", "queue"),
		udpErrors:       d("udp_send_errors_total", "Datagrams the socket refused to send.", "queue"),
		udpOversize:     d("udp_oversize_datagrams_total", "Received datagrams dropped for being larger than a receive buffer.", "queue"),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	states := map[peer.State]float64{}
	for _, st := range peer.States {
		states[st] = 0
	}
	for _, p := range s.Peers {
		states[p.State]++
		counter(c.peerRxPackets, p.RxPackets, p.Name)
		counter(c.peerRxBytes, p.RxBytes, p.Name)
		counter(c.peerTxPackets, p.TxPackets, p.Name)
		counter(c.peerTxBytes, p.TxBytes, p.Name)
		for _, st := range api.PathStates {
			gauge(c.pathState, b2f(p.Path.State == st), p.Name, st)
		}
		if p.Path.LastOK != nil {
			gauge(c.pathRTT, p.Path.RTTMs/1000, p.Name)
		}
		gauge(c.pathLoss, p.Path.Loss, p.Name)
		if p.Path.Checked != nil {
			gauge(c.pathChecked, float64(p.Path.Checked.UnixMilli())/1000, p.Name)
		}
	}
	for st, v := range states {
		gauge(c.peers, v, string(st))
	}
	for reason, v := range s.Drops {
		counter(c.drops, v, reason)
	}
	o := s.Offloads
	gauge(c.offload, b2f(o.Tun.TSO), "tun", "tso")
	gauge(c.offload, b2f(o.Tun.GRO), "tun", "gro")
	gauge(c.offload, b2f(o.UDP.GSO), "udp", "gso")
	gauge(c.offload, b2f(o.UDP.GRO), "udp", "gro")
	cipher := "none"
	if s.Encryption.Enabled {
		cipher = s.Encryption.Cipher
	}
	gauge(c.info, 1, s.Name, s.Subnet.String(), prefixLabel(s.Subnet6), s.Tun.Driver, cipher)
	if s.Encryption.Enabled {
		counter(c.rotations, s.Encryption.Rotations)
	}
	for _, q := range s.Queues { // by pipeline: sum() them for the node
		l := strconv.Itoa(q.Queue)
		counter(c.tunReads, q.TunReads, l)
		counter(c.tunReadPackets, q.TunReadPackets, l)
		counter(c.tunWrites, q.TunWrites, l)
		counter(c.tunWritePackets, q.TunWritePackets, l)
		counter(c.udpReads, q.UDP.ReadCalls, l)
		counter(c.udpReadMsgs, q.UDP.ReadMessages, l)
		counter(c.udpRx, q.UDP.ReadDatagrams, l)
		counter(c.udpWrites, q.UDP.WriteCalls, l)
		counter(c.udpWriteMsgs, q.UDP.WriteMessages, l)
		counter(c.udpTx, q.UDP.WriteDatagrams, l)
		counter(c.udpErrors, q.UDP.WriteErrors, l)
		counter(c.udpOversize, q.UDP.Oversize, l)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// prefixLabel is p as a label value: empty when p is zero.
func prefixLabel(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
