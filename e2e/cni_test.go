package e2e

// weft-cni with the real CNI stack: weft agents on two lab hosts, the
// reference plugins (Debian's and the current release), and cnitool as the
// runtime, two pods per host. Pods reach each other on one host and across
// hosts, and the other host's overlay address; DEL removes the veth and
// frees the address; ADD waits for a restarted agent; CHECK tells a healthy
// pod from a broken one; GC frees what nothing holds; every bad config gets
// its error code.

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/cni/cnitest"
	"github.com/weftnet/weft/internal/testenv"
)

func TestCNI(t *testing.T) {
	testenv.Require(t)
	requireTools(t, "ip", "ethtool", "ping")
	cnitool, err := cnitest.Cnitool()
	testenv.Need(t, err)
	for i, set := range cnitest.PluginSets() {
		t.Run(set.Name, func(t *testing.T) {
			testenv.Need(t, set.Check())
			cniCase(t, set, cnitool, string(rune('a'+i)))
		})
	}
}

func cniCase(t *testing.T, set cnitest.PluginSet, cnitool, tag string) {
	l, nodes := weftLab(t, "cni"+tag, 2, "")
	h1, h2 := installCNI(t, l, nodes[0], set, cnitool), installCNI(t, l, nodes[1], set, cnitool)

	pods := map[string]*pod{}
	for _, h := range []*cniHost{h1, h2} {
		for _, name := range []string{"a", "b"} {
			p := h.newPod(name)
			h.add(p)
			pods[h.w.Name+name] = p
		}
		if n := h.bridgePorts(); n != 2 {
			t.Fatalf("%s: %d ports on cni0, want 2", h.w.Name, n)
		}
	}
	a1, b1, a2, b2 := pods["h1a"], pods["h1b"], pods["h2a"], pods["h2b"]
	mtu := status(t, nodes[0]).MTU
	if out, err := a1.Run(t.Context(), "ip", "link", "show", "eth0"); err != nil || !strings.Contains(out, "mtu "+strconv.Itoa(mtu)) {
		t.Fatalf("pod eth0 should have weft's MTU %d: %v\n%s", mtu, err, out)
	}

	t.Run("traffic", func(t *testing.T) {
		waitPing(t, a1.Host, b1.addr)                   // one host
		waitPing(t, a1.Host, a2.addr)                   // across
		waitPing(t, b2.Host, b1.addr)                   // across, the other way
		waitPing(t, a1.Host, nodes[1].Addr)             // the other host's overlay address
		waitPing(t, b2.Host, nodes[0].Addr)             //   and back
		waitPing(t, nodes[1].Host, a1.addr)             // a host to a pod elsewhere
		waitPing(t, nodes[0].Host, b1.addr)             // and to its own
		waitPing(t, a2.Host, h2.w.Subnet.Addr().Next()) // its gateway, cni0
	})

	t.Run("check", func(t *testing.T) {
		h1.cnitoolOK("check", a1)
		h1.cnitoolOK("check", b1)
		if _, err := b1.Run(t.Context(), "ip", "addr", "flush", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		if code, out := h1.cnitoolRun("check", b1); code == 0 {
			t.Fatalf("CHECK passed a pod without its address:\n%s", out)
		}
		if _, err := a2.Run(t.Context(), "ip", "link", "del", "eth0"); err != nil {
			t.Fatal(err)
		}
		if code, out := h2.cnitoolRun("check", a2); code == 0 {
			t.Fatalf("CHECK passed a pod without its interface:\n%s", out)
		}
	})

	t.Run("del", func(t *testing.T) {
		before := h1.reservations()
		h1.cnitoolOK("del", b1)
		if n := h1.bridgePorts(); n != 1 {
			t.Fatalf("%d ports on cni0 after DEL, want 1", n)
		}
		if out, _ := b1.Run(t.Context(), "ip", "-o", "link"); strings.Contains(out, "eth0") {
			t.Fatalf("eth0 left in the pod:\n%s", out)
		}
		after := h1.reservations()
		if len(after) != len(before)-1 || slices.Contains(after, b1.addr.String()) {
			t.Fatalf("host-local holds %v after DEL of %s (before: %v)", after, b1.addr, before)
		}
		h1.cnitoolOK("del", b1) // twice
		// The address is free again: the pod gets one back.
		h1.add(b1)
		waitPing(t, b1.Host, b2.addr)
	})

	t.Run("agent restart", func(t *testing.T) {
		w := nodes[0]
		if err := w.Stop(); err != nil {
			t.Fatal(err)
		}
		c1 := h1.newPod("c")
		code, out := h1.cnitoolRun("add", c1)
		if code == 0 || !strings.Contains(out, "not running") {
			t.Fatalf("ADD without the agent: exit %d\n%s", code, out)
		}
		if r := h1.plugin("ADD", c1, h1.conf("1.1.0", nil)); r.err == nil || r.err.Code != types.ErrTryAgainLater {
			t.Fatalf("ADD without the agent: %+v", r)
		}
		if r := h1.plugin("STATUS", nil, h1.conf("1.1.0", nil)); r.err == nil || r.err.Code != types.ErrPluginNotAvailable {
			t.Fatalf("STATUS without the agent: %+v", r)
		}
		if code, out := h1.cnitoolRun("status", c1); code == 0 {
			t.Fatalf("cnitool status without the agent passed:\n%s", out)
		}
		// DEL needs no agent.
		h1.cnitoolOK("del", a1)

		if err := w.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		h1.cnitoolOK("status", c1)
		h1.add(c1)
		h1.add(a1)
		waitPing(t, c1.Host, b2.addr)
		waitPing(t, b2.Host, a1.addr)
		waitPing(t, a1.Host, c1.addr)
	})

	t.Run("errors", func(t *testing.T) {
		p := h1.newPod("e")
		before := h1.reservations()
		for _, tt := range []struct {
			name string
			conf []byte
			code uint
			msg  string
		}{
			{"no subnet file", h1.conf("1.1.0", map[string]any{"subnetFile": "/nonexistent/weft/subnet.env"}), types.ErrTryAgainLater, "agent is not running"},
			{"malformed", []byte(`{"cniVersion": "1.1.0", "name": `), types.ErrDecodingFailure, ""},
			{"incomplete", h1.conf("1.1.0", map[string]any{"name": nil}), types.ErrInvalidNetworkConfig, "name"},
			{"bad key", h1.conf("1.1.0", map[string]any{"dataDir": "relative"}), types.ErrInvalidNetworkConfig, "absolute"},
			{"bad delegate", h1.conf("1.1.0", map[string]any{"delegate": map[string]any{"mtu": "big"}}), types.ErrInvalidNetworkConfig, "delegate"},
			{"unsupported version", h1.conf("0.2.0", nil), types.ErrIncompatibleCNIVersion, "incompatible"},
			{"delegate not found", h1.conf("1.1.0", map[string]any{"delegate": map[string]any{"type": "nosuchplugin"}}), types.ErrInvalidNetworkConfig, "not found in CNI_PATH"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := h1.plugin("ADD", p, tt.conf)
				if r.exit != 1 || r.err == nil || r.err.Code != tt.code || !strings.Contains(r.err.Msg, tt.msg) {
					t.Fatalf("exit %d, stdout %s; want code %d and a message with %q", r.exit, r.stdout, tt.code, tt.msg)
				}
			})
		}
		if after := h1.reservations(); !slices.Equal(after, before) {
			t.Fatalf("failed ADDs changed the reservations: %v, before %v", after, before)
		}
	})

	t.Run("gc", func(t *testing.T) {
		// A reservation nobody holds, as a DEL that never came leaves.
		leak := h2.w.Subnet.Addr().Next().Next().Next().Next().Next().Next().Next().Next().Next().Next()
		if err := os.WriteFile(filepath.Join(h2.ipamDir, leak.String()), []byte("gone-container\r\neth0"), 0o600); err != nil {
			t.Fatal(err)
		}
		// cnitool gc passes no valid attachments: everything of the
		// network on h2 goes.
		h2.cnitoolOK("gc", b2)
		if got := h2.reservations(); len(got) != 0 {
			t.Fatalf("host-local holds %v after GC", got)
		}
		if n := h2.bridgePorts(); n != 0 {
			t.Fatalf("%d ports on cni0 after GC", n)
		}
		noPing(t, a1.Host, b2.addr)
	})
}

// needCNI returns cnitool and the first plugin set (Debian's), failing
// under CI=true, as testenv.Need does, when either is missing.
func needCNI(t *testing.T) (string, cnitest.PluginSet) {
	t.Helper()
	cnitool, err := cnitest.Cnitool()
	testenv.Need(t, err)
	set := cnitest.PluginSets()[0]
	testenv.Need(t, set.Check())
	return cnitool, set
}
