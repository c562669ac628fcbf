package cni

import (
	"context"
	"errors"
	"slices"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/subnetenv"
)

// Status says whether ADD can succeed now: the agent has written its subnet
// file and answers on its control socket with the same subnet, and the
// delegate plugins are installed. Delegates that speak STATUS (CNI 1.1.0)
// are asked too. Not ready is code 50.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return err
	}
	sn, err := api.ReadLiveSubnetEnv(context.Background(), conf.SubnetFile, p.cfg.AgentTimeout)
	switch {
	case errors.Is(err, subnetenv.ErrNoAgent):
		return errNotAvailable("the weft agent is not running on this node (%s does not exist)", conf.SubnetFile)
	case errors.Is(err, api.ErrStaleSubnetFile):
		return errNotAvailable("%v", err)
	case err != nil:
		return errNotAvailable("subnetFile: %v", err)
	}

	d, err := conf.buildDelegate(sn)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*p.cfg.DelegateTimeout)
	defer cancel()
	for _, name := range d.plugins() {
		path, err := p.find(name, args.Path)
		if err != nil {
			var e *types.Error
			errors.As(err, &e)
			return errNotAvailable("%s", e.Msg)
		}
		// Forward STATUS to a delegate that speaks it; the bridge forwards
		// to its IPAM plugin itself, so only the first one is asked.
		if name != d.Type || !p.speaks(ctx, path, conf.CNIVersion) {
			continue
		}
		raw, err := d.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := p.run(ctx, name, "STATUS", raw, args); err != nil {
			return errDelegate(name, "STATUS", err)
		}
	}
	return nil
}

// speaks reports whether the plugin at path supports cniVersion v.
func (p *Plugin) speaks(ctx context.Context, path, v string) bool {
	info, err := invoke.GetVersionInfo(ctx, path, p.cfg.Exec)
	return err == nil && slices.Contains(info.SupportedVersions(), v)
}
