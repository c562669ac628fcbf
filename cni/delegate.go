package cni

// The delegate config: what weft-cni hands the reference bridge plugin, built
// from the node's subnet.env and overridden key by key by the network
// config's "delegate" object.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/subnetenv"
)

// Defaults of the generated delegate config.
const (
	DefaultDelegateType = "bridge"
	DefaultBridge       = "cni0"
	DefaultIPAMType     = "host-local"
)

// Delegate is the network config of the delegate plugin: the bridge
// plugin's keys, typed, plus any other key passed through in Extra (a
// delegate may take keys weft-cni does not know, e.g. a newer bridge's).
type Delegate struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`

	Bridge           string `json:"bridge,omitempty"`
	IsGateway        bool   `json:"isGateway"`
	IsDefaultGateway bool   `json:"isDefaultGateway,omitempty"`
	ForceAddress     bool   `json:"forceAddress,omitempty"`
	IPMasq           bool   `json:"ipMasq"`
	MTU              int    `json:"mtu,omitempty"`
	HairpinMode      bool   `json:"hairpinMode"`
	PromiscMode      bool   `json:"promiscMode,omitempty"`
	IPAM             IPAM   `json:"ipam"`

	RuntimeConfig json.RawMessage `json:"runtimeConfig,omitempty"`
	Args          json.RawMessage `json:"args,omitempty"`
	// PrevResult is set for CHECK only.
	PrevResult json.RawMessage `json:"prevResult,omitempty"`
	// ValidAttachments is set for GC only (non-nil, possibly empty).
	ValidAttachments *[]types.GCAttachment `json:"cni.dev/valid-attachments,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// IPAM is the delegate's "ipam" object: host-local's keys, plus Extra.
type IPAM struct {
	Type    string    `json:"type"`
	Ranges  [][]Range `json:"ranges,omitempty"`
	Routes  []Route   `json:"routes,omitempty"`
	DataDir string    `json:"dataDir,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// Range is one host-local address range.
type Range struct {
	Subnet     netip.Prefix `json:"subnet"`
	RangeStart netip.Addr   `json:"rangeStart,omitzero"`
	RangeEnd   netip.Addr   `json:"rangeEnd,omitzero"`
	Gateway    netip.Addr   `json:"gateway,omitzero"`
}

// Route is a route IPAM gives the pod. GW is explicit: bridge 1.1.1's CHECK
// compares the route it finds with the result's, gateway included.
type Route struct {
	Dst netip.Prefix `json:"dst"`
	GW  netip.Addr   `json:"gw,omitzero"`
}

// defaultDelegate is the delegate config for a node with subnet s: bridge
// cni0 as the pods' gateway, MTU and masquerading from the agent, hairpin
// mode on, host-local handing out the subnet with a route to the whole
// overlay through the bridge. A dual-stack node's IPv6 subnet is a second
// range set, so each pod gets one address of each family (as flannel's
// plugin does), with a route to the IPv6 overlay too.
func defaultDelegate(name string, s subnetenv.Env) Delegate {
	d := Delegate{
		Name: name, Type: DefaultDelegateType, Bridge: DefaultBridge,
		IsGateway: true, IPMasq: s.IPMasq, MTU: s.MTU, HairpinMode: true,
		IPAM: IPAM{Type: DefaultIPAMType},
	}
	if s.Subnet.IsValid() {
		d.IPAM.Ranges = [][]Range{{{Subnet: s.Subnet}}}
		d.IPAM.Routes = []Route{{Dst: s.Network, GW: s.Gateway()}}
	}
	if s.Subnet.IsValid() && s.DualStack() {
		d.IPAM.Ranges = append(d.IPAM.Ranges, []Range{{Subnet: s.Subnet6}})
		d.IPAM.Routes = append(d.IPAM.Routes, Route{Dst: s.Network6, GW: s.Gateway6()})
	}
	return d
}

// buildDelegate is the default delegate for s with the network config's
// "delegate" keys laid over it. An "ipam" object whose type is not
// host-local replaces the default ipam whole; otherwise its keys are laid
// over the host-local defaults too. s may be zero (GC without a subnet
// file): the result then has no ranges or routes unless the override has.
func (c *NetConf) buildDelegate(s subnetenv.Env) (Delegate, error) {
	d := defaultDelegate(c.Name, s)
	if len(c.Delegate) > 0 {
		var probe struct {
			IPAM *struct {
				Type string `json:"type"`
			} `json:"ipam"`
		}
		if err := json.Unmarshal(c.Delegate, &probe); err != nil {
			return d, errConfig("delegate: %v", err)
		}
		if probe.IPAM != nil && probe.IPAM.Type != "" && probe.IPAM.Type != DefaultIPAMType {
			d.IPAM = IPAM{}
		}
		if err := json.Unmarshal(c.Delegate, &d); err != nil {
			return d, errConfig("delegate: %v", err)
		}
	}
	// The network's identity is not the delegate's to change.
	d.Name, d.CNIVersion = c.Name, c.CNIVersion
	if len(c.RuntimeConfig) > 0 {
		d.RuntimeConfig = c.RuntimeConfig
	}
	if len(c.Args) > 0 {
		d.Args = c.Args
	}
	switch {
	case d.Type == "":
		return d, errConfig("delegate: empty \"type\"")
	case strings.ContainsAny(d.Type, `/\`), strings.ContainsAny(d.IPAM.Type, `/\`):
		return d, errConfig("delegate: plugin types are names in CNI_PATH, not paths: %q, %q", d.Type, d.IPAM.Type)
	case d.Type == "weft-cni":
		return d, errConfig("delegate: type weft-cni would call itself")
	}
	return d, nil
}

// plugins are the binaries the delegate config needs in CNI_PATH: the
// delegate and its IPAM plugin.
func (d *Delegate) plugins() []string {
	if d.IPAM.Type == "" || d.IPAM.Type == d.Type {
		return []string{d.Type}
	}
	return []string{d.Type, d.IPAM.Type}
}

// hostLocalDir is the directory host-local keeps this network's
// reservations in, or "" if the delegate does not use host-local.
func (d *Delegate) hostLocalDir() string {
	if d.IPAM.Type != DefaultIPAMType {
		return ""
	}
	dir := d.IPAM.DataDir
	if dir == "" {
		dir = "/var/lib/cni/networks"
	}
	return dir + "/" + d.Name
}

// The JSON of Delegate and IPAM: the typed keys merge over what the value
// already holds (so unmarshalling an override onto defaults works), and
// every other key lands in Extra and goes back out unchanged.

type plainDelegate Delegate
type plainIPAM IPAM

func (d *Delegate) UnmarshalJSON(b []byte) error {
	return unmarshalWithExtra(b, (*plainDelegate)(d), &d.Extra)
}

func (d Delegate) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(plainDelegate(d), d.Extra)
}

func (p *IPAM) UnmarshalJSON(b []byte) error {
	return unmarshalWithExtra(b, (*plainIPAM)(p), &p.Extra)
}

func (p IPAM) MarshalJSON() ([]byte, error) {
	return marshalWithExtra(plainIPAM(p), p.Extra)
}

func unmarshalWithExtra(b []byte, v any, extra *map[string]json.RawMessage) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	known := jsonKeys(reflect.TypeOf(v).Elem())
	for k, raw := range all {
		if known[strings.ToLower(k)] { // encoding/json matches keys case-insensitively
			continue
		}
		if *extra == nil {
			*extra = map[string]json.RawMessage{}
		}
		(*extra)[k] = raw
	}
	return nil
}

func marshalWithExtra(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, raw := range extra {
		if _, ok := all[k]; !ok {
			all[k] = raw
		}
	}
	return json.Marshal(all)
}

var keyCache sync.Map // reflect.Type → map[string]bool

// jsonKeys returns the JSON keys of a struct type's fields, lower-cased.
func jsonKeys(t reflect.Type) map[string]bool {
	if m, ok := keyCache.Load(t); ok {
		return m.(map[string]bool)
	}
	m := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[strings.ToLower(name)] = true
	}
	keyCache.Store(t, m)
	return m
}

// decodeDelegate decodes a saved delegate config.
func decodeDelegate(b []byte) (Delegate, error) {
	var d Delegate
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("saved delegate config: %w", err)
	}
	if d.Type == "" {
		return d, fmt.Errorf("saved delegate config has no type")
	}
	return d, nil
}
