package cnitest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The real CNI stack the tests run weft-cni with, as scripts/setup.sh
// installs it: Debian's reference plugins, and the current release of the
// reference plugins and cnitool built from the Go module proxy into
// ToolsDir.
const (
	// DebianPluginDir is where Debian's containernetworking-plugins (1.1.1
	// on bookworm) puts the reference plugins.
	DebianPluginDir = "/usr/lib/cni"
	// UpstreamPluginsVersion is the github.com/containernetworking/plugins
	// release setup.sh builds into ToolsDir()/plugins-<version>.
	UpstreamPluginsVersion = "v1.10.0"
	// ToolsEnv overrides ToolsDir.
	ToolsEnv = "WEFT_CNI_TOOLS"
)

// ToolsDir is where setup.sh builds cnitool (bin/cnitool) and the upstream
// plugins: $WEFT_CNI_TOOLS, default /opt/weft-test/cni.
func ToolsDir() string {
	if d := os.Getenv(ToolsEnv); d != "" {
		return d
	}
	return "/opt/weft-test/cni"
}

// PluginSet is one installation of the reference plugins.
type PluginSet struct {
	Name string // short, for test names: "debian", "v1.10.0"
	Dir  string // holds bridge and host-local
}

// PluginSets are the reference plugin installations weft-cni is tested
// with.
func PluginSets() []PluginSet {
	return []PluginSet{
		{Name: "debian", Dir: DebianPluginDir},
		{Name: UpstreamPluginsVersion, Dir: filepath.Join(ToolsDir(), "plugins-"+UpstreamPluginsVersion)},
	}
}

// Check reports which of the plugins weft-cni delegates to are missing.
func (s PluginSet) Check() error {
	var errs []error
	for _, p := range []string{"bridge", "host-local"} {
		if err := executable(filepath.Join(s.Dir, p)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reference CNI plugins %s: %w (scripts/setup.sh installs them)", s.Name, err)
	}
	return nil
}

// Cnitool returns the path of cnitool, or an error naming what installs it.
func Cnitool() (string, error) {
	p := filepath.Join(ToolsDir(), "bin", "cnitool")
	if err := executable(p); err != nil {
		return "", fmt.Errorf("%w (scripts/setup.sh builds it)", err)
	}
	return p, nil
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: not an executable file", path)
	}
	return nil
}
