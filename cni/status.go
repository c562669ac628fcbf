package cni

import (
	"context"
	"errors"
	"net/netip"
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
	sn, err := subnetenv.Read(conf.SubnetFile)
	switch {
	case errors.Is(err, subnetenv.ErrNoAgent):
		return errNotAvailable("the weft agent is not running on this node (%s does not exist)", conf.SubnetFile)
	case err != nil:
		return errNotAvailable("subnetFile: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.AgentTimeout)
	subnet, err := agentSubnet(ctx, conf.SocketPath())
	cancel()
	if err != nil {
		return errNotAvailable("the weft agent does not answer on %s (%v); %s may be left over from an agent that crashed", conf.SocketPath(), err, conf.SubnetFile)
	}
	if subnet != sn.Subnet {
		return errNotAvailable("the weft agent holds subnet %s but %s says %s", subnet, conf.SubnetFile, sn.Subnet)
	}

	d, err := conf.buildDelegate(sn)
	if err != nil {
		return err
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*p.cfg.DelegateTimeout)
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

// agentSubnet asks the agent on its control socket (GET /v1/status, the
// contract of `weft status --json`) which subnet it holds.
func agentSubnet(ctx context.Context, socket string) (netip.Prefix, error) {
	s, err := api.NewSocketClient(socket).Status(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	return s.Subnet, nil
}
