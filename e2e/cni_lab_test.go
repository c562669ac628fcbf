package e2e

// The CNI harness: weft-cni installed on lab hosts next to a set of reference
// plugins, pods as named network namespaces, cnitool run inside a host as a
// container runtime would run the plugin, and weft-cni run by hand for its
// exact error JSON.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/cni/cnitest"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/lab"
)

// libcniCache is where cnitool (libcni's default) caches results, one file
// per network, container and interface. It is the machine's: the tests'
// network names are unique per process and host, and their files removed.
const libcniCache = "/var/lib/cni/results"

// cniHost is weft-cni installed on a lab host whose weft node is w.
type cniHost struct {
	t       *testing.T
	lab     *lab.Lab // w's; holds the pods' namespaces
	w       *lab.Weft
	cnitool string
	network string // the conflist's name; unique on the machine
	netDir  string // NETCONFPATH
	cniPath string // CNI_PATH: weft-cni's dir, then the reference plugins'
	dataDir string // weft-cni's dataDir
	ipamDir string // host-local's dataDir/<network>
}

// installCNI puts weft-cni and a conflist for w on w's host, delegating to
// the plugins of set. Its data lives in the test's temp dir, never in
// /var/lib/cni of the machine (but for cnitool's result cache).
func installCNI(t *testing.T, l *lab.Lab, w *lab.Weft, set cnitest.PluginSet, cnitool string) *cniHost {
	t.Helper()
	dir := t.TempDir()
	h := &cniHost{t: t, lab: l, w: w, cnitool: cnitool,
		network: filepath.Base(w.Host.Netns),
		netDir:  filepath.Join(dir, "net.d"),
		dataDir: filepath.Join(dir, "weft-cni"),
	}
	h.ipamDir = filepath.Join(dir, "ipam", h.network)
	bin := filepath.Join(dir, "bin")
	h.cniPath = bin + string(os.PathListSeparator) + set.Dir
	for _, d := range []string{h.netDir, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(weftCNIBin, filepath.Join(bin, "weft-cni")); err != nil {
		t.Fatal(err)
	}
	h.writeConflist(nil)
	t.Cleanup(func() {
		files, _ := filepath.Glob(filepath.Join(libcniCache, h.network+"-*"))
		for _, f := range files {
			os.Remove(f)
		}
	})
	return h
}

// writeConflist (re)writes the host's conflist: weft-cni alone, with
// extra laid over its config as conf does.
func (h *cniHost) writeConflist(extra map[string]any) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.netDir, "10-weft.conflist"), []byte(fmt.Sprintf(
		`{"cniVersion": "1.1.0", "name": %q, "plugins": [%s]}`, h.network, h.conf("1.1.0", extra))), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// conf is weft-cni's plugin config on this host at cniVersion v, with extra
// keys laid over it (nil deletes one).
func (h *cniHost) conf(v string, extra map[string]any) []byte {
	h.t.Helper()
	c := map[string]any{
		"cniVersion": v, "name": h.network, "type": "weft-cni",
		"subnetFile": filepath.Join(h.w.RunDir, "subnet.env"),
		"dataDir":    h.dataDir,
		"delegate":   map[string]any{"ipam": map[string]any{"dataDir": filepath.Dir(h.ipamDir)}},
	}
	for k, val := range extra {
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// pod is a network namespace with an interface from weft-cni.
type pod struct {
	*lab.Host // the lab's namespace <lab prefix>-p<host><name>
	host      *cniHost
	addr      netip.Addr
	addr6     netip.Addr // on a dual-stack node
}

func (p *pod) path() string { return "/var/run/netns/" + p.Netns }

// newPod makes a pod namespace in the lab, <lab prefix>-p<host><name>; when
// the test ends cnitool DELs it, and the lab deletes the namespace.
func (h *cniHost) newPod(name string) *pod {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), cmdTimeout)
	defer cancel()
	ns, err := h.lab.AddNetns(ctx, strings.TrimPrefix(h.w.Name, "h")+name)
	if err != nil {
		h.t.Fatal(err)
	}
	p := &pod{Host: ns, host: h}
	h.t.Cleanup(func() {
		h.cnitoolRun("del", p) // the bridge's veth and host-local's file go
	})
	return p
}

// cnitoolRun runs cnitool cmd for p inside the host's namespace, the way a
// runtime there would, and returns its exit code (-1: killed at the
// timeout) and output.
func (h *cniHost) cnitoolRun(cmd string, p *pod) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	c := h.w.Host.Command(ctx, h.cnitool, cmd, h.network, p.path())
	c.Env = append(os.Environ(), "NETCONFPATH="+h.netDir, "CNI_PATH="+h.cniPath, "CNI_IFNAME=eth0")
	out, err := c.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case ctx.Err() != nil:
		return -1, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	default:
		h.t.Errorf("cnitool %s: %v", cmd, err)
		return -1, string(out)
	}
}

// cnitoolOK runs cnitool cmd for p and fails the test unless it succeeds.
func (h *cniHost) cnitoolOK(cmd string, p *pod) string {
	h.t.Helper()
	code, out := h.cnitoolRun(cmd, p)
	if code != 0 {
		h.t.Fatalf("%s: cnitool %s %s: exit %d\n%s", h.w.Name, cmd, p.Netns, code, out)
	}
	return out
}

// add ADDs p through cnitool and records its address, which must be in the
// node's subnet.
func (h *cniHost) add(p *pod) {
	h.t.Helper()
	out := h.cnitoolOK("add", p)
	var res struct {
		CNIVersion string `json:"cniVersion"`
		IPs        []struct {
			Address netip.Prefix `json:"address"`
		} `json:"ips"`
	}
	want := 1
	if h.w.Subnet6.IsValid() {
		want = 2 // one address of each family
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.IPs) != want {
		h.t.Fatalf("%s: cnitool add %s: result %v:\n%s", h.w.Name, p.Netns, err, out)
	}
	p.addr = res.IPs[0].Address.Addr()
	if want == 2 {
		a6 := res.IPs[1].Address
		if p.addr6 = a6.Addr(); !h.w.Subnet6.Contains(p.addr6) || a6.Bits() != h.w.Subnet6.Bits() {
			h.t.Fatalf("%s: pod %s got %s, want a host of %s", h.w.Name, p.Name, a6, h.w.Subnet6)
		}
	}
	if res.CNIVersion != "1.1.0" || !h.w.Subnet.Contains(p.addr) || res.IPs[0].Address.Bits() != h.w.Subnet.Bits() {
		h.t.Fatalf("%s: pod %s got %s (result version %s), want a host of %s", h.w.Name, p.Name, res.IPs[0].Address, res.CNIVersion, h.w.Subnet)
	}
}

// reservations lists host-local's address files on this host.
func (h *cniHost) reservations() []string {
	h.t.Helper()
	ents, err := os.ReadDir(h.ipamDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var ips []string
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// bridgePorts counts the veths plugged into cni0 on the host.
func (h *cniHost) bridgePorts() int {
	h.t.Helper()
	out, err := h.w.Host.Run(h.t.Context(), "ip", "-o", "link", "show", "master", "cni0")
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Count(out, "\n")
}

// pluginRun is one run of weft-cni by hand.
type pluginRun struct {
	exit   int
	stdout string
	err    *types.Error // decoded from stdout when exit != 0
}

// plugin runs weft-cni with CNI_COMMAND=cmd for p (nil for STATUS and GC)
// inside the host, with conf on stdin, as a runtime would.
func (h *cniHost) plugin(cmd string, p *pod, conf []byte) pluginRun {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), cmdTimeout)
	defer cancel()
	c := h.w.Host.Command(ctx, weftCNIBin)
	c.Env = append(os.Environ(), "CNI_COMMAND="+cmd, "CNI_PATH="+h.cniPath)
	if p != nil {
		c.Env = append(c.Env, "CNI_CONTAINERID=manual-"+p.Name, "CNI_NETNS="+p.path(), "CNI_IFNAME=eth9")
	}
	c.Stdin = bytes.NewReader(conf)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	r := pluginRun{stdout: stdout.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
		r.err = &types.Error{}
		if jerr := json.Unmarshal(stdout.Bytes(), r.err); jerr != nil {
			h.t.Fatalf("weft-cni %s: exit %d and stdout is no CNI error (%v):\n%s\nstderr: %s", cmd, r.exit, jerr, stdout.String(), stderr.String())
		}
	default:
		h.t.Fatalf("weft-cni %s: %v", cmd, err)
	}
	return r
}

// waitPing waits until from reaches to (one echo request at a time, so a
// lost first packet while ARP settles is no failure).
func waitPing(t *testing.T, from *lab.Host, to netip.Addr) {
	t.Helper()
	err := testenv.Poll(t.Context(), waitTimeout, fmt.Sprintf("%s reaching %s", from.Netns, to), func() error {
		return from.Ping(t.Context(), to, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// noPing fails the test if from reaches to.
func noPing(t *testing.T, from *lab.Host, to netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := from.Ping(ctx, to, 1); err == nil {
		t.Fatalf("%s still reaches %s", from.Netns, to)
	}
}
