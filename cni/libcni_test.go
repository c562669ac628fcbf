package cni_test

// weft-cni driven through libcni, the library container runtimes use, with
// the real reference plugins (Debian's 1.1.1 and the current release) for
// every cniVersion weft-cni takes. The test binary is the plugin: run with
// CNI_COMMAND set, TestMain runs cni.Main instead of the tests. The whole
// test process lives in a private network namespace (testenv.InNetns), so
// the bridges the delegate creates vanish with it; pods are named
// namespaces, deleted when each test ends.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/cni"
	"github.com/weftnet/weft/cni/cnitest"
	"github.com/weftnet/weft/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv("CNI_COMMAND") != "" {
		cni.Main("weft-cni (test binary)")
		os.Exit(0)
	}
	os.Exit(testenv.InNetns(m))
}

const cmdTimeout = 30 * time.Second // one libcni call or ip(8) run

// node is one weft node as the plugin sees it: a run dir with subnet.env
// (and optionally a fake agent on weft.sock), a conflist for weft-cni with
// its own bridge, data dir and host-local dir, and a libcni client.
type node struct {
	t       *testing.T
	dir     string
	subnet  netip.Prefix
	ipamDir string // host-local's dir for this network
	dataDir string
	list    *libcni.NetworkConfigList
	cni     *libcni.CNIConfig
	runDir  string
}

// newNode sets up network "wt<k>" at cniVersion v over subnet 10.250.<k>.0/24
// with the reference plugins in pluginDir.
func newNode(t *testing.T, k int, v, pluginDir string) *node {
	t.Helper()
	n := &node{t: t, dir: t.TempDir(), subnet: netip.MustParsePrefix(fmt.Sprintf("10.250.%d.0/24", k))}
	n.runDir = filepath.Join(n.dir, "run")
	n.dataDir = filepath.Join(n.dir, "data")
	name := fmt.Sprintf("wt%d", k)
	n.ipamDir = filepath.Join(n.dir, "ipam", name)
	n.writeSubnetEnv()

	bin := filepath.Join(n.dir, "bin")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "weft-cni")); err != nil {
		t.Fatal(err)
	}
	n.list = n.conflist(v, name, nil)
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{bin, pluginDir}, filepath.Join(n.dir, "cache"), nil)
	return n
}

func (n *node) writeSubnetEnv() {
	n.t.Helper()
	if err := os.MkdirAll(n.runDir, 0o755); err != nil {
		n.t.Fatal(err)
	}
	body := fmt.Sprintf("WEFT_NETWORK=10.250.0.0/16\nWEFT_SUBNET=%s\nWEFT_MTU=1400\nWEFT_IPMASQ=false\n", n.subnet)
	if err := os.WriteFile(filepath.Join(n.runDir, "subnet.env"), []byte(body), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// conflist is the node's network config list; extra keys go into weft-cni's
// plugin config (a nil value deletes one).
func (n *node) conflist(v, name string, extra map[string]any) *libcni.NetworkConfigList {
	n.t.Helper()
	plugin := map[string]any{
		"type":       "weft-cni",
		"subnetFile": filepath.Join(n.runDir, "subnet.env"),
		"dataDir":    n.dataDir,
		"delegate": map[string]any{
			"bridge": "wc" + strings.TrimPrefix(name, "wt"),
			"ipam":   map[string]any{"dataDir": filepath.Dir(n.ipamDir)},
		},
	}
	for k, val := range extra {
		if val == nil {
			delete(plugin, k)
		} else {
			plugin[k] = val
		}
	}
	b, err := json.Marshal(map[string]any{"cniVersion": v, "name": name, "plugins": []any{plugin}})
	if err != nil {
		n.t.Fatal(err)
	}
	l, err := libcni.ConfListFromBytes(b)
	if err != nil {
		n.t.Fatal(err)
	}
	return l
}

// pod is a named network namespace deleted when the test ends.
func (n *node) pod(name string) *libcni.RuntimeConf {
	n.t.Helper()
	ns := fmt.Sprintf("wcni%d-%s", os.Getpid()%100000, name)
	ipRun(n.t, "netns", "add", ns)
	n.t.Cleanup(func() { ipRun(n.t, "netns", "del", ns) })
	return &libcni.RuntimeConf{ContainerID: "ctr-" + name, NetNS: "/var/run/netns/" + ns, IfName: "eth0"}
}

func ipRun(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		t.Errorf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	t.Cleanup(cancel)
	return c
}

// reservations lists host-local's address files for the network.
func (n *node) reservations() []string {
	n.t.Helper()
	ents, err := os.ReadDir(n.ipamDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		n.t.Fatal(err)
	}
	var ips []string
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

// agent serves GET /v1/status on the node's weft.sock like a running agent,
// until the test ends or stop is called.
func (n *node) agent() (stop func()) {
	n.t.Helper()
	ln, err := net.Listen("unix", filepath.Join(n.runDir, "weft.sock"))
	if err != nil {
		n.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"subnet":%q}`, n.subnet)
	})}
	go srv.Serve(ln)
	n.t.Cleanup(func() { srv.Close() })
	return func() { srv.Close() }
}

func cniCode(t *testing.T, err error, code uint) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("want CNI error code %d, have %v", code, err)
	}
}

var matrixVersions = []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"}

func TestLibcniMatrix(t *testing.T) {
	testenv.Require(t)
	for si, set := range cnitest.PluginSets() {
		t.Run(set.Name, func(t *testing.T) {
			testenv.Need(t, set.Check())
			for vi, v := range matrixVersions {
				t.Run(v, func(t *testing.T) { matrixCase(t, 10+si*10+vi, v, set.Dir) })
			}
		})
	}
}

func matrixCase(t *testing.T, k int, v, pluginDir string) {
	n := newNode(t, k, v, pluginDir)
	stopAgent := n.agent()
	info, err := n.cni.GetVersionInfo(ctx(t), "weft-cni")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.SupportedVersions(), cni.Versions.SupportedVersions()) {
		t.Fatalf("VERSION: %v", info.SupportedVersions())
	}

	rt := n.pod("a")
	res, err := n.cni.AddNetworkList(ctx(t), n.list, rt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version() != v {
		t.Fatalf("result version %s, want %s", res.Version(), v)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 {
		t.Fatalf("result IPs %v", r.IPs)
	}
	addr := r.IPs[0].Address.IP.String()
	if a := netip.MustParseAddr(addr); !n.subnet.Contains(a) || a == n.subnet.Addr() {
		t.Fatalf("pod address %s not a host of %s", addr, n.subnet)
	}
	ns := filepath.Base(rt.NetNS)
	if out := ipRun(t, "-n", ns, "-4", "addr", "show", "dev", "eth0"); !strings.Contains(out, addr+"/24") || !strings.Contains(out, "mtu 1400") {
		t.Fatalf("pod eth0:\n%s", out)
	}
	if out := ipRun(t, "-n", ns, "-4", "route", "show"); !strings.Contains(out, "10.250.0.0/16 via "+n.subnet.Addr().Next().String()) {
		t.Fatalf("pod routes:\n%s", out)
	}
	if got := n.reservations(); !slices.Equal(got, []string{addr}) {
		t.Fatalf("host-local reservations %v", got)
	}

	if v != "0.3.1" {
		if err := n.cni.CheckNetworkList(ctx(t), n.list, rt); err != nil {
			t.Fatalf("CHECK a healthy pod: %v", err)
		}
		ipRun(t, "-n", ns, "route", "del", "10.250.0.0/16")
		if err := n.cni.CheckNetworkList(ctx(t), n.list, rt); err == nil {
			t.Fatal("CHECK passed a pod without its overlay route")
		}
	}

	if v == "1.1.0" {
		stopAgent()
		cniCode(t, n.cni.GetStatusNetworkList(ctx(t), n.list), types.ErrPluginNotAvailable)
		stopAgent = n.agent()
		if err := n.cni.GetStatusNetworkList(ctx(t), n.list); err != nil {
			t.Fatalf("STATUS with the agent running: %v", err)
		}
	}

	// DEL, twice, and after the subnet file is gone.
	os.Remove(filepath.Join(n.runDir, "subnet.env"))
	for range 2 {
		if err := n.cni.DelNetworkList(ctx(t), n.list, rt); err != nil {
			t.Fatal(err)
		}
	}
	if out := ipRun(t, "-n", ns, "link", "show"); strings.Contains(out, "eth0") {
		t.Fatalf("eth0 left in the pod:\n%s", out)
	}
	if got := n.reservations(); len(got) != 0 {
		t.Fatalf("host-local reservations left %v", got)
	}
	cniCode(t, func() error { _, err := n.cni.AddNetworkList(ctx(t), n.list, n.pod("b")); return err }(), types.ErrTryAgainLater)
	// A subnet file left by an agent killed with -9: ADD fails the same way
	// instead of handing out an address nothing routes to.
	stopAgent()
	n.writeSubnetEnv()
	cniCode(t, func() error { _, err := n.cni.AddNetworkList(ctx(t), n.list, n.pod("stale")); return err }(), types.ErrTryAgainLater)
	if got := n.reservations(); len(got) != 0 {
		t.Fatalf("ADD from a stale subnet file reserved %v", got)
	}
	n.agent()

	if v == "1.1.0" {
		gcCase(t, n)
	}
}

// gcCase: a pod the runtime forgot (its DEL never came) and a reservation
// nobody holds are freed by GC; a live pod keeps its address.
func gcCase(t *testing.T, n *node) {
	n.writeSubnetEnv()
	live, forgotten := n.pod("live"), n.pod("forgotten")
	if _, err := n.cni.AddNetworkList(ctx(t), n.list, live); err != nil {
		t.Fatal(err)
	}
	// Another runtime's cache: libcni's GC below knows nothing of it, so
	// only weft-cni's own records can release it.
	other := libcni.NewCNIConfigWithCacheDir(n.cni.Path, filepath.Join(n.dir, "other-cache"), nil)
	if _, err := other.AddNetworkList(ctx(t), n.list, forgotten); err != nil {
		t.Fatal(err)
	}
	leak := n.subnet.Addr().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next().String() // .10
	if err := os.WriteFile(filepath.Join(n.ipamDir, leak), []byte("ghost\r\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := n.reservations(); len(got) != 3 {
		t.Fatalf("reservations before GC %v", got)
	}
	err := n.cni.GCNetworkList(ctx(t), n.list, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: live.ContainerID, IfName: "eth0"}}})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := n.cni.GetNetworkListCachedResult(n.list, live)
	if err != nil || cached == nil {
		t.Fatalf("live pod's cached result: %v", err)
	}
	r, _ := types100.NewResultFromResult(cached)
	if got := n.reservations(); !slices.Equal(got, []string{r.IPs[0].Address.IP.String()}) {
		t.Fatalf("reservations after GC %v, want only the live pod's %s", got, r.IPs[0].Address.IP)
	}
	if out := ipRun(t, "-n", filepath.Base(forgotten.NetNS), "link", "show"); strings.Contains(out, "eth0") {
		t.Fatalf("GC left eth0 in the forgotten pod:\n%s", out)
	}
	if err := n.cni.DelNetworkList(ctx(t), n.list, live); err != nil {
		t.Fatal(err)
	}
}

// Bad configs get their error codes through libcni, as JSON the runtime
// decodes.
func TestLibcniErrors(t *testing.T) {
	testenv.Require(t)
	set := cnitest.PluginSets()[0]
	testenv.Need(t, set.Check())
	n := newNode(t, 90, "1.0.0", set.Dir)
	add := func(l *libcni.NetworkConfigList) error {
		_, err := n.cni.AddNetworkList(ctx(t), l, &libcni.RuntimeConf{ContainerID: "bad", NetNS: "/var/run/netns/none", IfName: "eth0"})
		return err
	}
	for _, tt := range []struct {
		name string
		list *libcni.NetworkConfigList
		code uint
	}{
		{"no subnet file", n.conflist("1.0.0", "wt90", map[string]any{"subnetFile": filepath.Join(n.dir, "nope", "subnet.env")}), types.ErrTryAgainLater},
		{"unsupported version", n.conflist("0.2.0", "wt90", nil), types.ErrIncompatibleCNIVersion},
		{"relative dataDir", n.conflist("1.0.0", "wt90", map[string]any{"dataDir": "data"}), types.ErrInvalidNetworkConfig},
		{"delegate not an object", n.conflist("1.0.0", "wt90", map[string]any{"delegate": "bridge"}), types.ErrInvalidNetworkConfig},
		{"delegate field of wrong type", n.conflist("1.0.0", "wt90", map[string]any{"delegate": map[string]any{"mtu": "big"}}), types.ErrInvalidNetworkConfig},
		{"delegate not found", n.conflist("1.0.0", "wt90", map[string]any{"delegate": map[string]any{"type": "nosuchplugin"}}), types.ErrInvalidNetworkConfig},
	} {
		t.Run(tt.name, func(t *testing.T) { cniCode(t, add(tt.list), tt.code) })
	}
}

// The shipped conflist (deploy/cni/10-weft.conflist, also in the DaemonSet)
// works at the version it declares with Debian 12's plugins 1.1.1, as
// Podman 4.3 drives them: every plugin of the list, portmap included, must
// speak that version (libcni's validation, which Podman runs when it loads
// the network), and ADD must return a result of that version. Only the
// host paths are moved into the test's dir.
func TestShippedConflistDebian(t *testing.T) {
	testenv.Require(t)
	set := cnitest.PluginSets()[0]
	testenv.Need(t, set.Check())
	raw, err := os.ReadFile("../deploy/cni/10-weft.conflist")
	if err != nil {
		t.Fatal(err)
	}
	var shipped struct {
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &shipped); err != nil {
		t.Fatal(err)
	}
	v := shipped.CNIVersion
	n := newNode(t, 95, v, set.Dir)
	n.agent()
	shipped.Plugins[0]["subnetFile"] = filepath.Join(n.runDir, "subnet.env")
	shipped.Plugins[0]["dataDir"] = n.dataDir
	shipped.Plugins[0]["delegate"].(map[string]any)["ipam"] = map[string]any{"dataDir": filepath.Dir(n.ipamDir)}
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	doc["plugins"] = shipped.Plugins
	b, _ := json.Marshal(doc)
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	n.ipamDir = filepath.Join(filepath.Dir(n.ipamDir), list.Name)
	if _, err := n.cni.ValidateNetworkList(ctx(t), list); err != nil {
		t.Fatalf("libcni refuses the shipped conflist (cniVersion %s) with %s: %v", v, set.Dir, err)
	}
	rt := n.pod("shipped")
	res, err := n.cni.AddNetworkList(ctx(t), list, rt)
	if err != nil {
		t.Fatalf("ADD with the shipped conflist (cniVersion %s): %v", v, err)
	}
	if res.Version() != v {
		t.Fatalf("result version %s, want %s", res.Version(), v)
	}
	if got := n.reservations(); len(got) != 1 {
		t.Fatalf("host-local reservations %v", got)
	}
	if err := n.cni.DelNetworkList(ctx(t), list, rt); err != nil {
		t.Fatal(err)
	}
	if got := n.reservations(); len(got) != 0 {
		t.Fatalf("host-local reservations left %v", got)
	}
}

// A second ADD of a pod's existing eth0 fails in the real bridge plugin;
// the pod keeps its eth0, its address reservation and weft-cni's record.
func TestLibcniReAddKeepsAttachment(t *testing.T) {
	testenv.Require(t)
	set := cnitest.PluginSets()[0]
	testenv.Need(t, set.Check())
	n := newNode(t, 96, "1.0.0", set.Dir)
	n.agent()
	rt := n.pod("readd")
	if _, err := n.cni.AddNetworkList(ctx(t), n.list, rt); err != nil {
		t.Fatal(err)
	}
	before := n.reservations()
	if _, err := n.cni.AddNetworkList(ctx(t), n.list, rt); err == nil {
		t.Fatal("a second ADD of the same eth0 succeeded")
	}
	if out := ipRun(t, "-n", filepath.Base(rt.NetNS), "link", "show"); !strings.Contains(out, "eth0") {
		t.Fatalf("the failed re-ADD removed the pod's eth0:\n%s", out)
	}
	if got := n.reservations(); !slices.Equal(got, before) {
		t.Fatalf("reservations %v after the failed re-ADD, want %v", got, before)
	}
	if ents, _ := filepath.Glob(filepath.Join(n.dataDir, "*.json")); len(ents) != 1 {
		t.Fatalf("weft-cni records %v", ents)
	}
	if err := n.cni.DelNetworkList(ctx(t), n.list, rt); err != nil {
		t.Fatal(err)
	}
	if got := n.reservations(); len(got) != 0 {
		t.Fatalf("reservations left %v", got)
	}
}
