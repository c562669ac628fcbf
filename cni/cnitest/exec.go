// Package cnitest holds a fake of invoke.Exec, the seam package cni runs
// delegate plugins through: plugins are entries in a map, not binaries, and
// every call is recorded.
package cnitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Dir is the directory FindInPath pretends the plugins are in.
const Dir = "/fake/cni/bin"

// Exec is a fake invoke.Exec. Its methods are safe for concurrent use.
type Exec struct {
	version.PluginDecoder

	mu      sync.Mutex // guards the fields below
	plugins map[string]*Plugin
	calls   []Call
}

var _ invoke.Exec = (*Exec)(nil)

// Plugin is one fake plugin.
type Plugin struct {
	// Versions answer VERSION; nil means every version up to 1.1.0.
	Versions []string
	// Handle answers every other command with stdout or an error (a
	// *types.Error, as the real Exec returns for a plugin's error JSON).
	// Nil means Default.
	Handle func(c Call) ([]byte, error)
}

// Call is one run of a fake plugin.
type Call struct {
	Plugin  string
	Command string            // CNI_COMMAND
	Env     map[string]string // the CNI_ variables
	Stdin   []byte
}

// Conf decodes the call's stdin into v, failing loudly on bad JSON.
func (c Call) Conf(v any) error { return json.Unmarshal(c.Stdin, v) }

// NewExec returns an Exec that knows the given plugins.
func NewExec(plugins map[string]*Plugin) *Exec {
	if plugins == nil {
		plugins = map[string]*Plugin{}
	}
	return &Exec{plugins: plugins}
}

// Set adds or replaces a plugin; nil removes it.
func (e *Exec) Set(name string, p *Plugin) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p == nil {
		delete(e.plugins, name)
		return
	}
	e.plugins[name] = p
}

// Calls returns the recorded calls other than VERSION, in order; with
// commands, only those.
func (e *Exec) Calls(commands ...string) []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Call
	for _, c := range e.calls {
		if len(commands) == 0 || slices.Contains(commands, c.Command) {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the recorded calls.
func (e *Exec) Reset() {
	e.mu.Lock()
	e.calls = nil
	e.mu.Unlock()
}

func (e *Exec) FindInPath(plugin string, paths []string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.plugins[plugin]; !ok || len(paths) == 0 {
		return "", fmt.Errorf("failed to find plugin %q in path %v", plugin, paths)
	}
	return path.Join(Dir, plugin), nil
}

func (e *Exec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	c := Call{Plugin: path.Base(pluginPath), Env: map[string]string{}, Stdin: stdin}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "CNI_") {
			c.Env[k] = v
		}
	}
	c.Command = c.Env["CNI_COMMAND"]
	e.mu.Lock()
	p, ok := e.plugins[c.Plugin]
	if ok && c.Command != "VERSION" {
		e.calls = append(e.calls, c)
	}
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("fork/exec %s: no such file or directory", pluginPath)
	}
	if c.Command == "VERSION" {
		vs := p.Versions
		if vs == nil {
			vs = version.All.SupportedVersions()
		}
		return json.Marshal(map[string]any{"cniVersion": version.Current(), "supportedVersions": vs})
	}
	if p.Handle != nil {
		return p.Handle(c)
	}
	return Default(c)
}

// Default answers like a bridge plugin that always works: ADD returns the
// second address of the config's first host-local range on CNI_IFNAME, in
// the config's cniVersion; every other command prints nothing.
func Default(c Call) ([]byte, error) {
	if c.Command != "ADD" {
		return nil, nil
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		IPAM       struct {
			Ranges [][]struct {
				Subnet string `json:"subnet"`
			} `json:"ranges"`
		} `json:"ipam"`
	}
	if err := c.Conf(&conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	if len(conf.IPAM.Ranges) == 0 || len(conf.IPAM.Ranges[0]) == 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "no range", "")
	}
	_, subnet, err := net.ParseCIDR(conf.IPAM.Ranges[0][0].Subnet)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	gw, addr := nth(subnet, 1), nth(subnet, 2)
	idx := 0
	r := &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{{Name: c.Env["CNI_IFNAME"], Sandbox: c.Env["CNI_NETNS"]}},
		IPs:        []*types100.IPConfig{{Interface: &idx, Address: net.IPNet{IP: addr, Mask: subnet.Mask}, Gateway: gw}},
	}
	out, err := r.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return nil, types.NewError(types.ErrIncompatibleCNIVersion, err.Error(), "")
	}
	return json.Marshal(out)
}

// Fail returns a Handle that fails every command in commands with a CNI
// error of code and msg, and answers the rest with Default.
func Fail(code uint, msg string, commands ...string) func(Call) ([]byte, error) {
	return func(c Call) ([]byte, error) {
		if slices.Contains(commands, c.Command) {
			return nil, types.NewError(code, msg, "")
		}
		return Default(c)
	}
}

func nth(n *net.IPNet, i int) net.IP {
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	for j := len(ip) - 1; i > 0 && j >= 0; j-- {
		s := int(ip[j]) + i
		ip[j], i = byte(s), s>>8
	}
	return ip
}
