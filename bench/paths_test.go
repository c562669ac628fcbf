package bench

import (
	"crypto/ecdh"
	"crypto/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/lab"
)

// Every path in AllPaths is built under its own name; the -v6 ones carry
// IPv6 and have vxlan-v6 as their baseline; --queues reaches every weft path
// but the single-queue weft-water.
func TestNewPath(t *testing.T) {
	cfg := Config{Binary: "/bin/true", WireguardGo: "/bin/true", Queues: 4}
	for _, name := range AllPaths {
		p, err := newPath(name, cfg, "/tmp/x")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.Name() != name {
			t.Errorf("newPath(%q).Name() = %q", name, p.Name())
		}
		wantBase := PathVXLAN
		if strings.HasSuffix(name, "-v6") {
			wantBase = PathVXLAN6
		}
		if got := baselineOf(name); got != wantBase {
			t.Errorf("%s: baseline %s, want %s", name, got, wantBase)
		}
		w, ok := p.(*weftPath)
		if ok != isWeftPath(name) {
			t.Errorf("%s: weft path %v, isWeftPath %v", name, ok, isWeftPath(name))
		}
		if !ok {
			continue
		}
		queues := slices.Equal(w.cfg.Args, []string{"--queues", "4"})
		if queues == (name == PathWeftWater) {
			t.Errorf("%s: args %q", name, w.cfg.Args)
		}
		if v6 := w.cfg.Network6.IsValid(); v6 != (name == PathWeft6) || w.v6 != v6 {
			t.Errorf("%s: network6 %v, v6 %v", name, w.cfg.Network6, w.v6)
		}
	}
	if w, _ := newPath(PathWeft, Config{Binary: "/bin/true"}, "/tmp/x"); len(w.(*weftPath).cfg.Args) != 0 {
		t.Errorf("no --queues given, but the weft args are %q", w.(*weftPath).cfg.Args)
	}
	if _, err := newPath("weft-v7", cfg, "/tmp/x"); err == nil {
		t.Error("unknown path accepted")
	}
}

func TestVXLANAddrs(t *testing.T) {
	for _, tc := range []struct {
		v6   bool
		want string
	}{{false, "10.250.0.2"}, {true, "fd00:10:250::2"}} {
		if got := (&vxlanPath{v6: tc.v6}).addr(2).String(); got != tc.want {
			t.Errorf("vxlan v6=%v host 2: %s, want %s", tc.v6, got, tc.want)
		}
	}
}

// In wire6 every path talks to the hosts' IPv6 underlay addresses; wire
// and offload keep the IPv4 ones.
func TestUnderlayAddrs(t *testing.T) {
	h1 := &lab.Host{Addr: netip.MustParseAddr("192.168.77.1"), Addr6: netip.MustParseAddr("fd00:77::1")}
	h2 := &lab.Host{Addr: netip.MustParseAddr("192.168.77.2"), Addr6: netip.MustParseAddr("fd00:77::2")}
	for _, u := range Underlays {
		want := h2.Addr
		if u == Wire6 {
			want = h2.Addr6
		}
		if got := underlayAddr(h2, u); got != want || u.IPv6() != (u == Wire6) {
			t.Errorf("%s: underlay address %v, want %v", u, got, want)
		}
		if ep, _ := (underlayPath{}).Up(t.Context(), &lab.Lab{Hosts: []*lab.Host{h1, h2}}, u); ep.Dst != want {
			t.Errorf("%s: underlay path to %v, want %v", u, ep.Dst, want)
		}
	}
	keys := make([]*ecdh.PrivateKey, 2)
	for i := range keys {
		keys[i], _ = ecdh.X25519().GenerateKey(rand.Reader)
	}
	hosts := []*lab.Host{h1, h2}
	if cfg := wgConfig(hosts, keys, 0, Wire6); !strings.Contains(cfg, "endpoint=[fd00:77::2]:51820\n") {
		t.Errorf("wire6 wireguard-go config:\n%s", cfg)
	}
	if cfg := wgConfig(hosts, keys, 0, Wire); !strings.Contains(cfg, "endpoint=192.168.77.2:51820\n") {
		t.Errorf("wire wireguard-go config:\n%s", cfg)
	}
}

func TestValidateQueues(t *testing.T) {
	for q, ok := range map[int]bool{-1: false, 0: true, 1: true, 8: true, 64: true, 65: false} {
		err := Config{Binary: "/bin/true", WireguardGo: "/bin/true", Queues: q}.Validate()
		if (err == nil) != ok {
			t.Errorf("queues %d: %v", q, err)
		}
	}
}

// Without vxlan-v6 an IPv6 path has no ratio (not one to IPv4 vxlan); the
// table still has its "vs vxlan" rows when only vxlan-v6 ran; --queues shows
// in the table, the chart and the JSON.
func TestReportsIPv6AndQueues(t *testing.T) {
	res := syntheticResult()
	res.Settings.Queues = 2
	res.Runs = slices.DeleteFunc(res.Runs, func(r *PathResult) bool { return r.Path == PathVXLAN6 })
	res.Summarize()
	if v := res.Find("wire", PathWeft6).Get(TCP1).VsVxlan; v != nil {
		t.Errorf("weft-v6 without vxlan-v6 has a ratio %v", *v)
	}
	var table, chart, js strings.Builder
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "weft:       --queues 2 (weft-water 1)") {
		t.Errorf("table lacks the queues:\n%s", table.String())
	}
	if err := res.WriteChart(&chart); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(chart.String(), "weft --queues 2") {
		t.Error("chart lacks the queues")
	}
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(strings.NewReader(js.String()))
	if err != nil || back.Settings.Queues != 2 {
		t.Errorf("queues read back: %+v, %v", back, err)
	}

	only6 := &Result{Settings: Settings{Paths: []string{PathVXLAN6, PathWeft6}, Underlays: []string{"wire"}, Repeat: 1, Seconds: 1}}
	for i, p := range only6.Settings.Paths {
		pr := &PathResult{Underlay: "wire", Path: p}
		pr.add(TCP1, float64(i+1))
		only6.Runs = append(only6.Runs, pr)
	}
	only6.Summarize()
	table.Reset()
	if err := only6.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "  vs vxlan") || !strings.Contains(table.String(), "2.00×") {
		t.Errorf("table of the IPv6 paths lacks their ratios:\n%s", table.String())
	}
}
