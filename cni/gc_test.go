package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/cni/cnitest"
	"github.com/weftnet/weft/subnetenv"
)

// fakeAgent answers GET /v1/status on the fixture's control socket with
// subnet ("": the one in the fixture's subnet file at the time), until the
// test ends or the returned function is called.
func fakeAgent(t *testing.T, f *fixture, subnet string) (stop func()) {
	t.Helper()
	conf := &NetConf{SubnetFile: f.subnetFile}
	ln, err := net.Listen("unix", conf.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" {
			http.NotFound(w, r)
			return
		}
		sn := subnet
		if sn == "" {
			env, err := subnetenv.Read(f.subnetFile)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			sn = env.Subnet.String()
		}
		fmt.Fprintf(w, `{"name":"h1","subnet":%q,"network":"10.244.0.0/16"}`, sn)
	})}
	go srv.Serve(ln)
	stop = func() { srv.Shutdown(context.Background()) }
	t.Cleanup(stop)
	return stop
}

func TestStatus(t *testing.T) {
	f := newFixture(t)
	f.stopAgent()
	conf := f.conf("1.1.0", nil)
	args := f.args("", conf)

	e := wantCode(t, f.p.Status(args), types.ErrPluginNotAvailable)
	if !strings.Contains(e.Msg, "does not answer") {
		t.Fatalf("message %q", e.Msg)
	}
	stop := fakeAgent(t, f, "10.244.1.0/24")
	if err := f.p.Status(args); err != nil {
		t.Fatal(err)
	}
	// Every plugin here speaks 1.1.0: STATUS goes to the bridge only, which
	// forwards to its IPAM plugin itself.
	if calls := f.exec.Calls(); len(calls) != 1 || calls[0].Plugin != "bridge" || calls[0].Command != "STATUS" {
		t.Fatalf("calls %+v", calls)
	}
	f.exec.Set("bridge", &cnitest.Plugin{Handle: cnitest.Fail(types.ErrPluginNotAvailable, "ipam exhausted", "STATUS")})
	e = wantCode(t, f.p.Status(args), types.ErrPluginNotAvailable)
	if !strings.Contains(e.Msg, "ipam exhausted") {
		t.Fatalf("message %q", e.Msg)
	}
	// Debian's 1.1.1 plugins do not speak STATUS: only their presence counts.
	f.exec.Set("bridge", &cnitest.Plugin{Versions: []string{"1.0.0"}, Handle: cnitest.Fail(types.ErrInternal, "no", "STATUS")})
	if err := f.p.Status(args); err != nil {
		t.Fatal(err)
	}
	f.exec.Set("host-local", nil)
	e = wantCode(t, f.p.Status(args), types.ErrPluginNotAvailable)
	if !strings.Contains(e.Msg, `"host-local" not found`) {
		t.Fatalf("message %q", e.Msg)
	}
	f.exec.Set("host-local", &cnitest.Plugin{})

	// The agent answers with another subnet than the file's.
	f.writeSubnetEnv(strings.Replace(testSubnetEnv, "10.244.1.0/24", "10.244.2.0/24", 1))
	e = wantCode(t, f.p.Status(args), types.ErrPluginNotAvailable)
	if !strings.Contains(e.Msg, "holds subnet 10.244.1.0/24") {
		t.Fatalf("message %q", e.Msg)
	}
	f.writeSubnetEnv(testSubnetEnv)

	// The agent stopped: it removes its subnet file.
	stop()
	f.removeSubnetEnv()
	e = wantCode(t, f.p.Status(args), types.ErrPluginNotAvailable)
	if !strings.Contains(e.Msg, "not running") {
		t.Fatalf("message %q", e.Msg)
	}
}

// hostLocal lays out a host-local data dir for network n under dir with
// the given reservation files (IP → content) and returns its path.
func hostLocal(t *testing.T, dir, n string, files map[string]string) string {
	t.Helper()
	d := filepath.Join(dir, n)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestGC(t *testing.T) {
	f := newFixture(t)
	ipamDir := filepath.Join(f.dir, "ipam")
	conf := func(valid ...types.GCAttachment) []byte {
		extra := map[string]any{"delegate": map[string]any{"ipam": map[string]any{"dataDir": ipamDir}}}
		if valid != nil {
			extra["cni.dev/valid-attachments"] = valid
		}
		return f.conf("1.1.0", extra)
	}
	for _, id := range []string{"live", "dead"} {
		f.add(id, conf())
	}
	// Another network's record in the same data dir is not this GC's.
	f.add("other", f.conf("1.1.0", map[string]any{"name": "othernet"}))
	hl := hostLocal(t, ipamDir, "weftnet", map[string]string{
		"10.244.1.2":          "live\r\neth0",
		"10.244.1.3":          "dead\r\neth0",
		"10.244.1.4":          "live\r\neth1", // same container, other interface: not valid
		"10.244.1.5":          "live",         // old host-local: container ID only
		"10.244.1.6":          "gone",
		"lock":                "",
		"last_reserved_ip.0":  "10.244.1.6",
		"notes.txt":           "not host-local's",
		"10.244.1.7.tmp-save": "not a reservation",
	})
	f.exec.Reset()
	valid := types.GCAttachment{ContainerID: "live", IfName: "eth0"}
	if err := f.p.GC(f.args("", conf(valid))); err != nil {
		t.Fatal(err)
	}
	var dels, gcs []string
	for _, c := range f.exec.Calls() {
		switch c.Command {
		case "DEL":
			dels = append(dels, c.Env["CNI_CONTAINERID"]+"/"+c.Env["CNI_IFNAME"]+"@"+c.Env["CNI_NETNS"])
		case "GC":
			gcs = append(gcs, c.Plugin)
			var g struct {
				VA []types.GCAttachment `json:"cni.dev/valid-attachments"`
			}
			c.Conf(&g)
			if len(g.VA) != 1 || g.VA[0] != valid {
				t.Errorf("%s GC got attachments %+v", c.Plugin, g.VA)
			}
		default:
			t.Errorf("unexpected %s %s", c.Plugin, c.Command)
		}
	}
	// The dead pod's netns path does not exist: DEL is told there is none.
	if !slices.Equal(dels, []string{"dead/eth0@"}) {
		t.Errorf("DELs %v", dels)
	}
	if !slices.Equal(gcs, []string{"bridge", "host-local"}) {
		t.Errorf("GC forwarded to %v", gcs)
	}
	var left []string
	for _, r := range f.records() {
		left = append(left, r.ContainerID)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"live", "other"}) {
		t.Errorf("records left %v", left)
	}
	got := listDir(t, hl)
	want := []string{"10.244.1.2", "10.244.1.5", "10.244.1.7.tmp-save", "last_reserved_ip.0", "lock", "notes.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("host-local dir has %v, want %v", got, want)
	}
}

// With Debian's plugins (no GC of their own), without a subnet file, and
// without the valid-attachments key (libcni's GC without arguments), GC
// still frees everything of the network.
func TestGCWithoutAgentOrList(t *testing.T) {
	f := newFixture(t)
	old := []string{"0.3.1", "0.4.0", "1.0.0"}
	f.exec.Set("bridge", &cnitest.Plugin{Versions: old})
	f.exec.Set("host-local", &cnitest.Plugin{Versions: old})
	ipamDir := filepath.Join(f.dir, "ipam")
	conf := f.conf("1.1.0", map[string]any{"delegate": map[string]any{"ipam": map[string]any{"dataDir": ipamDir}}})
	f.add("c1", conf)
	hl := hostLocal(t, ipamDir, "weftnet", map[string]string{"10.244.1.2": "c1\r\neth0", "10.244.1.9": "leaked\r\neth0"})
	f.removeSubnetEnv()
	f.exec.Reset()
	if err := f.p.GC(f.args("", conf)); err != nil {
		t.Fatal(err)
	}
	if calls := f.exec.Calls(); len(calls) != 1 || calls[0].Command != "DEL" {
		t.Fatalf("calls %+v", calls)
	}
	if len(f.records()) != 0 {
		t.Fatal("records left")
	}
	// The fake DEL does not release; GC's own sweep does.
	if got := listDir(t, hl); !slices.Equal(got, []string{"lock"}) {
		t.Fatalf("host-local dir has %v", got)
	}
}

// A delegate DEL failing for one stale attachment does not stop the rest.
func TestGCGoesOnPastErrors(t *testing.T) {
	f := newFixture(t)
	f.add("a", f.conf("1.1.0", nil))
	f.add("b", f.conf("1.1.0", nil))
	f.exec.Set("bridge", &cnitest.Plugin{Handle: func(c cnitest.Call) ([]byte, error) {
		if c.Command == "DEL" && c.Env["CNI_CONTAINERID"] == "a" {
			return nil, types.NewError(types.ErrInternal, "stuck", "")
		}
		return cnitest.Default(c)
	}})
	conf := f.conf("1.1.0", map[string]any{"delegate": map[string]any{"ipam": map[string]any{"dataDir": filepath.Join(f.dir, "ipam")}}})
	e := wantCode(t, f.p.GC(f.args("", conf)), types.ErrInternal)
	if !strings.Contains(e.Msg, "stale attachment a/eth0") {
		t.Fatalf("message %q", e.Msg)
	}
	recs := f.records()
	if len(recs) != 1 || recs[0].ContainerID != "a" {
		b, _ := json.Marshal(recs)
		t.Fatalf("records %s", b)
	}
}
