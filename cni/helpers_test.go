package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/cni/cnitest"
	"github.com/weftnet/weft/subnetenv"
)

const testSubnetEnv = "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.0/24\nWEFT_MTU=1424\nWEFT_IPMASQ=false\n"

// fixture is one node: a run dir with subnet.env, a data dir, fake bridge
// and host-local plugins, and a plugin writing its results to out.
type fixture struct {
	t          *testing.T
	dir        string
	subnetFile string
	dataDir    string
	exec       *cnitest.Exec
	out        bytes.Buffer
	p          *Plugin
	// stopAgent stops the fake agent every fixture starts (fakeAgent,
	// answering with the subnet file's subnet).
	stopAgent func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.subnetFile = filepath.Join(f.dir, "run", "subnet.env")
	f.dataDir = filepath.Join(f.dir, "data")
	f.writeSubnetEnv(testSubnetEnv)
	f.exec = cnitest.NewExec(map[string]*cnitest.Plugin{"bridge": {}, "host-local": {}})
	f.p = New(Config{Exec: f.exec, Stdout: &f.out})
	f.stopAgent = fakeAgent(t, f, "")
	return f
}

func (f *fixture) writeSubnetEnv(body string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(f.subnetFile), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(f.subnetFile, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) removeSubnetEnv() {
	f.t.Helper()
	if err := os.Remove(f.subnetFile); err != nil {
		f.t.Fatal(err)
	}
}

// conf is a network config for the fixture at cniVersion v; extra keys are
// laid over it.
func (f *fixture) conf(v string, extra map[string]any) []byte {
	f.t.Helper()
	m := map[string]any{"cniVersion": v, "name": "weftnet", "type": "weft-cni",
		"subnetFile": f.subnetFile, "dataDir": f.dataDir}
	for k, val := range extra {
		if val == nil {
			delete(m, k)
		} else {
			m[k] = val
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) args(containerID string, conf []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: containerID, Netns: "/var/run/netns/" + containerID,
		IfName: "eth0", Path: cnitest.Dir, StdinData: conf}
}

// add runs ADD and returns its printed result.
func (f *fixture) add(containerID string, conf []byte) map[string]any {
	f.t.Helper()
	f.out.Reset()
	if err := f.p.Add(f.args(containerID, conf)); err != nil {
		f.t.Fatalf("ADD %s: %v", containerID, err)
	}
	var res map[string]any
	if err := json.Unmarshal(f.out.Bytes(), &res); err != nil {
		f.t.Fatalf("ADD result %q: %v", f.out.String(), err)
	}
	return res
}

func (f *fixture) records() []record {
	f.t.Helper()
	recs, errs := store{f.dataDir}.list()
	if len(errs) > 0 {
		f.t.Fatal(errs)
	}
	return recs
}

// wantCode fails unless err is a CNI error with code.
func wantCode(t *testing.T, err error, code uint) *types.Error {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("want CNI error code %d, have %v (%T)", code, err, err)
	}
	if e.Code != code {
		t.Fatalf("want CNI error code %d, have %d: %s", code, e.Code, e)
	}
	return e
}

// delegateConf decodes the config a delegate call received.
func delegateConf(t *testing.T, c cnitest.Call) Delegate {
	t.Helper()
	var d Delegate
	if err := c.Conf(&d); err != nil {
		t.Fatalf("%s %s stdin: %v\n%s", c.Plugin, c.Command, err, c.Stdin)
	}
	return d
}

// The plugin's defaults point where the agent writes, by default.
func TestDefaultsMatchAgent(t *testing.T) {
	if want := filepath.Join(agent.DefaultConfig().RunDir, subnetenv.File); DefaultSubnetFile != want {
		t.Fatalf("DefaultSubnetFile %s, the agent writes %s", DefaultSubnetFile, want)
	}
	c := &NetConf{SubnetFile: DefaultSubnetFile}
	if want := filepath.Join(agent.DefaultConfig().RunDir, api.SocketFile); c.SocketPath() != want {
		t.Fatalf("socket %s, the agent listens on %s", c.SocketPath(), want)
	}
}
