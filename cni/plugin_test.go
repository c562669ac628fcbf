package cni

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/cni/cnitest"
)

func TestAddEveryVersion(t *testing.T) {
	for _, v := range Versions.SupportedVersions() {
		t.Run(v, func(t *testing.T) {
			f := newFixture(t)
			res := f.add("c1", f.conf(v, nil))
			if res["cniVersion"] != v {
				t.Fatalf("result version %v, want %s: %v", res["cniVersion"], v, res)
			}
			if !strings.Contains(f.out.String(), "10.244.1.2/24") {
				t.Fatalf("result lacks the pod address: %s", f.out.String())
			}
			calls := f.exec.Calls()
			if len(calls) != 1 || calls[0].Plugin != "bridge" || calls[0].Command != "ADD" {
				t.Fatalf("calls %+v", calls)
			}
			c := calls[0]
			for k, want := range map[string]string{"CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0",
				"CNI_NETNS": "/var/run/netns/c1", "CNI_PATH": cnitest.Dir} {
				if c.Env[k] != want {
					t.Errorf("delegate got %s=%q, want %q", k, c.Env[k], want)
				}
			}
			if d := delegateConf(t, c); d.CNIVersion != v || d.Name != "weftnet" {
				t.Errorf("delegate config %s", c.Stdin)
			}
			recs := f.records()
			if len(recs) != 1 || recs[0].ContainerID != "c1" || recs[0].IfName != "eth0" ||
				recs[0].Network != "weftnet" || !bytes.Equal(recs[0].Delegate, c.Stdin) {
				t.Fatalf("records %+v", recs)
			}
		})
	}
}

// Debian's plugins 1.1.1 stop at 1.0.0: a 1.1.0 network speaks 1.0.0 to
// them and still answers in 1.1.0.
func TestAddNegotiatesDelegateVersion(t *testing.T) {
	f := newFixture(t)
	old := []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"}
	f.exec.Set("bridge", &cnitest.Plugin{Versions: old})
	f.exec.Set("host-local", &cnitest.Plugin{Versions: old})
	res := f.add("c1", f.conf("1.1.0", nil))
	if res["cniVersion"] != "1.1.0" {
		t.Fatalf("result %v", res)
	}
	if d := delegateConf(t, f.exec.Calls("ADD")[0]); d.CNIVersion != "1.0.0" {
		t.Fatalf("delegate spoke %s", d.CNIVersion)
	}

	// host-local alone limits the version too.
	f.exec.Set("bridge", &cnitest.Plugin{})
	f.exec.Set("host-local", &cnitest.Plugin{Versions: []string{"0.3.1", "0.4.0"}})
	f.exec.Reset()
	f.add("c2", f.conf("1.1.0", nil))
	if d := delegateConf(t, f.exec.Calls("ADD")[0]); d.CNIVersion != "0.4.0" {
		t.Fatalf("delegate spoke %s", d.CNIVersion)
	}

	f.exec.Set("host-local", &cnitest.Plugin{Versions: []string{"0.1.0", "0.2.0"}})
	err := f.p.Add(f.args("c3", f.conf("1.0.0", nil)))
	wantCode(t, err, types.ErrIncompatibleCNIVersion)
}

func TestAddWithoutAgent(t *testing.T) {
	f := newFixture(t)
	f.removeSubnetEnv()
	err := f.p.Add(f.args("c1", f.conf("1.0.0", nil)))
	e := wantCode(t, err, types.ErrTryAgainLater)
	if !strings.Contains(e.Msg, "not running") || !strings.Contains(e.Msg, f.subnetFile) {
		t.Fatalf("message %q should say the agent is not running and name %s", e.Msg, f.subnetFile)
	}
	if n := len(f.exec.Calls()); n != 0 {
		t.Fatalf("%d delegate calls", n)
	}
	if len(f.records()) != 0 {
		t.Fatal("a record without an attachment")
	}
}

// A subnet.env left by an agent killed with -9 (nothing answers on
// weft.sock), or one whose agent now holds another subnet, is not trusted:
// ADD fails as "try again later" and the delegate is never asked for an
// address.
func TestAddStaleSubnetEnv(t *testing.T) {
	f := newFixture(t)
	f.stopAgent()
	err := f.p.Add(f.args("c1", f.conf("1.0.0", nil)))
	e := wantCode(t, err, types.ErrTryAgainLater)
	if !strings.Contains(e.Msg, "agent is not running") || !strings.Contains(e.Msg, "does not answer") || !strings.Contains(e.Msg, f.subnetFile) {
		t.Fatalf("message %q should say the agent is not running and name %s", e.Msg, f.subnetFile)
	}
	fakeAgent(t, f, "10.244.9.0/24")
	e = wantCode(t, f.p.Add(f.args("c1", f.conf("1.0.0", nil))), types.ErrTryAgainLater)
	if !strings.Contains(e.Msg, "holds subnet 10.244.9.0/24") {
		t.Fatalf("message %q", e.Msg)
	}
	if n := len(f.exec.Calls()); n != 0 {
		t.Fatalf("%d delegate calls", n)
	}
	if len(f.records()) != 0 {
		t.Fatal("a record without an attachment")
	}
}

func TestAddBadSubnetEnv(t *testing.T) {
	f := newFixture(t)
	f.writeSubnetEnv("WEFT_NETWORK=10.244.0.0/16\n")
	err := f.p.Add(f.args("c1", f.conf("1.0.0", nil)))
	e := wantCode(t, err, types.ErrInvalidNetworkConfig)
	if !strings.Contains(e.Msg, "WEFT_SUBNET") {
		t.Fatalf("message %q", e.Msg)
	}
}

func TestAddDelegateNotFound(t *testing.T) {
	for _, missing := range []string{"bridge", "host-local"} {
		t.Run(missing, func(t *testing.T) {
			f := newFixture(t)
			f.exec.Set(missing, nil)
			err := f.p.Add(f.args("c1", f.conf("1.0.0", nil)))
			e := wantCode(t, err, types.ErrInvalidNetworkConfig)
			if !strings.Contains(e.Msg, `"`+missing+`" not found in CNI_PATH`) {
				t.Fatalf("message %q", e.Msg)
			}
			if len(f.records()) != 0 {
				t.Fatal("a record without an attachment")
			}
		})
	}
}

// A failed delegate ADD is undone with a delegate DEL, and its record goes.
func TestAddUndoesOnFailure(t *testing.T) {
	f := newFixture(t)
	f.exec.Set("bridge", &cnitest.Plugin{Handle: cnitest.Fail(types.ErrTryAgainLater, "bridge busy", "ADD")})
	err := f.p.Add(f.args("c1", f.conf("1.0.0", nil)))
	e := wantCode(t, err, types.ErrTryAgainLater)
	if !strings.Contains(e.Msg, "delegate bridge ADD: bridge busy") {
		t.Fatalf("message %q", e.Msg)
	}
	calls := f.exec.Calls()
	if len(calls) != 2 || calls[1].Command != "DEL" || !bytes.Equal(calls[0].Stdin, calls[1].Stdin) {
		t.Fatalf("calls %+v", calls)
	}
	if len(f.records()) != 0 {
		t.Fatal("record left after the undo")
	}

	// If the undo fails too, the record stays for the runtime's DEL.
	f.exec.Set("bridge", &cnitest.Plugin{Handle: cnitest.Fail(types.ErrInternal, "broken", "ADD", "DEL")})
	f.p.Add(f.args("c1", f.conf("1.0.0", nil)))
	if len(f.records()) != 1 {
		t.Fatal("record dropped although the delegate kept its resources")
	}
}

// A second ADD of an attachment that exists fails in the delegate
// ("eth0 already exists"); its undo must leave the existing attachment:
// no delegate DEL (it would remove eth0 and free the address), the saved
// config unchanged.
func TestReAddKeepsExistingAttachment(t *testing.T) {
	f := newFixture(t)
	f.add("c1", f.conf("1.0.0", nil))
	saved := f.records()
	f.exec.Set("bridge", &cnitest.Plugin{Handle: cnitest.Fail(types.ErrInternal, "container veth name provided (eth0) already exists", "ADD")})
	f.exec.Reset()
	conf := f.conf("1.0.0", map[string]any{"delegate": map[string]any{"bridge": "other0"}})
	e := wantCode(t, f.p.Add(f.args("c1", conf)), types.ErrInternal)
	if !strings.Contains(e.Msg, "eth0) already exists") || !strings.Contains(e.Msg, "left it as it was") {
		t.Fatalf("message %q", e.Msg)
	}
	if dels := f.exec.Calls("DEL"); len(dels) != 0 {
		t.Fatalf("the failed re-ADD ran the delegate's DEL on the existing attachment: %+v", dels)
	}
	if recs := f.records(); len(recs) != 1 || !bytes.Equal(recs[0].Delegate, saved[0].Delegate) {
		t.Fatalf("records %+v, want the first ADD's", recs)
	}

	// A re-ADD the delegate accepts saves its own config for DEL.
	f.exec.Set("bridge", &cnitest.Plugin{})
	f.add("c1", conf)
	if recs := f.records(); len(recs) != 1 || !bytes.Equal(recs[0].Delegate, f.exec.Calls("ADD")[1].Stdin) {
		t.Fatalf("records %+v, want the second ADD's", recs)
	}
}

func TestDelReplaysSavedConfig(t *testing.T) {
	f := newFixture(t)
	f.add("c1", f.conf("1.0.0", nil))
	added := f.exec.Calls("ADD")[0].Stdin

	// The agent stopped (no subnet file) and the network config changed:
	// DEL still uses what ADD used.
	f.removeSubnetEnv()
	conf := f.conf("1.0.0", map[string]any{"delegate": map[string]any{"bridge": "other0"}})
	f.exec.Reset()
	if err := f.p.Del(f.args("c1", conf)); err != nil {
		t.Fatal(err)
	}
	dels := f.exec.Calls()
	if len(dels) != 1 || dels[0].Command != "DEL" || !bytes.Equal(dels[0].Stdin, added) || dels[0].Env["CNI_CONTAINERID"] != "c1" {
		t.Fatalf("calls %+v", dels)
	}
	if len(f.records()) != 0 {
		t.Fatal("record left after DEL")
	}
	// Twice: nothing to do, no error.
	f.exec.Reset()
	if err := f.p.Del(f.args("c1", conf)); err != nil {
		t.Fatal(err)
	}
	if n := len(f.exec.Calls()); n != 0 {
		t.Fatalf("second DEL made %d delegate calls", n)
	}
	// Never added, and no data dir at all.
	f.dataDir = filepath.Join(f.dir, "fresh")
	if err := f.p.Del(f.args("c9", f.conf("1.0.0", nil))); err != nil {
		t.Fatal(err)
	}
}

func TestDelKeepsRecordWhenDelegateFails(t *testing.T) {
	f := newFixture(t)
	f.add("c1", f.conf("1.0.0", nil))
	f.exec.Set("bridge", &cnitest.Plugin{Handle: cnitest.Fail(types.ErrInternal, "broken", "DEL")})
	err := f.p.Del(f.args("c1", f.conf("1.0.0", nil)))
	wantCode(t, err, types.ErrInternal)
	if len(f.records()) != 1 {
		t.Fatal("record dropped although DEL failed")
	}
	f.exec.Set("bridge", nil)
	err = f.p.Del(f.args("c1", f.conf("1.0.0", nil)))
	wantCode(t, err, types.ErrInvalidNetworkConfig)
}

func TestCheck(t *testing.T) {
	f := newFixture(t)
	old := []string{"0.3.1", "0.4.0", "1.0.0"}
	f.exec.Set("bridge", &cnitest.Plugin{Versions: old})
	f.exec.Set("host-local", &cnitest.Plugin{Versions: old})
	res := f.add("c1", f.conf("1.1.0", nil))
	withPrev := f.conf("1.1.0", map[string]any{"prevResult": res})

	f.exec.Reset()
	if err := f.p.Check(f.args("c1", withPrev)); err != nil {
		t.Fatal(err)
	}
	checks := f.exec.Calls()
	if len(checks) != 1 || checks[0].Command != "CHECK" {
		t.Fatalf("calls %+v", checks)
	}
	d := delegateConf(t, checks[0])
	var prev map[string]any
	json.Unmarshal(d.PrevResult, &prev)
	if d.CNIVersion != "1.0.0" || prev["cniVersion"] != "1.0.0" || !strings.Contains(string(d.PrevResult), "10.244.1.2/24") {
		t.Fatalf("delegate CHECK config %s", checks[0].Stdin)
	}

	// The delegate's verdict is the answer.
	f.exec.Set("bridge", &cnitest.Plugin{Versions: old, Handle: cnitest.Fail(types.ErrInternal, "interface eth0 not found", "CHECK")})
	e := wantCode(t, f.p.Check(f.args("c1", withPrev)), types.ErrInternal)
	if !strings.Contains(e.Msg, "delegate bridge CHECK: interface eth0 not found") {
		t.Fatalf("message %q", e.Msg)
	}

	wantCode(t, f.p.Check(f.args("c1", f.conf("1.1.0", nil))), types.ErrInvalidNetworkConfig)
	wantCode(t, f.p.Check(f.args("c2", withPrev)), types.ErrUnknownContainer)

	// The agent came back with another subnet: the pod is stranded.
	f.exec.Set("bridge", &cnitest.Plugin{Versions: old})
	f.writeSubnetEnv(strings.Replace(testSubnetEnv, "10.244.1.0/24", "10.244.9.0/24", 1))
	e = wantCode(t, f.p.Check(f.args("c1", withPrev)), types.ErrInvalidNetworkConfig)
	if !strings.Contains(e.Msg, "outside this node's subnet 10.244.9.0/24") {
		t.Fatalf("message %q", e.Msg)
	}
	// No agent at all: the delegate still checks the pod.
	f.removeSubnetEnv()
	if err := f.p.Check(f.args("c1", withPrev)); err != nil {
		t.Fatal(err)
	}
}

func TestRecordNames(t *testing.T) {
	st := store{t.TempDir()}
	a := record{ContainerID: "a-b", IfName: "c", Network: "n", Delegate: json.RawMessage(`{"type":"bridge"}`)}
	b := record{ContainerID: "a", IfName: "b-c", Network: "n", Delegate: json.RawMessage(`{"type":"bridge"}`)}
	for _, r := range []record{a, b} {
		if err := st.save(r); err != nil {
			t.Fatal(err)
		}
	}
	recs, errs := st.list()
	if len(recs) != 2 || len(errs) != 0 {
		t.Fatalf("records %+v, errors %v", recs, errs)
	}
	os.WriteFile(filepath.Join(st.dir, "junk.json"), []byte("{"), 0o600)
	if recs, errs := st.list(); len(recs) != 2 || len(errs) != 1 {
		t.Fatalf("records %+v, errors %v", recs, errs)
	}
}
