// Package cni is weft-cni, the CNI plugin that gives pods addresses from the
// node's weft subnet. Like flannel's plugin it is a thin delegating wrapper:
//
//	ADD    read the agent's subnet.env (trusted only while the agent
//	       answers on weft.sock with that subnet), build a config for the
//	       reference bridge plugin (bridge cni0, host-local IPAM over the
//	       node's subnet, a route to the overlay), save it under dataDir,
//	       run it
//	DEL    replay the saved config to the delegate, then drop it; nothing
//	       saved means nothing to do, so DEL works twice, after the agent
//	       restarted and without subnet.env
//	CHECK  replay the saved config with the runtime's prevResult
//	STATUS the agent answers on its control socket, the delegates exist
//	GC     DEL every saved attachment the runtime no longer lists, forward
//	       GC to delegates that speak it, and free host-local reservations
//	       no live attachment holds
//
// Errors are CNI errors (JSON on stdout, codes in errors.go).
package cni

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/subnetenv"
)

// Config configures a Plugin. The zero value of every field means its default.
type Config struct {
	// Exec finds and runs delegate plugins. Default: invoke's, which runs
	// the binaries in CNI_PATH with their stderr going to ours.
	Exec invoke.Exec
	// Stdout receives ADD's result. Default os.Stdout.
	Stdout io.Writer
	// DelegateTimeout bounds each run of a delegate plugin. Default 1 minute.
	DelegateTimeout time.Duration
	// AgentTimeout bounds ADD's and STATUS's question to the agent. Default
	// 2 seconds.
	AgentTimeout time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Exec:            &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}},
		Stdout:          os.Stdout,
		DelegateTimeout: time.Minute,
		AgentTimeout:    2 * time.Second,
	}
}

// Plugin implements the CNI commands. Each method handles one invocation;
// a Plugin holds no state between them (that lives in dataDir).
type Plugin struct {
	cfg Config
}

// New returns a plugin with cfg's zero fields set to their defaults.
func New(cfg Config) *Plugin {
	d := DefaultConfig()
	if cfg.Exec == nil {
		cfg.Exec = d.Exec
	}
	if cfg.Stdout == nil {
		cfg.Stdout = d.Stdout
	}
	if cfg.DelegateTimeout <= 0 {
		cfg.DelegateTimeout = d.DelegateTimeout
	}
	if cfg.AgentTimeout <= 0 {
		cfg.AgentTimeout = d.AgentTimeout
	}
	return &Plugin{cfg: cfg}
}

// Funcs are the plugin's commands for skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// Main runs weft-cni as a CNI plugin: it reads the CNI_ environment and
// stdin, prints the result or a CNI error to stdout and exits.
func Main(about string) {
	skel.PluginMainFuncs(New(Config{}).Funcs(), Versions, about)
}

// Add sets up an attachment through the delegate.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	// A subnet file whose agent does not answer (killed with -9) would give
	// the pod an address nothing routes to. Config errors are permanent, so
	// they are reported first; a dead agent is "try again later".
	sn, err := api.ReadLiveSubnetEnv(context.Background(), conf.SubnetFile, p.cfg.AgentTimeout)
	var stale error
	switch {
	case errors.Is(err, subnetenv.ErrNoAgent):
		return errNoAgent(conf.SubnetFile)
	case errors.Is(err, api.ErrStaleSubnetFile):
		stale = err
	case err != nil:
		return errConfig("subnetFile: %v", err)
	}
	d, err := conf.buildDelegate(sn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*p.cfg.DelegateTimeout)
	defer cancel()
	if d.CNIVersion, err = p.negotiate(ctx, conf.CNIVersion, args.Path, d.plugins()); err != nil {
		return err
	}
	if stale != nil {
		return errAgentDown(stale)
	}
	raw, err := d.MarshalJSON()
	if err != nil {
		return err
	}

	st, unlock, err := openStore(conf.DataDir, false)
	if err != nil {
		return err
	}
	defer unlock()
	// An attachment of this container and interface may exist already (a
	// runtime's retry, or a second ADD by mistake). It is not this call's
	// to undo: the delegate's DEL is keyed by container and interface only,
	// so it would tear down the existing eth0 and free its address.
	_, lerr := st.load(args.ContainerID, args.IfName)
	existed := !errors.Is(lerr, os.ErrNotExist)
	rec := record{ContainerID: args.ContainerID, IfName: args.IfName, Network: conf.Name, Netns: args.Netns, Delegate: raw}
	if !existed {
		// Saved first: whatever happens next, DEL can replay it.
		if err := st.save(rec); err != nil {
			return errIO("dataDir", err)
		}
	}
	res, err := p.run(ctx, d.Type, "ADD", raw, args)
	if err != nil {
		if existed {
			// The existing attachment and its record stay as they were.
			e := errDelegate(d.Type, "ADD", err)
			e.Msg += fmt.Sprintf(" (container %s already has an attachment on %s; weft-cni left it as it was)", args.ContainerID, args.IfName)
			return e
		}
		// Undo: the delegate releases what it got. If that fails too, keep
		// the record for the runtime's DEL to retry.
		if _, derr := p.run(ctx, d.Type, "DEL", raw, args); derr == nil {
			st.remove(args.ContainerID, args.IfName)
		}
		return errDelegate(d.Type, "ADD", err)
	}
	if existed {
		// The delegate set it up again: DEL replays this call's config.
		if err := st.save(rec); err != nil {
			return errIO("dataDir", err)
		}
	}
	out, err := res.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return fmt.Errorf("weft-cni: convert the delegate's %s result to %s: %w", res.Version(), conf.CNIVersion, err)
	}
	return out.PrintTo(p.cfg.Stdout)
}

// Del tears an attachment down with the config ADD saved.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	st, unlock, err := openStore(conf.DataDir, false)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := st.load(args.ContainerID, args.IfName)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never added, or already deleted
	}
	if err != nil {
		return errIO("dataDir", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DelegateTimeout)
	defer cancel()
	if err := p.replayDel(ctx, rec, args.Path, args.Netns, args.Args); err != nil {
		return err
	}
	if err := st.remove(args.ContainerID, args.IfName); err != nil {
		return errIO("dataDir", err)
	}
	return nil
}

// replayDel runs DEL on the delegate of rec.
func (p *Plugin) replayDel(ctx context.Context, rec record, cniPath, netns, cniArgs string) error {
	d, err := decodeDelegate(rec.Delegate)
	if err != nil {
		return errIO("dataDir", err)
	}
	a := &skel.CmdArgs{ContainerID: rec.ContainerID, IfName: rec.IfName, Netns: netns, Path: cniPath, Args: cniArgs}
	if _, err := p.run(ctx, d.Type, "DEL", rec.Delegate, a); err != nil {
		return errDelegate(d.Type, "DEL", err)
	}
	return nil
}

// Check asks the delegate to verify the attachment against prevResult (the
// delegate finds a missing interface, address or route), and checks that
// the pod's addresses still lie in the node's subnet.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.RawPrevResult == nil {
		return errConfig("CHECK needs the ADD result as prevResult")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return errConfig("prevResult: %v", err)
	}
	st, unlock, err := openStore(conf.DataDir, false)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := st.load(args.ContainerID, args.IfName)
	if errors.Is(err, os.ErrNotExist) {
		return types.NewError(types.ErrUnknownContainer,
			fmt.Sprintf("weft-cni: no attachment of container %s interface %s in %s (was it added by weft-cni?)", args.ContainerID, args.IfName, conf.DataDir), "")
	}
	if err != nil {
		return errIO("dataDir", err)
	}
	d, err := decodeDelegate(rec.Delegate)
	if err != nil {
		return errIO("dataDir", err)
	}
	if err := checkSubnet(conf, conf.PrevResult); err != nil {
		return err
	}
	prev, err := conf.PrevResult.GetAsVersion(d.CNIVersion)
	if err != nil {
		return errConfig("prevResult: convert to the delegate's %s: %v", d.CNIVersion, err)
	}
	if d.PrevResult, err = marshalResult(prev); err != nil {
		return err
	}
	raw, err := d.MarshalJSON()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DelegateTimeout)
	defer cancel()
	if _, err := p.run(ctx, d.Type, "CHECK", raw, args); err != nil {
		return errDelegate(d.Type, "CHECK", err)
	}
	return nil
}

// checkSubnet fails if the node has a subnet file and a pod address is not
// in its subnet: the agent came back with another lease, so the overlay no
// longer routes to the pod.
func checkSubnet(conf *NetConf, res types.Result) error {
	sn, err := subnetenv.Read(conf.SubnetFile)
	if err != nil {
		return nil // no agent now: nothing to compare with
	}
	for _, a := range resultAddrs(res) {
		subnet := sn.Subnet
		if a.Addr().Is4() != subnet.Addr().Is4() {
			subnet = sn.Subnet6 // zero on a single-stack node: nothing to compare with
		}
		if subnet.IsValid() && !subnet.Contains(a.Addr()) {
			return types.NewError(types.ErrInvalidNetworkConfig,
				fmt.Sprintf("weft-cni: pod address %s is outside this node's subnet %s (from %s): the agent's lease changed; recreate the pod", a, subnet, conf.SubnetFile), "")
		}
	}
	return nil
}

// negotiate picks the cniVersion to speak with the delegates: want if every
// one supports it, else the newest lower version they all support (Debian's
// plugins 1.1.1 stop at 1.0.0). It also finds each binary: a missing one is
// a config error.
func (p *Plugin) negotiate(ctx context.Context, want, cniPath string, plugins []string) (string, error) {
	var common []string
	for i, name := range plugins {
		path, err := p.find(name, cniPath)
		if err != nil {
			return "", err
		}
		info, err := invoke.GetVersionInfo(ctx, path, p.cfg.Exec)
		if err != nil {
			return "", errDelegate(name, "VERSION", err)
		}
		if i == 0 {
			common = info.SupportedVersions()
		} else {
			common = slices.DeleteFunc(common, func(v string) bool { return !slices.Contains(info.SupportedVersions(), v) })
		}
	}
	if slices.Contains(common, want) {
		return want, nil
	}
	best := ""
	for _, v := range common {
		le, err := version.GreaterThanOrEqualTo(want, v)
		if err != nil || !le {
			continue
		}
		// 0.3.0 and older results do not convert to 1.x results well.
		if ok, _ := version.GreaterThanOrEqualTo(v, "0.3.1"); !ok {
			continue
		}
		if best == "" {
			best = v
		} else if gt, _ := version.GreaterThan(v, best); gt {
			best = v
		}
	}
	if best == "" {
		return "", types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("weft-cni: delegate plugins %v support CNI versions %v, none usable for cniVersion %s", plugins, common, want), "")
	}
	return best, nil
}

// find looks a delegate up in CNI_PATH.
func (p *Plugin) find(name, cniPath string) (string, error) {
	paths := filepath.SplitList(cniPath)
	path, err := p.cfg.Exec.FindInPath(name, paths)
	if err != nil {
		return "", errConfig("delegate plugin %q not found in CNI_PATH %q: install the reference CNI plugins (github.com/containernetworking/plugins; Debian: containernetworking-plugins) there, or change delegate.type", name, cniPath)
	}
	return path, nil
}

// run runs one command of a delegate with args' CNI_ variables (and the
// rest of our environment). ADD returns the result; others return nil.
func (p *Plugin) run(ctx context.Context, name, cmd string, conf []byte, args *skel.CmdArgs) (types.Result, error) {
	path, err := p.find(name, args.Path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DelegateTimeout)
	defer cancel()
	env := &invoke.Args{Command: cmd, ContainerID: args.ContainerID, NetNS: args.Netns,
		PluginArgsStr: args.Args, IfName: args.IfName, Path: args.Path}
	if cmd == "ADD" {
		return invoke.ExecPluginWithResult(ctx, path, conf, env, p.cfg.Exec)
	}
	return nil, invoke.ExecPluginWithoutResult(ctx, path, conf, env, p.cfg.Exec)
}
