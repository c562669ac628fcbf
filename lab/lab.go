// Package lab builds throwaway networks out of Linux network namespaces: N
// hosts, each with one veth ("eth0") plugged into a bridge that lives in a
// separate underlay namespace. weft's end-to-end tests run the real binary on
// each host, `weft lab` demonstrates it, and `weft bench` compares data paths
// (plain veth, kernel VXLAN, weft) on the same hosts.
//
// Topology for Hosts=2, Prefix "weft-lab", Underlay 192.168.77.0/24:
//
//	weft-lab-h1                     weft-lab-u                     weft-lab-h2
//	eth0 192.168.77.1 ─veth─ h1 ┐                         ┌ h2 ─veth─ eth0 192.168.77.2
//	                            └── br0 192.168.77.254 ───┘
//
// Host i (1-based) gets the i-th address of the underlay prefix; the bridge
// holds the last usable address (.254 in a /24) and is every host's default
// gateway, so software looking for "the default-route interface" finds eth0
// (unless Config.NAT moves the default route to a port-less "nat0", the trap of
// lab VMs whose NAT interface has the same address on every VM).
// ip_forward is off in the underlay namespace, so nothing leaves it, and on in
// the hosts, which forward for their containers.
//
// Nothing touches the root namespace: veth pairs are created directly inside
// the lab's namespaces (ip -n U link add … peer … netns H), so their names
// never exist in the root namespace and cannot collide with its interfaces.
// Deleting the namespaces deletes the veths and the bridge with them.
//
// Close stops processes and deletes the namespaces; CloseAll does it for
// every open lab from a signal handler. If the harness itself is SIGKILLed,
// processes started through the lab die with it (Pdeathsig), but their own
// children and the namespaces survive until Cleanup(prefix).
//
// The package shells out to ip(8) and ethtool(8): it is a harness, not the
// agent. Every command it runs is bounded by a timeout.
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Timeouts for the lab's own shell-outs and teardown.
const (
	cmdTimeout   = 15 * time.Second // one ip/ethtool/tee invocation
	linkTimeout  = 5 * time.Second  // eth0 reaching operstate UP
	stopGrace    = 3 * time.Second  // SIGTERM → SIGKILL in Close
	closeTimeout = 30 * time.Second // whole teardown
)

// Interface names inside the namespaces.
const (
	hostLink   = "eth0"
	bridgeLink = "br0"
	natLink    = "nat0" // Config.NAT
)

var (
	// ErrExists means a namespace the lab would create already exists,
	// usually left over by a crashed run; Cleanup(prefix) removes it.
	ErrExists = errors.New("namespace already exists")
	// ErrClosed is returned by Start after the lab was closed.
	ErrClosed = errors.New("lab closed")
)

// Config describes a lab. The zero value of every field means its default.
type Config struct {
	// Hosts is the number of host namespaces. Default 2.
	Hosts int
	// Prefix names the namespaces: <Prefix>-u (underlay) and
	// <Prefix>-h1..<Prefix>-hN. Letters, digits, '.', '_' and '-', at most
	// 24 characters. Default "weft-lab". Use a unique prefix per test.
	Prefix string
	// Underlay is the IPv4 prefix of the underlay network, which exists
	// only inside the lab's namespaces. Host i gets Underlay.Addr()+i, the
	// bridge (every host's default gateway) the last usable address.
	// Default 192.168.77.0/24.
	Underlay netip.Prefix
	// Underlay6, if set, is an IPv6 prefix (a /64 or longer… at most /120)
	// added beside Underlay: host i gets its i-th address as Host.Addr6, the
	// bridge the last one. weft nodes then may use the IPv6 underlay alone
	// (WeftConfig.IPv6Underlay). Zero: IPv4 only.
	Underlay6 netip.Prefix
	// NAT, if set, gives every host a second interface, "nat0", with this
	// same address on every host, and moves the default route onto it: a
	// VirtualBox VM's NAT interface (10.0.2.15/24), which software looking
	// for "the default-route interface" picks although the hosts share
	// only eth0. nat0 is a bridge without ports inside the host's
	// namespace (a dummy device needs a module not every kernel has): it
	// drops whatever it is given, so nothing sent there leaves the host.
	NAT netip.Prefix
	// MTU of the underlay veths and bridge, in bytes. Default 1500.
	MTU int
	// Offloads keeps the kernel's default veth offloads. False ("wire"
	// mode) turns GSO, TSO, GRO and UDP segmentation off on both ends of
	// every underlay veth, so packets crossing the underlay are at most MTU
	// bytes, as on a real wire. False needs ethtool.
	Offloads bool
	// Queues is the number of transmit and receive queues of every
	// underlay veth (numtxqueues/numrxqueues), so the kernel can spread
	// flows over cores as a multi-queue NIC does. Default min(CPUs, 8).
	Queues int
	// LogDir, if set, receives a copy of the output of every process
	// started with Host.Start, one file <netns>-<program>-<n>.log each.
	LogDir string
	// Log receives progress messages; nil means quiet.
	Log *slog.Logger
}

// DefaultConfig returns the defaults: 2 hosts, prefix "weft-lab",
// 192.168.77.0/24, MTU 1500, offloads off, min(CPUs, 8) veth queues.
func DefaultConfig() Config {
	return Config{
		Hosts:    2,
		Prefix:   "weft-lab",
		Underlay: netip.MustParsePrefix("192.168.77.0/24"),
		MTU:      1500,
		Queues:   min(runtime.NumCPU(), 8),
	}
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,24}$`)

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Hosts == 0 {
		c.Hosts = d.Hosts
	}
	if c.Prefix == "" {
		c.Prefix = d.Prefix
	}
	if !c.Underlay.IsValid() {
		c.Underlay = d.Underlay
	}
	if c.MTU == 0 {
		c.MTU = d.MTU
	}
	if c.Queues == 0 {
		c.Queues = d.Queues
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Hosts < 1:
		return c, fmt.Errorf("lab: Hosts %d: need at least 1", c.Hosts)
	case !prefixRE.MatchString(c.Prefix):
		return c, fmt.Errorf("lab: Prefix %q: want 1-24 of [A-Za-z0-9._-]", c.Prefix)
	case !c.Underlay.Addr().Is4():
		return c, fmt.Errorf("lab: Underlay %v: only IPv4 is supported", c.Underlay)
	case c.Underlay6.IsValid() && (!c.Underlay6.Addr().Is6() || c.Underlay6.Bits() > 120):
		return c, fmt.Errorf("lab: Underlay6 %v: want an IPv6 prefix of at most /120", c.Underlay6)
	case c.MTU < 576 || c.MTU > 65535:
		return c, fmt.Errorf("lab: MTU %d: want 576..65535", c.MTU)
	case c.NAT.IsValid() && (!c.NAT.Addr().Is4() || c.NAT.Overlaps(c.Underlay)):
		return c, fmt.Errorf("lab: NAT %v: want an IPv4 prefix outside Underlay %v", c.NAT, c.Underlay)
	case c.Queues < 1 || c.Queues > 64:
		return c, fmt.Errorf("lab: Queues %d: want 1..64", c.Queues)
	}
	c.Underlay, c.Underlay6 = c.Underlay.Masked(), c.Underlay6.Masked()
	// Usable addresses are base+1 .. broadcast-1; the gateway takes the last.
	if usable := uint64(1)<<(32-c.Underlay.Bits()) - 2; uint64(c.Hosts)+1 > usable {
		return c, fmt.Errorf("lab: Underlay %v holds %d addresses, %d hosts need %d", c.Underlay, usable, c.Hosts, c.Hosts+1)
	}
	return c, nil
}

// nthAddr returns the n-th address after the prefix's network address.
func nthAddr(p netip.Prefix, n uint32) netip.Addr {
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Lab is a set of host namespaces joined by an underlay bridge. Its methods
// are safe for concurrent use.
type Lab struct {
	// Hosts are h1..hN; Hosts[i-1] is Host(i).
	Hosts []*Host
	// Switch is the underlay namespace: Link is the bridge "br0", Addr the
	// gateway address. Use it for tc/netem on a host's Port, or tcpdump.
	Switch *Host
	// Underlay is the underlay prefix (Config.Underlay after defaults).
	Underlay netip.Prefix
	// Underlay6 is Config.Underlay6: zero, or the underlay's IPv6 prefix.
	Underlay6 netip.Prefix

	cfg Config
	log *slog.Logger

	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex // guards the fields below
	closed bool
	netns  []string // namespaces this lab created, in creation order
	procs  []*Proc  // everything started with Host.Start
	seq    int      // numbers log files
}

// live holds every Lab not yet closed, for CloseAll.
var live sync.Map // *Lab → struct{}

// New builds the lab described by cfg. On error it tears down whatever it
// built. ctx bounds the build (each step is also bounded by a timeout).
func New(ctx context.Context, cfg Config) (_ *Lab, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tools := []string{"ip", "tee"}
	if !cfg.Offloads {
		tools = append(tools, "ethtool")
	}
	if err := Require(tools...); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	l := &Lab{Underlay: cfg.Underlay, Underlay6: cfg.Underlay6, cfg: cfg, log: cfg.Log.With("lab", cfg.Prefix)}
	gw := nthAddr(cfg.Underlay, uint32(1)<<(32-cfg.Underlay.Bits())-2)
	l.Switch = &Host{Name: "u", Netns: cfg.Prefix + "-u", Addr: gw, Addr6: nthAddr6(cfg.Underlay6, 0xfe), Link: bridgeLink, lab: l}
	for i := 1; i <= cfg.Hosts; i++ {
		name := fmt.Sprintf("h%d", i)
		l.Hosts = append(l.Hosts, &Host{
			Name: name, Netns: cfg.Prefix + "-" + name, Addr: nthAddr(cfg.Underlay, uint32(i)),
			Addr6: nthAddr6(cfg.Underlay6, byte(i)), Link: hostLink, Port: name, lab: l,
		})
	}

	existing, err := listNetns(ctx)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	for _, h := range l.all() {
		if existing[h.Netns] {
			return nil, fmt.Errorf("lab: %s: %w (leftover of a crashed run? lab.Cleanup(%q) removes it)", h.Netns, ErrExists, cfg.Prefix)
		}
	}

	live.Store(l, struct{}{})
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	start := time.Now()
	if err := l.buildSwitch(ctx); err != nil {
		return nil, fmt.Errorf("lab: underlay %s: %w", l.Switch.Netns, err)
	}
	for _, h := range l.Hosts {
		if err := l.buildHost(ctx, h); err != nil {
			return nil, fmt.Errorf("lab: host %s: %w", h.Netns, err)
		}
	}
	for _, h := range l.all() {
		if err := l.addIPv6(ctx, h); err != nil {
			return nil, fmt.Errorf("lab: IPv6 underlay on %s: %w", h.Netns, err)
		}
	}
	for _, h := range l.Hosts {
		err := WaitFor(ctx, linkTimeout, h.Netns+" eth0 up", func() error {
			out, err := run(ctx, "ip", "-n", h.Netns, "-o", "link", "show", "dev", hostLink)
			if err == nil && !strings.Contains(out, "state UP") {
				err = fmt.Errorf("link not up: %s", strings.TrimSpace(out))
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("lab: %w", err)
		}
	}
	l.log.Info("lab up", "hosts", cfg.Hosts, "underlay", cfg.Underlay, "mtu", cfg.MTU,
		"offloads", cfg.Offloads, "took", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// Host returns host i, 1-based (Host(1) is h1). It panics when i is out of range.
func (l *Lab) Host(i int) *Host { return l.Hosts[i-1] }

func (l *Lab) all() []*Host { return append([]*Host{l.Switch}, l.Hosts...) }

// addNetns creates a namespace and records it for Close.
func (l *Lab) addNetns(ctx context.Context, name string) error {
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return err
	}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.netns = append(l.netns, name)
	}
	l.mu.Unlock()
	if closed { // Close took its list while this one was being made
		return errors.Join(ErrClosed, removeNetns(ctx, name))
	}
	_, err := run(ctx, "ip", "-n", name, "link", "set", "lo", "up")
	return err
}

func (l *Lab) buildSwitch(ctx context.Context) error {
	s, mtu := l.Switch, fmt.Sprint(l.cfg.MTU)
	if err := l.addNetns(ctx, s.Netns); err != nil {
		return err
	}
	// IPv4 sysctls are inherited from the root namespace: set them explicitly.
	if err := sysctl(ctx, s.Netns, "net/ipv4/ip_forward", "0"); err != nil {
		return err
	}
	return runAll(ctx, [][]string{
		{"ip", "-n", s.Netns, "link", "add", bridgeLink, "mtu", mtu, "type", "bridge"},
		{"ip", "-n", s.Netns, "addr", "add", l.prefixOf(s.Addr), "dev", bridgeLink},
		{"ip", "-n", s.Netns, "link", "set", bridgeLink, "up"},
	})
}

// nthAddr6 is the n-th address of p (n < 256), zero if p is.
func nthAddr6(p netip.Prefix, n byte) netip.Addr {
	if !p.IsValid() {
		return netip.Addr{}
	}
	b := p.Addr().As16()
	b[15] += n
	return netip.AddrFrom16(b)
}

// addIPv6 gives h its IPv6 underlay address (no duplicate detection: the
// lab hands out distinct ones), and a host a default route via the bridge.
func (l *Lab) addIPv6(ctx context.Context, h *Host) error {
	if !h.Addr6.IsValid() {
		return nil
	}
	cmds := [][]string{{"ip", "-n", h.Netns, "addr", "add", netip.PrefixFrom(h.Addr6, l.Underlay6.Bits()).String(), "dev", h.Link, "nodad"}}
	if h != l.Switch {
		cmds = append(cmds, []string{"ip", "-n", h.Netns, "-6", "route", "add", "default", "via", l.Switch.Addr6.String(), "dev", h.Link})
	}
	return runAll(ctx, cmds)
}

func (l *Lab) buildHost(ctx context.Context, h *Host) error {
	s, mtu, queues := l.Switch, fmt.Sprint(l.cfg.MTU), fmt.Sprint(l.cfg.Queues)
	if err := l.addNetns(ctx, h.Netns); err != nil {
		return err
	}
	for _, kv := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/all/rp_filter", "0"},
		{"net/ipv4/conf/default/rp_filter", "0"},
		{"net/ipv6/conf/all/forwarding", "1"}, // for dual-stack containers
	} {
		if err := sysctl(ctx, h.Netns, kv[0], kv[1]); err != nil {
			return err
		}
	}
	// Create the pair inside the underlay namespace with its peer placed
	// straight into the host namespace: no name ever exists in the root one.
	err := runAll(ctx, [][]string{
		{"ip", "-n", s.Netns, "link", "add", h.Port, "mtu", mtu, "numtxqueues", queues, "numrxqueues", queues,
			"type", "veth", "peer", "name", hostLink, "mtu", mtu, "numtxqueues", queues, "numrxqueues", queues,
			"netns", h.Netns},
		{"ip", "-n", s.Netns, "link", "set", h.Port, "master", bridgeLink, "up"},
		{"ip", "-n", h.Netns, "addr", "add", l.prefixOf(h.Addr), "dev", hostLink},
		{"ip", "-n", h.Netns, "link", "set", hostLink, "up"},
		{"ip", "-n", h.Netns, "route", "add", "default", "via", s.Addr.String(), "dev", hostLink},
	})
	if err == nil && l.cfg.NAT.IsValid() {
		err = runAll(ctx, [][]string{
			{"ip", "-n", h.Netns, "link", "add", natLink, "type", "bridge"},
			{"ip", "-n", h.Netns, "addr", "add", l.cfg.NAT.String(), "dev", natLink},
			{"ip", "-n", h.Netns, "link", "set", natLink, "up"},
			{"ip", "-n", h.Netns, "route", "replace", "default", "dev", natLink},
		})
	}
	if err != nil || l.cfg.Offloads {
		return err
	}
	if err := offloadsOff(ctx, s.Netns, h.Port); err != nil {
		return err
	}
	return offloadsOff(ctx, h.Netns, hostLink)
}

func (l *Lab) prefixOf(a netip.Addr) string {
	return netip.PrefixFrom(a, l.Underlay.Bits()).String()
}

// offloadsOff turns segmentation and receive offloads off on dev. Features a
// kernel lacks make ethtool fail the whole call, so on failure it retries
// one feature at a time and insists only on GSO, which every device has.
func offloadsOff(ctx context.Context, netns, dev string) error {
	features := []string{"gso", "tso", "gro", "tx-udp-segmentation"}
	args := []string{"netns", "exec", netns, "ethtool", "-K", dev}
	for _, f := range features {
		args = append(args, f, "off")
	}
	if _, err := run(ctx, "ip", args...); err == nil {
		return nil
	}
	for _, f := range features {
		_, err := run(ctx, "ip", "netns", "exec", netns, "ethtool", "-K", dev, f, "off")
		if err != nil && f == "gso" {
			return err
		}
	}
	return nil
}

// Close stops every process started through the lab (SIGTERM, then SIGKILL
// after a grace period), kills anything else still running in the lab's
// namespaces, and deletes the namespaces, which removes the veths and the
// bridge. It is idempotent and safe to call concurrently; later calls return
// the first call's result. Exit statuses of stopped processes are not errors.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	defer live.Delete(l)
	l.mu.Lock()
	l.closed = true
	procs, netns := l.procs, l.netns
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, p := range procs {
		wg.Go(func() {
			if err := p.Stop(syscall.SIGTERM, stopGrace); errors.Is(err, errStuck) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := len(netns) - 1; i >= 0; i-- {
		errs = append(errs, removeNetns(ctx, netns[i]))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: close %s: %w", l.cfg.Prefix, err)
	}
	l.log.Info("lab closed")
	return nil
}

// CloseAll closes every Lab of this process that is still open. It is meant
// for signal handlers (`weft lab`, a test's TestMain), so an interrupt does not
// leave namespaces behind.
func CloseAll() error {
	var errs []error
	live.Range(func(k, _ any) bool {
		errs = append(errs, k.(*Lab).Close())
		return true
	})
	return errors.Join(errs...)
}

// Cleanup removes the namespaces a lab with this prefix creates
// (<prefix>-u, <prefix>-h<N>, <prefix>-p<name>) and kills every process inside them: the
// leftovers of a run that crashed or was killed before Close. Other
// namespaces are never touched. Nothing to remove is not an error.
func Cleanup(prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab: cleanup: invalid prefix %q", prefix)
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	names, err := listNetns(ctx)
	if err != nil {
		return fmt.Errorf("lab: cleanup %s: %w", prefix, err)
	}
	var errs []error
	for name := range names {
		if isLabNetns(prefix, name) {
			errs = append(errs, removeNetns(ctx, name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: cleanup %s: %w", prefix, err)
	}
	return nil
}

// Namespaces lists the namespaces of the lab with this prefix that exist
// (what Cleanup(prefix) would remove), for tests to check that Close left
// none behind.
func Namespaces(prefix string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	names, err := listNetns(ctx)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var ours []string
	for name := range names {
		if isLabNetns(prefix, name) {
			ours = append(ours, name)
		}
	}
	slices.Sort(ours)
	return ours, nil
}

// isLabNetns reports whether name is one a lab with prefix creates:
// <prefix>-u, <prefix>-h<digits> or (AddNetns) <prefix>-p<letters and
// digits>. No other lab's namespace matches, even one whose prefix extends
// this one with "-h1" or "-p": its names have one more '-'.
func isLabNetns(prefix, name string) bool {
	if name == prefix+"-u" {
		return true
	}
	if n, ok := strings.CutPrefix(name, prefix+"-h"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		return true
	}
	n, ok := strings.CutPrefix(name, prefix+"-p")
	return ok && extraRE.MatchString(n)
}

var extraRE = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)

// AddNetns creates an empty namespace <prefix>-p<name> (loopback up) in the
// lab, such as a pod's for a CNI plugin to fill, and returns it as a Host
// with only Name and Netns set. Close deletes it with the lab's other
// namespaces, and Cleanup(prefix) removes it after a crash. name is 1-12
// letters and digits.
func (l *Lab) AddNetns(ctx context.Context, name string) (*Host, error) {
	if !extraRE.MatchString(name) {
		return nil, fmt.Errorf("lab: AddNetns %q: want 1-12 letters and digits", name)
	}
	h := &Host{Name: name, Netns: l.cfg.Prefix + "-p" + name, lab: l}
	if err := l.addNetns(ctx, h.Netns); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return h, nil
}

// listNetns returns the names `ip netns list` shows.
func listNetns(ctx context.Context) (map[string]bool, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 {
			names[f[0]] = true // lines look like "name (id: 3)"
		}
	}
	return names, nil
}

// removeNetns kills every process in the namespace, waits for them to leave
// it, and deletes it. A namespace is only freed when no process holds it.
// One already gone (Cleanup ran first) is not an error.
func removeNetns(ctx context.Context, name string) error {
	if names, err := listNetns(ctx); err == nil && !names[name] {
		return nil
	}
	pids := func() ([]int, error) {
		out, err := run(ctx, "ip", "netns", "pids", name)
		if err != nil {
			return nil, err
		}
		var ps []int
		for _, f := range strings.Fields(out) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
				ps = append(ps, pid)
			}
		}
		return ps, nil
	}
	err := WaitFor(ctx, 5*time.Second, "processes in "+name+" to exit", func() error {
		ps, err := pids()
		if err != nil {
			return err
		}
		for _, pid := range ps {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(ps) > 0 {
			return fmt.Errorf("pids %v still running", ps)
		}
		return nil
	})
	_, derr := run(ctx, "ip", "netns", "del", name)
	return errors.Join(err, derr)
}

// CloseOnSignal closes every open lab, runs then (if not nil) and exits 1 on
// SIGINT or SIGTERM, so an interrupted test run or `weft lab` leaves no
// namespaces behind. For TestMain and commands.
func CloseOnSignal(name string, then func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "%s: %v: closing labs\n", name, sig)
		if err := CloseAll(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		if then != nil {
			then()
		}
		os.Exit(1)
	}()
}
