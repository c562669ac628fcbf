package bench

// The data paths under test. Each one connects the lab's hosts in its own
// address range, so they can coexist, but the harness brings up only one at
// a time so that no idle daemon competes for CPU with the one measured.
//
//	underlay       h1 eth0 ──veth── br0 ──veth── eth0 h2      192.168.77.0/24 (the lab's)
//	vxlan          kernel VXLAN device vx0 on eth0, VNI 42     10.250.0.0/24
//	vxlan-v6       the same vx0, inner IPv6                    fd00:10:250::/64
//	weft           weft up, wireguard TUN driver, encrypted    10.244.0.0/16
//	weft-v6        weft up dual-stack, traffic on inner IPv6   10.244.0.0/16 + fd00:10:244::/56
//	weft-insecure  weft up --insecure (plaintext)              10.244.0.0/16
//	weft-water     weft up --tun-driver water, encrypted       10.244.0.0/16
//	wireguard-go   wireguard-go, configured over UAPI          10.251.0.0/24 (wireguard.go)
//
// The -v6 paths carry the same traffic in inner IPv6 packets over the same
// underlay; their ratios are to vxlan-v6 (baseline), so the 20 bytes more
// of every inner header weigh on both sides of the ratio. In the wire6
// underlay mode every path talks over the hosts' IPv6 underlay addresses
// (underlayAddr).

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/weftnet/weft/lab"
)

// Path names, as --paths takes them.
const (
	PathUnderlay     = "underlay"
	PathVXLAN        = "vxlan"
	PathVXLAN6       = "vxlan-v6"
	PathWeft         = "weft"
	PathWeft6        = "weft-v6"
	PathWeftInsecure = "weft-insecure"
	PathWeftWater    = "weft-water"
)

// AllPaths lists every path in report order: the physical limit, the
// kernel's tunnel, then weft's variants, each IPv6 path beside its IPv4 one.
var AllPaths = []string{PathUnderlay, PathVXLAN, PathVXLAN6, PathWeft, PathWeft6, PathWeftInsecure, PathWeftWater,
	PathWireguardGo}

// PathInfo says in one line what each path is, for reports.
var PathInfo = map[string]string{
	PathUnderlay:     "plain veth between the hosts' underlay addresses: the physical limit",
	PathVXLAN:        "kernel VXLAN (VNI 42, UDP 4789) between the hosts, static FDB",
	PathVXLAN6:       "the same kernel VXLAN carrying inner IPv6: the -v6 paths' baseline",
	PathWeft:         "weft, default TUN driver (wireguard/tun: batches, TSO/GRO), encrypted",
	PathWeft6:        "weft as above, dual-stack (--network twice), traffic on its inner IPv6 addresses",
	PathWeftInsecure: "weft, default TUN driver, --insecure (plaintext)",
	PathWeftWater:    "weft, --tun-driver water (one packet per syscall), encrypted",
	PathWireguardGo:  "wireguard-go (golang.zx2c4.com/wireguard, userspace WireGuard), encrypted",
}

// Overlay networks: host i gets the i-th address of vxlanNet and vxlanNet6;
// weftNet6 is the dual-stack weft's second --network.
var (
	vxlanNet  = netip.MustParsePrefix("10.250.0.0/24")
	vxlanNet6 = netip.MustParsePrefix("fd00:10:250::/64")
	weftNet6  = netip.MustParsePrefix("fd00:10:244::/56")
)

// isIPv6Path reports whether the path's traffic is IPv6.
func isIPv6Path(name string) bool { return name == PathVXLAN6 || name == PathWeft6 }

// baselineOf is the path every ratio of name is to: vxlan of the same
// address family.
func baselineOf(name string) string {
	if isIPv6Path(name) {
		return PathVXLAN6
	}
	return PathVXLAN
}

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
	// Up makes the path ready on every host of l, talking over the
	// underlay addresses of mode u (underlayAddr). It may return before
	// packets flow; the runner waits for a ping to come back.
	Up(ctx context.Context, l *lab.Lab, u Underlay) (Endpoint, error)
	// Down undoes Up, also after Up failed part-way, and stops every
	// process Up started. ctx may already be cancelled by an interrupt;
	// Down must still clean up (the lab's Close is the backstop).
	Down(ctx context.Context) error
}

// newPath returns the path called name, configured from cfg (Binary and
// Queues for the weft paths, WireguardGo for wireguard-go). dir holds the
// weft paths' run and state files.
func newPath(name string, cfg Config, dir string) (path, error) {
	weft := lab.WeftConfig{Binary: cfg.Binary, Dir: filepath.Join(dir, name)}
	if cfg.Queues > 0 && name != PathWeftWater { // water has one queue and refuses more
		weft.Args = []string{"--queues", strconv.Itoa(cfg.Queues)}
	}
	switch name {
	case PathWireguardGo:
		return &wireguardGoPath{binary: cfg.WireguardGo}, nil
	case PathUnderlay:
		return underlayPath{}, nil
	case PathVXLAN:
		return &vxlanPath{}, nil
	case PathVXLAN6:
		return &vxlanPath{v6: true}, nil
	case PathWeft:
		return &weftPath{name: name, cfg: weft}, nil
	case PathWeft6:
		weft.Network6 = weftNet6
		return &weftPath{name: name, cfg: weft, v6: true}, nil
	case PathWeftInsecure:
		weft.Insecure = true
		return &weftPath{name: name, cfg: weft}, nil
	case PathWeftWater:
		weft.Driver = "water"
		return &weftPath{name: name, cfg: weft}, nil
	}
	return nil, fmt.Errorf("unknown path %q (want one of %s)", name, strings.Join(AllPaths, ", "))
}

// underlayPath is the lab's own network: nothing to set up.
type underlayPath struct{}

func (underlayPath) Name() string { return PathUnderlay }

func (underlayPath) Up(_ context.Context, l *lab.Lab, u Underlay) (Endpoint, error) {
	return Endpoint{Dst: underlayAddr(l.Host(2), u)}, nil
}

// underlayAddr is h's underlay address in mode u: IPv6 in Wire6.
func underlayAddr(h *lab.Host, u Underlay) netip.Addr {
	if u.IPv6() {
		return h.Addr6
	}
	return h.Addr
}

func (underlayPath) Down(context.Context) error { return nil }

// vxlanPath is a kernel VXLAN device "vx0" on every host, flooding to every
// other host through all-zeros FDB entries (head-end replication), so it
// works for any number of hosts without multicast. With v6 the device gets
// IPv6 addresses instead of IPv4 ones (neighbour discovery floods as ARP
// does).
type vxlanPath struct {
	v6    bool
	hosts []*lab.Host
}

const vxlanDev = "vx0"

func (p *vxlanPath) Name() string {
	if p.v6 {
		return PathVXLAN6
	}
	return PathVXLAN
}

func (p *vxlanPath) Up(ctx context.Context, l *lab.Lab, u Underlay) (Endpoint, error) {
	p.hosts = l.Hosts
	for i, h := range l.Hosts {
		cmds := [][]string{{"ip", "link", "add", vxlanDev, "type", "vxlan", "id", "42", "dstport", "4789",
			"local", underlayAddr(h, u).String(), "dev", h.Link}}
		for _, peer := range l.Hosts {
			if peer != h {
				cmds = append(cmds, []string{"bridge", "fdb", "append", "00:00:00:00:00:00",
					"dev", vxlanDev, "dst", underlayAddr(peer, u).String()})
			}
		}
		addr := []string{"ip", "addr", "add", netip.PrefixFrom(p.addr(i+1), vxlanNet.Bits()).String(), "dev", vxlanDev}
		if p.v6 {
			// nodad: usable at once, not after duplicate address detection.
			addr = []string{"ip", "addr", "add", netip.PrefixFrom(p.addr(i+1), vxlanNet6.Bits()).String(), "dev", vxlanDev, "nodad"}
		}
		cmds = append(cmds, addr, []string{"ip", "link", "set", vxlanDev, "up"})
		for _, c := range cmds {
			if _, err := h.Run(ctx, c[0], c[1:]...); err != nil {
				return Endpoint{}, fmt.Errorf("%s: %w", p.Name(), err)
			}
		}
	}
	return Endpoint{Dst: p.addr(2)}, nil
}

// addr is host i's (1-based) address on the path's overlay.
func (p *vxlanPath) addr(i int) netip.Addr {
	if p.v6 {
		a := vxlanNet6.Addr().As16()
		a[15] = byte(i)
		return netip.AddrFrom16(a)
	}
	a := vxlanNet.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}

func (p *vxlanPath) Down(ctx context.Context) error {
	var errs []error
	for _, h := range p.hosts {
		out, err := h.Run(ctx, "ip", "link", "del", vxlanDev)
		if err != nil && !strings.Contains(out, "Cannot find device") {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
		}
	}
	p.hosts = nil
	return errors.Join(errs...)
}

// weftPath runs weft on every host with lab.StartWeft. With v6 the traffic
// goes to host 2's inner IPv6 address (cfg must be dual-stack).
type weftPath struct {
	name  string
	cfg   lab.WeftConfig
	v6    bool
	nodes []*lab.Weft
}

func (p *weftPath) Name() string { return p.name }

func (p *weftPath) Up(ctx context.Context, l *lab.Lab, u Underlay) (Endpoint, error) {
	if p.cfg.Binary == "" {
		return Endpoint{}, fmt.Errorf("%s: no weft binary configured", p.name)
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", p.name, err)
	}
	cfg := p.cfg
	cfg.IPv6Underlay = u.IPv6()
	nodes, err := l.StartWeft(ctx, cfg)
	p.nodes = nodes
	if err != nil {
		return Endpoint{}, fmt.Errorf("%s: %w", p.name, err)
	}
	ep := Endpoint{Dst: nodes[1].Addr}
	if p.v6 {
		if ep.Dst = nodes[1].Addr6; !ep.Dst.IsValid() {
			return ep, fmt.Errorf("%s: %s has no IPv6 overlay address", p.name, nodes[1].Name)
		}
	}
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
