package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/weftnet/weft/encap"
	"github.com/weftnet/weft/peer"
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
	Encryption    EncryptionStatus  `json:"encryption"`
	IO            IOStatus          `json:"io"`
	TraceReaders  int               `json:"trace_readers"` // weft trace sessions attached
}

// IOStatus counts the batched I/O calls and what they carried: packets per
// call is how well batching works (see docs/performance.md).
type IOStatus struct {
	TunReads        uint64    `json:"tun_reads"`         // TUN reads that returned packets
	TunReadPackets  uint64    `json:"tun_read_packets"`  // packets they returned (TSO superpackets split)
	TunWrites       uint64    `json:"tun_writes"`        // TUN write batches
	TunWritePackets uint64    `json:"tun_write_packets"` // packets in them, before GRO coalescing
	UDP             udp.Stats `json:"udp"`
}

// ioCounters are the loops' I/O counters, bumped once per batch.
type ioCounters struct {
	tunReads, tunReadPackets   atomic.Uint64
	tunWrites, tunWritePackets atomic.Uint64
}

// EncryptionStatus says how the data path is protected.
type EncryptionStatus struct {
	Enabled bool   `json:"enabled"`
	Cipher  string `json:"cipher,omitempty"`
	KeyIDs  []int  `json:"key_ids,omitempty"`
	Primary int    `json:"primary_key_id,omitempty"` // the key this node sends with
	Session uint64 `json:"session,omitempty"`        // this run's session id (its start time in ns)
	KeyFile string `json:"key_file,omitempty"`       // the --key-file the node started with
}

type TunStatus struct {
	Name   string `json:"name"`
	Driver string `json:"driver"`
}

type PeerStatus struct {
	Name      string         `json:"name"`
	Subnet    netip.Prefix   `json:"subnet"`
	Endpoint  netip.AddrPort `json:"endpoint"`
	State     peer.State     `json:"state"`
	RxPackets uint64         `json:"rx_packets"`
	TxPackets uint64         `json:"tx_packets"`
	RxBytes   uint64         `json:"rx_bytes"`
	TxBytes   uint64         `json:"tx_bytes"`
	LastSeen  *time.Time     `json:"last_seen,omitempty"` // gossiped peers only
	Path      PathStatus     `json:"path"`
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
		Tun:          TunStatus{Name: n.tun.Name(), Driver: n.cfg.TunDriver},
		Peers:        make([]PeerStatus, 0, len(t.peers)),
		Drops:        n.drops.snapshot(),
		Offloads:     OffloadStatus{Tun: n.tun.Offloads(), UDP: n.conn.Offloads()},
		TraceReaders: n.trace.readers(),
		IO: IOStatus{
			TunReads: n.io.tunReads.Load(), TunReadPackets: n.io.tunReadPackets.Load(),
			TunWrites: n.io.tunWrites.Load(), TunWritePackets: n.io.tunWritePackets.Load(),
			UDP: n.conn.Stats(),
		},
	}
	if c, ok := n.codec.(*encap.Sealed); ok {
		ids, primary := c.KeyIDs()
		s.Encryption = EncryptionStatus{Enabled: true, Cipher: encap.CipherName(c.Cipher()), Primary: int(primary), Session: c.Session(), KeyFile: n.cfg.KeyFile}
		for _, id := range ids {
			s.Encryption.KeyIDs = append(s.Encryption.KeyIDs, int(id))
		}
	}
	now := time.Now()
	for _, p := range t.peers {
		path := PathStatus{State: PathUnknown, Reason: "not probed: the peer is " + string(p.State)}
		if p.State.Routable() {
			path = p.path.status(now, n.probeTimeout(), p.State != peer.Static, p.Endpoint)
		}
		s.Peers = append(s.Peers, PeerStatus{
			Name: p.Name, Subnet: p.Subnet, Endpoint: p.Endpoint, State: p.State,
			RxPackets: p.rxPackets.Load(), TxPackets: p.txPackets.Load(),
			RxBytes: p.rxBytes.Load(), TxBytes: p.txBytes.Load(),
			Path: path,
		})
		if !p.LastSeen.IsZero() {
			last := p.LastSeen
			for _, r := range n.heard {
				if t, ok := r.LastHeard(p.Name); ok && t.After(last) {
					last = t
				}
			}
			s.Peers[len(s.Peers)-1].LastSeen = &last
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
	n.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, n.Status())
	})
	n.mux.HandleFunc("GET /v1/trace", n.handleTrace)
	srv := &http.Server{Handler: n.mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go srv.Serve(ln)
	return &statusServer{srv: srv, path: path}, nil
}

// Handle adds an endpoint to the node's control socket (for the parts cmd
// wires beside the node, e.g. leases). Call it before Run.
func (n *Node) Handle(pattern string, h http.Handler) { n.mux.Handle(pattern, h) }

// WriteJSON answers a control request with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// FetchStatus asks the node whose run dir is runDir for its status.
func FetchStatus(ctx context.Context, runDir string) (*Status, error) {
	var s Status
	if err := Call(ctx, runDir, http.MethodGet, "/v1/status", nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Call sends a request to the control socket of the node running with
// runDir, with in as its JSON body (if not nil), and decodes its JSON answer
// into out (if not nil). An answer other than 2xx is an error carrying the
// node's message ({"error": "…"}).
func Call(ctx context.Context, runDir, method, path string, in, out any) error {
	resp, err := do(ctx, runDir, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode the answer of %s: %w", filepath.Join(runDir, SocketFile), err)
	}
	return nil
}

// do sends a request to the control socket and returns a 2xx answer; any
// other answer is an error with the node's message.
func do(ctx context.Context, runDir, method, path string, in any) (*http.Response, error) {
	sock := filepath.Join(runDir, SocketFile)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://weft"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("no weft node is running with --run-dir %s (%s: %w)", runDir, sock, err)
		}
		return nil, fmt.Errorf("ask the node at %s: %w", sock, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct{ Error string }
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("node at %s answered %s", sock, resp.Status)
	}
	return resp, nil
}

// Stream opens a streaming GET of path on the control socket of the node
// running with runDir and returns the body; the caller closes it (or ends
// ctx) to stop.
func Stream(ctx context.Context, runDir, path string) (io.ReadCloser, error) {
	resp, err := do(ctx, runDir, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// WriteError answers a control request with an error message Call returns.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, map[string]string{"error": err.Error()})
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
