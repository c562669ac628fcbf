package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weftnet/weft/lab"
)

// Metrics scraped over HTTP after a known amount of traffic show it per
// peer, along with the drop, path and gossip series.
func TestMetrics(t *testing.T) {
	requireTools(t, "ping")
	l := newLab(t, "me", 2)
	nodes := startWeftCfg(t, l, lab.WeftConfig{Gossip: true, Args: []string{"--metrics-addr", "127.0.0.1:9586"}})
	h1, h2 := nodes[0], nodes[1]
	waitPeers(t, h1, h2)
	waitPath(t, h1, "h2", "ok")
	const pings = 5
	ping(t, h1, h2, pings)

	m := scrape(t, h1.Host, "127.0.0.1:9586")
	// An echo request and its reply: 84 bytes each (20 IP + 8 ICMP + 56 data).
	for name, want := range map[string]float64{
		"weft_peer_sent_packets_total":     pings,
		"weft_peer_sent_bytes_total":       pings * 84,
		"weft_peer_received_packets_total": pings,
		"weft_peer_received_bytes_total":   pings * 84,
	} {
		if got := value(t, m, name, "peer", "h2"); got != want {
			t.Errorf("%s{peer=\"h2\"} = %v, want %v", name, got, want)
		}
	}
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"weft_peer_path_state", "state", "ok", 1},
		{"weft_peer_path_state", "state", "unreachable", 0},
		{"weft_peers", "state", "alive", 1},
		{"weft_gossip_members", "state", "alive", 1},
		{"weft_dropped_packets_total", "reason", "auth_failed", 0},
		{"weft_offload_enabled", "offload", "tso", 1},
	} {
		if got := value(t, m, c.name, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	for _, name := range []string{"weft_leases", "weft_build_info", "weft_udp_sent_datagrams_total", "weft_tun_read_packets_total", "weft_peer_path_rtt_seconds", "process_resident_memory_bytes"} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if got := value(t, m, "weft_leases", "", ""); got != 2 {
		t.Errorf("weft_leases = %v, want 2", got)
	}
	if t.Failed() {
		t.Logf("metric families: %d", len(m))
	}
}

// scrape fetches http://addr/metrics from inside h and parses it.
func scrape(t *testing.T, h *lab.Host, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	conn, err := lab.InNetns(h, func() (net.Conn, error) { return net.Dial("tcp", addr) })
	if err != nil {
		t.Fatalf("connect to the metrics server in %s: %v", h, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	m, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return m
}

// value returns the value of the series of family name whose label has
// value (any series if label is empty).
func value(t *testing.T, m map[string]*dto.MetricFamily, name, label, val string) float64 {
	t.Helper()
	f, ok := m[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	for _, s := range f.GetMetric() {
		match := label == ""
		for _, l := range s.GetLabel() {
			if l.GetName() == label && l.GetValue() == val {
				match = true
			}
		}
		if !match {
			continue
		}
		switch {
		case s.Counter != nil:
			return s.Counter.GetValue()
		case s.Gauge != nil:
			return s.Gauge.GetValue()
		}
	}
	t.Fatalf("no series %s{%s=%q}: %s", name, label, val, strings.TrimSpace(fmt.Sprint(f)))
	return 0
}
