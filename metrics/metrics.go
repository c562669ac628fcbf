package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/membership"
	"github.com/weftnet/weft/peer"
)

// Gossip is what the gossip collector reads; *membership.Membership has it.
type Gossip interface {
	Leases() []membership.Lease
	Members() []membership.MemberStatus
	Stats() map[string]uint64
	HealthScore() int
}

// NewRegistry returns a registry with the node's metrics (read from status
// at scrape time), gossip's if g is not nil, weft_build_info, and Go's and
// the process's standard collectors.
func NewRegistry(version string, status func() api.Status, g Gossip) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newNodeCollector(status),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weft_build_info", Help: "The weft version running (value 1).",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
	)
	if g != nil {
		reg.MustRegister(gossipCollector{g})
	}
	return reg
}

// Serve serves reg at http://addr/metrics until ctx ends. It listens before
// returning, so a taken or bad address fails the start.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	ServeListener(ctx, ln, reg, log)
	return nil
}

// Listen binds addr (--metrics-addr) for ServeListener: the agent binds it
// before it joins a cluster, and serves once the node is up.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	return ln, nil
}

// ServeListener serves reg at /metrics on ln until ctx ends, then closes ln.
func ServeListener(ctx context.Context, ln net.Listener, reg *prometheus.Registry, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
}

// gossipCollector exports the membership's lease table, members and
// rejected announcements.
type gossipCollector struct{ g Gossip }

var (
	leasesDesc   = prometheus.NewDesc("weft_leases", "Subnet leases in the cluster's lease table, this node's included.", nil, nil)
	membersDesc  = prometheus.NewDesc("weft_gossip_members", "Other members this node knows, by state.", []string{"state"}, nil)
	rejectedDesc = prometheus.NewDesc("weft_gossip_rejected_total", "Gossip announcements rejected, by reason.", []string{"reason"}, nil)
	healthDesc   = prometheus.NewDesc("weft_gossip_health_score", "memberlist's awareness score: 0 is healthy, up to 8 when this node misses probes.", nil, nil)
)

func (c gossipCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c gossipCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(leasesDesc, prometheus.GaugeValue, float64(len(c.g.Leases())))
	states := map[peer.State]float64{peer.Alive: 0, peer.Dead: 0, peer.Left: 0}
	for _, mb := range c.g.Members() {
		states[mb.State]++
	}
	for st, v := range states {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, v, string(st))
	}
	for reason, v := range c.g.Stats() {
		ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.CounterValue, float64(v), reason)
	}
	ch <- prometheus.MustNewConstMetric(healthDesc, prometheus.GaugeValue, float64(c.g.HealthScore()))
}
