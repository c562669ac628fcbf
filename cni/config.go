package cni

import (
	"bytes"
	"encoding/json"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftnet/weft/api"
)

// Defaults of the network config keys.
const (
	DefaultSubnetFile = "/run/weft/subnet.env"
	DefaultDataDir    = "/var/lib/cni/weft"
)

// Versions are the CNI spec versions weft-cni speaks: 1.0.0 and 1.1.0
// (STATUS, GC), and configs written for 0.3.1 and 0.4.0 (CHECK from 0.4.0).
var Versions = version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0")

// NetConf is weft-cni's network config: the standard keys plus
//
//	subnetFile  the agent's subnet.env (default /run/weft/subnet.env); the
//	            agent's control socket weft.sock is expected beside it
//	dataDir     where the delegate config of each attachment is saved
//	            (default /var/lib/cni/weft)
//	delegate    keys that override the generated delegate config (Delegate)
type NetConf struct {
	types.PluginConf
	SubnetFile string          `json:"subnetFile,omitempty"`
	DataDir    string          `json:"dataDir,omitempty"`
	Delegate   json.RawMessage `json:"delegate,omitempty"`

	// Passed through to the delegate unchanged.
	RuntimeConfig json.RawMessage `json:"runtimeConfig,omitempty"`
	Args          json.RawMessage `json:"args,omitempty"`
}

// ParseNetConf decodes and checks a network config from stdin and fills in
// defaults. Errors are CNI errors with code 7.
func ParseNetConf(b []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, errConfig("%v", err)
	}
	if c.SubnetFile == "" {
		c.SubnetFile = DefaultSubnetFile
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	switch {
	case c.Name == "":
		return nil, errConfig("no \"name\"")
	case !filepath.IsAbs(c.SubnetFile):
		return nil, errConfig("subnetFile %q: want an absolute path", c.SubnetFile)
	case !filepath.IsAbs(c.DataDir):
		return nil, errConfig("dataDir %q: want an absolute path", c.DataDir)
	}
	c.SubnetFile, c.DataDir = filepath.Clean(c.SubnetFile), filepath.Clean(c.DataDir)
	if d := bytes.TrimSpace(c.Delegate); len(d) > 0 && !bytes.Equal(d, []byte("null")) && d[0] != '{' {
		return nil, errConfig("delegate: want an object of delegate plugin keys, have %s", d)
	}
	return c, nil
}

// SocketPath is the agent's control socket: weft.sock beside the subnet file.
func (c *NetConf) SocketPath() string { return filepath.Join(dirOf(c.SubnetFile), api.SocketFile) }

func dirOf(path string) string { return filepath.Dir(path) }
