package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/weftnet/weft/tunnel"
	"github.com/weftnet/weft/udp"
)

// Files the node keeps in its run dir; shutdown removes them, not the dir.
const (
	SocketFile    = "weft.sock"
	SubnetEnvFile = "subnet.env"
)

// Status is what `weft status` shows. Its JSON keys are a contract.
type Status struct {
	Name          string            `json:"name"`
	Address       netip.Addr        `json:"address"`
	Subnet        netip.Prefix      `json:"subnet"`
	Network       netip.Prefix      `json:"network"`
	MTU           int               `json:"mtu"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Listen        netip.AddrPort    `json:"listen"`
	Underlay      Underlay          `json:"underlay"`
	Tun           TunStatus         `json:"tun"`
	Peers         []PeerStatus      `json:"peers"`
	Drops         map[string]uint64 `json:"drops"`
	Offloads      OffloadStatus     `json:"offloads"`
}

type TunStatus struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
}

type PeerStatus struct {
	Name      string         `json:"name"`
	Subnet    netip.Prefix   `json:"subnet"`
	Endpoint  netip.AddrPort `json:"endpoint"`
	State     string         `json:"state"`
	RxPackets uint64         `json:"rx_packets"`
	TxPackets uint64         `json:"tx_packets"`
	RxBytes   uint64         `json:"rx_bytes"`
	TxBytes   uint64         `json:"tx_bytes"`
	LastSeen  *time.Time     `json:"last_seen,omitempty"` // gossiped peers only
}

// OffloadStatus says which offloads are active; a silent fall back to a slow
// path is what overlay users complain about most.
type OffloadStatus struct {
	Tun tunnel.Offloads `json:"tun"`
	UDP udp.Offloads    `json:"udp"`
}

// Status returns a snapshot of the node's state and counters.
func (n *Node) Status() Status {
	t := n.table.Load()
	s := Status{
		Name: n.cfg.Name, Address: n.cfg.Address(), Subnet: n.cfg.Subnet, Network: n.cfg.Network,
		MTU: n.mtu, UptimeSeconds: time.Since(n.started).Round(time.Second).Seconds(),
		Listen: n.cfg.Listen, Underlay: n.underlay,
		Tun:      TunStatus{Name: n.tun.Name(), Driver: n.cfg.TunDriver},
		Peers:    make([]PeerStatus, 0, len(t.peers)),
		Drops:    n.drops.snapshot(),
		Offloads: OffloadStatus{Tun: n.tun.Offloads(), UDP: n.conn.Offloads()},
	}
	for _, p := range t.peers {
		s.Peers = append(s.Peers, PeerStatus{
			Name: p.Name, Subnet: p.Subnet, Endpoint: p.Endpoint, State: p.State,
			RxPackets: p.rxPackets.Load(), TxPackets: p.txPackets.Load(),
			RxBytes: p.rxBytes.Load(), TxBytes: p.txBytes.Load(),
		})
		if !p.LastSeen.IsZero() {
			s.Peers[len(s.Peers)-1].LastSeen = &p.LastSeen
		}
	}
	return s
}

type statusServer struct {
	srv  *http.Server
	path string
}

func (s *statusServer) close() {
	s.srv.Close()
	os.Remove(s.path)
}

// serveStatus listens on <run-dir>/weft.sock (HTTP, GET /v1/status). A live
// socket means another node uses this run dir; a dead one is a crash's
// leftover and is replaced.
func (n *Node) serveStatus(ctx context.Context) (*statusServer, error) {
	if err := os.MkdirAll(n.cfg.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("--run-dir: %w", err)
	}
	path := filepath.Join(n.cfg.RunDir, SocketFile)
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("--run-dir %s: another weft is running there (%s answers)", n.cfg.RunDir, path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--run-dir: control socket: %w", err)
	}
	os.Chmod(path, 0o600) // status shows the topology: root only
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(n.Status())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go srv.Serve(ln)
	return &statusServer{srv: srv, path: path}, nil
}

// FetchStatus asks the node whose run dir is runDir for its status.
func FetchStatus(ctx context.Context, runDir string) (*Status, error) {
	path := filepath.Join(runDir, SocketFile)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://weft/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no weft node is running with --run-dir %s (%s: %w)", runDir, path, err)
		}
		return nil, fmt.Errorf("ask the node at %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("node at %s answered %s", path, resp.Status)
	}
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("decode status from %s: %w", path, err)
	}
	return &s, nil
}

// writeSubnetEnv writes <run-dir>/subnet.env for the CNI plugin and container
// runtimes, the way flannel writes its subnet.env. WEFT_SUBNET is the node's
// CIDR; a bridge takes its first usable address as gateway.
func (n *Node) writeSubnetEnv() error {
	body := fmt.Sprintf("WEFT_NETWORK=%s\nWEFT_SUBNET=%s\nWEFT_MTU=%d\nWEFT_IPMASQ=false\n",
		n.cfg.Network, n.cfg.Subnet, n.mtu)
	path := filepath.Join(n.cfg.RunDir, SubnetEnvFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return fmt.Errorf("--run-dir: write %s: %w", SubnetEnvFile, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--run-dir: write %s: %w", SubnetEnvFile, err)
	}
	return nil
}

func (n *Node) removeRunFiles() {
	os.Remove(filepath.Join(n.cfg.RunDir, SubnetEnvFile))
	os.Remove(filepath.Join(n.cfg.RunDir, SocketFile))
}
