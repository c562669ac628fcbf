package bench

// The wireguard-go path: the userspace WireGuard that users of a userspace
// overlay would otherwise run, measured in the same lab as weft. Each host
// runs `wireguard-go -f <dev>` (its own TUN device) and is configured
// through wireguard-go's UAPI socket (/var/run/wireguard/<dev>.sock, the
// protocol `wg set` speaks), so neither the wg tool nor the kernel module is
// needed. Every host is a peer of every other, on UDP port 51820.
//
//	wireguard-go   wireguard-go on every host, fresh X25519 keys   10.251.0.0/24

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/lab"
)

// PathWireguardGo is the wireguard-go path's name.
const PathWireguardGo = "wireguard-go"

// wireguardGoDir is where scripts/setup.sh builds wireguard-go, unless
// $WEFT_WIREGUARD_GO names another directory.
const wireguardGoDir = "/opt/weft-test/wireguard-go"

const (
	wgPort      = 51820
	wgSocketDir = "/var/run/wireguard"
	wgStartWait = 10 * time.Second // the UAPI socket appearing
	wgStopWait  = 10 * time.Second
)

// wgNet holds the wireguard-go overlay: host i gets the i-th address.
var wgNet = netip.MustParsePrefix("10.251.0.0/24")

// FindWireguardGo returns the wireguard-go executable: the one in PATH, else
// the one scripts/setup.sh built; "" if there is none.
func FindWireguardGo() string {
	if p, err := exec.LookPath("wireguard-go"); err == nil {
		return p
	}
	dir := os.Getenv("WEFT_WIREGUARD_GO")
	if dir == "" {
		dir = wireguardGoDir
	}
	p := filepath.Join(dir, "wireguard-go")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// wireguardGoPath runs wireguard-go on every host of the lab.
type wireguardGoPath struct {
	binary string
	hosts  []*lab.Host
	devs   []string
	procs  []*lab.Proc
}

func (*wireguardGoPath) Name() string { return PathWireguardGo }

func (p *wireguardGoPath) Up(ctx context.Context, l *lab.Lab, u Underlay) (Endpoint, error) {
	if p.binary == "" {
		return Endpoint{}, errors.New("wireguard-go: no executable")
	}
	if err := os.MkdirAll(wgSocketDir, 0o755); err != nil {
		return Endpoint{}, fmt.Errorf("wireguard-go: %w", err)
	}
	p.hosts = l.Hosts
	keys := make([]*ecdh.PrivateKey, len(l.Hosts))
	for i := range keys {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return Endpoint{}, err
		}
		keys[i] = k
	}
	ep := Endpoint{Dst: wgAddr(2)}
	for i, h := range l.Hosts {
		// Device names are per namespace, but the UAPI sockets share
		// one directory: make them unique to this process.
		dev := fmt.Sprintf("wgb%d-%d", os.Getpid()%100000, i+1)
		p.devs = append(p.devs, dev)
		proc, err := h.Start(context.Background(), p.binary, "-f", dev)
		if err != nil {
			return ep, fmt.Errorf("wireguard-go on %s: %w", h.Name, err)
		}
		p.procs = append(p.procs, proc)
		ep.Procs = append(ep.Procs, proc)
		sock := filepath.Join(wgSocketDir, dev+".sock")
		err = lab.WaitFor(ctx, wgStartWait, "wireguard-go's UAPI socket "+sock, func() error {
			select {
			case <-proc.Done():
				return fmt.Errorf("wireguard-go exited: %v\n%s", proc.Wait(), proc.Output())
			default:
			}
			_, err := os.Stat(sock)
			return err
		})
		if err != nil {
			return ep, err
		}
		if err := uapiSet(ctx, sock, wgConfig(l.Hosts, keys, i, u)); err != nil {
			return ep, fmt.Errorf("wireguard-go on %s: %w", h.Name, err)
		}
		for _, c := range [][]string{
			{"ip", "addr", "add", wgAddr(i+1).String() + "/24", "dev", dev},
			{"ip", "link", "set", dev, "up"},
		} {
			if _, err := h.Run(ctx, c[0], c[1:]...); err != nil {
				return ep, fmt.Errorf("wireguard-go: %w", err)
			}
		}
	}
	return ep, nil
}

// wgConfig is host i's UAPI configuration: its key and port, and every other
// host as a peer at its underlay address in mode u.
func wgConfig(hosts []*lab.Host, keys []*ecdh.PrivateKey, i int, u Underlay) string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=%d\nreplace_peers=true\n", hex.EncodeToString(keys[i].Bytes()), wgPort)
	for j, h := range hosts {
		if j == i {
			continue
		}
		fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\nallowed_ip=%s/32\n",
			hex.EncodeToString(keys[j].PublicKey().Bytes()), netip.AddrPortFrom(underlayAddr(h, u), wgPort), wgAddr(j+1))
	}
	return b.String()
}

// uapiSet sends one set operation over the UAPI socket and checks its errno.
func uapiSet(ctx context.Context, sock, cfg string) error {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, wgStartWait)
	defer cancel()
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "set=1\n%s\n", cfg); err != nil {
		return fmt.Errorf("uapi set: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("uapi set: %w", err)
	}
	if line = strings.TrimSpace(line); line != "errno=0" {
		return fmt.Errorf("uapi set: %s", line)
	}
	return nil
}

// Down stops every wireguard-go (its TUN goes with it) and removes the
// sockets it may leave.
func (p *wireguardGoPath) Down(ctx context.Context) error {
	var errs []error
	for _, proc := range p.procs {
		if err := proc.Stop(syscall.SIGTERM, wgStopWait); err != nil {
			errs = append(errs, fmt.Errorf("wireguard-go: %w\n%s", err, tail(proc.Output(), 2000)))
		}
	}
	for _, dev := range p.devs {
		os.Remove(filepath.Join(wgSocketDir, dev+".sock"))
	}
	p.procs, p.devs, p.hosts = nil, nil, nil
	return errors.Join(errs...)
}

// wgAddr is host i's (1-based) address on the wireguard-go overlay.
func wgAddr(i int) netip.Addr {
	a := wgNet.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}
