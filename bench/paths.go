package bench

// The data paths under test. Each one connects the lab's hosts in its own
// address range, so they can coexist, but the harness brings up only one at
// a time so that no idle daemon competes for CPU with the one measured.
//
//	underlay       h1 eth0 ──veth── br0 ──veth── eth0 h2      192.168.77.0/24 (the lab's)
//	vxlan          kernel VXLAN device vx0 on eth0, VNI 42     10.250.0.0/24
//	weft           weft up, wireguard TUN driver, encrypted    10.244.0.0/16
//	weft-insecure  weft up --insecure (plaintext)              10.244.0.0/16
//	weft-water     weft up --tun-driver water, encrypted       10.244.0.0/16
//	wireguard-go   wireguard-go, configured over UAPI          10.251.0.0/24 (wireguard.go)

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/weftnet/weft/lab"
)

// Path names, as --paths takes them.
const (
	PathUnderlay     = "underlay"
	PathVXLAN        = "vxlan"
	PathWeft         = "weft"
	PathWeftInsecure = "weft-insecure"
	PathWeftWater    = "weft-water"
)

// AllPaths lists every path in report order: the physical limit, the
// kernel's tunnel, then weft's variants.
var AllPaths = []string{PathUnderlay, PathVXLAN, PathWeft, PathWeftInsecure, PathWeftWater, PathWireguardGo}

// PathInfo says in one line what each path is, for reports.
var PathInfo = map[string]string{
	PathUnderlay:     "plain veth between the hosts' underlay addresses: the physical limit",
	PathVXLAN:        "kernel VXLAN (VNI 42, UDP 4789) between the hosts, static FDB",
	PathWeft:         "weft, default TUN driver (wireguard/tun: batches, TSO/GRO), encrypted",
	PathWeftInsecure: "weft, default TUN driver, --insecure (plaintext)",
	PathWeftWater:    "weft, --tun-driver water (one packet per syscall), encrypted",
	PathWireguardGo:  "wireguard-go (golang.zx2c4.com/wireguard, userspace WireGuard), encrypted",
}

// vxlanNet holds the VXLAN overlay addresses: host i gets the i-th address.
var vxlanNet = netip.MustParsePrefix("10.250.0.0/24")

// Endpoint is what a path offers the traffic runners once it is up.
type Endpoint struct {
	// Dst is host 2's address on this path; traffic goes from host 1.
	Dst netip.Addr
	// Procs are the user-space processes that carry the path's packets
	// (one weft or wireguard-go per host); nil for kernel paths.
	Procs []*lab.Proc
}

// A path is one way of carrying traffic between the lab's hosts. Up and Down
// are called in turn from one goroutine.
type path interface {
	Name() string
	// Up makes the path ready on every host of l. It may return before
	// packets flow; the runner waits for a ping to come back.
	Up(ctx context.Context, l *lab.Lab) (Endpoint, error)
	// Down undoes Up, also after Up failed part-way, and stops every
	// process Up started. ctx may already be cancelled by an interrupt;
	// Down must still clean up (the lab's Close is the backstop).
	Down(ctx context.Context) error
}

// newPath returns the path called name. binary and dir are used by the weft
// paths: the executable, and a directory for their run and state files;
// wireguardGo by the wireguard-go path.
func newPath(name, binary, dir, wireguardGo string) (path, error) {
	switch name {
	case PathWireguardGo:
		return &wireguardGoPath{binary: wireguardGo}, nil
	case PathUnderlay:
		return underlayPath{}, nil
	case PathVXLAN:
		return &vxlanPath{}, nil
	case PathWeft:
		return &weftPath{name: name, cfg: lab.WeftConfig{Binary: binary, Dir: filepath.Join(dir, name)}}, nil
	case PathWeftInsecure:
		return &weftPath{name: name, cfg: lab.WeftConfig{Binary: binary, Dir: filepath.Join(dir, name), Insecure: true}}, nil
	case PathWeftWater:
		return &weftPath{name: name, cfg: lab.WeftConfig{Binary: binary, Dir: filepath.Join(dir, name), Driver: "water"}}, nil
	}
	return nil, fmt.Errorf("unknown path %q (want one of %s)", name, strings.Join(AllPaths, ", "))
}

// underlayPath is the lab's own network: nothing to set up.
type underlayPath struct{}

func (underlayPath) Name() string { return PathUnderlay }

func (underlayPath) Up(_ context.Context, l *lab.Lab) (Endpoint, error) {
	return Endpoint{Dst: l.Host(2).Addr}, nil
}

func (underlayPath) Down(context.Context) error { return nil }

// vxlanPath is a kernel VXLAN device "vx0" on every host, flooding to every
// other host through all-zeros FDB entries (head-end replication), so it
// works for any number of hosts without multicast.
type vxlanPath struct{ hosts []*lab.Host }

const vxlanDev = "vx0"

func (*vxlanPath) Name() string { return PathVXLAN }

func (p *vxlanPath) Up(ctx context.Context, l *lab.Lab) (Endpoint, error) {
	p.hosts = l.Hosts
	for i, h := range l.Hosts {
		cmds := [][]string{{"ip", "link", "add", vxlanDev, "type", "vxlan", "id", "42", "dstport", "4789",
			"local", h.Addr.String(), "dev", h.Link}}
		for _, peer := range l.Hosts {
			if peer != h {
				cmds = append(cmds, []string{"bridge", "fdb", "append", "00:00:00:00:00:00",
					"dev", vxlanDev, "dst", peer.Addr.String()})
			}
		}
		cmds = append(cmds,
			[]string{"ip", "addr", "add", vxlanAddr(i+1).String() + "/24", "dev", vxlanDev},
			[]string{"ip", "link", "set", vxlanDev, "up"})
		for _, c := range cmds {
			if _, err := h.Run(ctx, c[0], c[1:]...); err != nil {
				return Endpoint{}, fmt.Errorf("vxlan: %w", err)
			}
		}
	}
	return Endpoint{Dst: vxlanAddr(2)}, nil
}

func (p *vxlanPath) Down(ctx context.Context) error {
	var errs []error
	for _, h := range p.hosts {
		out, err := h.Run(ctx, "ip", "link", "del", vxlanDev)
		if err != nil && !strings.Contains(out, "Cannot find device") {
			errs = append(errs, fmt.Errorf("vxlan: %w", err))
		}
	}
	p.hosts = nil
	return errors.Join(errs...)
}

// vxlanAddr is host i's (1-based) address on the VXLAN overlay.
func vxlanAddr(i int) netip.Addr {
	a := vxlanNet.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

// weftPath runs weft on every host with lab.StartWeft.
type weftPath struct {
	name  string
	cfg   lab.WeftConfig
	nodes []*lab.Weft
}

func (p *weftPath) Name() string { return p.name }

func (p *weftPath) Up(ctx context.Context, l *lab.Lab) (Endpoint, error) {
	if p.cfg.Binary == "" {
		return Endpoint{}, fmt.Errorf("%s: no weft binary configured", p.name)
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", p.name, err)
	}
	nodes, err := l.StartWeft(ctx, p.cfg)
	p.nodes = nodes
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", p.name, err)
	}
	ep := Endpoint{Dst: nodes[1].Addr}
	for _, n := range nodes {
		ep.Procs = append(ep.Procs, n.Proc)
	}
	return ep, nil
}

// Down stops every node with SIGTERM. A node that had to be killed or
// exited with an error (crashed under load) is an error carrying the end of
// its output.
func (p *weftPath) Down(context.Context) error {
	var errs []error
	for _, n := range p.nodes {
		if n == nil || n.Proc == nil {
			continue
		}
		if err := n.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: weft on %s: %w\n%s", p.name, n.Name, err, tail(n.Proc.Output(), 2000)))
		}
	}
	p.nodes = nil
	return errors.Join(errs...)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
