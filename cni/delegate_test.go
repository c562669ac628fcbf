package cni

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/subnetenv"
)

func testSubnet(t *testing.T) subnetenv.Env {
	t.Helper()
	s, err := subnetenv.Parse([]byte(testSubnetEnv))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustConf(t *testing.T, js string) *NetConf {
	t.Helper()
	c, err := ParseNetConf([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// jsonEqual compares two JSON texts as values.
func jsonEqual(t *testing.T, have []byte, want string) {
	t.Helper()
	var h, w any
	if err := json.Unmarshal(have, &h); err != nil {
		t.Fatalf("have %s: %v", have, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	hb, _ := json.Marshal(h)
	wb, _ := json.Marshal(w)
	if string(hb) != string(wb) {
		t.Fatalf("have %s\nwant %s", hb, wb)
	}
}

func TestDefaultDelegate(t *testing.T) {
	c := mustConf(t, `{"cniVersion":"1.0.0","name":"weftnet","type":"weft-cni"}`)
	d, err := c.buildDelegate(testSubnet(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b, `{
		"cniVersion": "1.0.0", "name": "weftnet", "type": "bridge", "bridge": "cni0",
		"isGateway": true, "ipMasq": false, "mtu": 1424, "hairpinMode": true,
		"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
			"routes": [{"dst": "10.244.0.0/16", "gw": "10.244.1.1"}]}}`)
}

func TestDefaultDelegateDualStack(t *testing.T) {
	c := mustConf(t, `{"cniVersion":"1.0.0","name":"weftnet","type":"weft-cni"}`)
	s, err := subnetenv.Parse([]byte(testSubnetEnv + "WEFT_NETWORK6=fd00:10:244::/56\nWEFT_SUBNET6=fd00:10:244:1::/64\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.buildDelegate(s)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d.IPAM)
	jsonEqual(t, b, `{"type": "host-local",
		"ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]],
		"routes": [{"dst": "10.244.0.0/16", "gw": "10.244.1.1"}, {"dst": "fd00:10:244::/56", "gw": "fd00:10:244:1::1"}]}`)
}

func TestDelegateOverride(t *testing.T) {
	c := mustConf(t, `{"cniVersion":"1.1.0","name":"weftnet","type":"weft-cni",
		"runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"},
		"delegate": {"bridge": "weft0", "isDefaultGateway": true, "ipMasq": true, "mtu": 1400,
			"name": "ignored", "cniVersion": "0.1.0", "macspoofchk": true,
			"ipam": {"dataDir": "/tmp/ipam", "resolvConf": "/etc/resolv.conf"}}}`)
	d, err := c.buildDelegate(testSubnet(t))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d)
	jsonEqual(t, b, `{
		"cniVersion": "1.1.0", "name": "weftnet", "type": "bridge", "bridge": "weft0",
		"isGateway": true, "isDefaultGateway": true, "ipMasq": true, "mtu": 1400, "hairpinMode": true,
		"macspoofchk": true, "runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"},
		"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
			"routes": [{"dst": "10.244.0.0/16", "gw": "10.244.1.1"}],
			"dataDir": "/tmp/ipam", "resolvConf": "/etc/resolv.conf"}}`)
	if got := d.hostLocalDir(); got != "/tmp/ipam/weftnet" {
		t.Fatalf("hostLocalDir %s", got)
	}

	// Saved and read back, the config is the same.
	d2, err := decodeDelegate(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(d2)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed the config:\n%s\n%s", b, b2)
	}
}

func TestDelegateOtherIPAMReplaces(t *testing.T) {
	c := mustConf(t, `{"cniVersion":"1.0.0","name":"n","type":"weft-cni",
		"delegate": {"type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "10.9.0.2/24"}]}}}`)
	d, err := c.buildDelegate(testSubnet(t))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d.IPAM)
	jsonEqual(t, b, `{"type": "static", "addresses": [{"address": "10.9.0.2/24"}]}`)
	if d.hostLocalDir() != "" {
		t.Fatal("static IPAM has a host-local dir")
	}
	if p := d.plugins(); len(p) != 2 || p[0] != "ptp" || p[1] != "static" {
		t.Fatalf("plugins %v", p)
	}
}

func TestDelegateBad(t *testing.T) {
	for _, tt := range []struct{ name, delegate, err string }{
		{"wrong type", `{"mtu": "big"}`, "delegate"},
		{"empty type", `{"type": ""}`, "empty \"type\""},
		{"path type", `{"type": "/usr/bin/bridge"}`, "not paths"},
		{"path ipam", `{"ipam": {"type": "../host-local"}}`, "not paths"},
		{"itself", `{"type": "weft-cni"}`, "call itself"},
		{"bad route", `{"ipam": {"routes": [{"dst": "everywhere"}]}}`, "delegate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustConf(t, `{"cniVersion":"1.0.0","name":"n","type":"weft-cni","delegate":`+tt.delegate+`}`)
			_, err := c.buildDelegate(testSubnet(t))
			e := wantCode(t, err, types.ErrInvalidNetworkConfig)
			if !strings.Contains(e.Msg, tt.err) {
				t.Fatalf("message %q lacks %q", e.Msg, tt.err)
			}
		})
	}
}

func TestParseNetConf(t *testing.T) {
	c := mustConf(t, `{"cniVersion":"1.1.0","name":"n","type":"weft-cni"}`)
	if c.SubnetFile != DefaultSubnetFile || c.DataDir != DefaultDataDir {
		t.Fatalf("defaults: %+v", c)
	}
	for _, tt := range []struct{ name, conf, err string }{
		{"no name", `{"cniVersion":"1.1.0","type":"weft-cni"}`, "no \"name\""},
		{"relative subnetFile", `{"name":"n","subnetFile":"run/subnet.env"}`, "absolute"},
		{"relative dataDir", `{"name":"n","dataDir":"data"}`, "absolute"},
		{"subnetFile not a string", `{"name":"n","subnetFile":7}`, "subnetFile"},
		{"delegate not an object", `{"name":"n","delegate":"bridge"}`, "want an object"},
		{"delegate a list", `{"name":"n","delegate":[1]}`, "want an object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNetConf([]byte(tt.conf))
			e := wantCode(t, err, types.ErrInvalidNetworkConfig)
			if !strings.Contains(e.Msg, tt.err) {
				t.Fatalf("message %q lacks %q", e.Msg, tt.err)
			}
		})
	}
}
