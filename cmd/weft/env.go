package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/subnetenv"
)

// cmdEnv prints the node's subnet.env in the forms container runtimes on a
// plain host need: shell variables, Docker's daemon settings, a Podman
// network.
func cmdEnv(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("env", stderr)
	runDir := fs.String("run-dir", agent.DefaultConfig().RunDir, "run `directory` of the node")
	format := fs.String("format", "env", "output `format`: env (shell variables), docker (daemon.json and dockerd flags), podman (a network create command) or json")
	name := fs.String("network-name", "weft", "Podman network `name`")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	s, err := subnetenv.Read(filepath.Join(*runDir, subnetenv.File))
	if err != nil {
		return fmt.Errorf("%w (is weft up running with --run-dir %s?)", err, *runDir)
	}
	gw := s.Gateway()
	bip := fmt.Sprintf("%s/%d", gw, s.Subnet.Bits())
	switch *format {
	case "env":
		fmt.Fprintf(stdout, "WEFT_NETWORK=%s\nWEFT_SUBNET=%s\nWEFT_GATEWAY=%s\nWEFT_MTU=%d\nWEFT_IPMASQ=%t\n",
			s.Network, s.Subnet, gw, s.MTU, s.IPMasq)
	case "docker":
		b, _ := json.MarshalIndent(map[string]any{"bip": bip, "mtu": s.MTU}, "", "  ")
		fmt.Fprintf(stdout, "# /etc/docker/daemon.json (merge into an existing file), then: systemctl restart docker\n%s\n", b)
		fmt.Fprintf(stdout, "# or as dockerd flags:\n# --bip=%s --mtu=%d\n", bip, s.MTU)
	case "podman":
		fmt.Fprintf(stdout, "podman network create --subnet %s --gateway %s --opt mtu=%d %s\n", s.Subnet, gw, s.MTU, *name)
		fmt.Fprintf(stdout, "# then: podman run --network %s ...\n", *name)
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"network": s.Network, "subnet": s.Subnet, "gateway": gw, "mtu": s.MTU, "ipmasq": s.IPMasq})
	default:
		return fmt.Errorf("--format %q: want env, docker, podman or json", *format)
	}
	return nil
}
