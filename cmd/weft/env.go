package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/cli"
	"github.com/weftnet/weft/subnetenv"
)

// cmdEnv prints the node's subnet.env in the forms container runtimes on a
// plain host need: shell variables, Docker's daemon settings, a Podman
// network. A file whose agent does not answer (killed with -9) is refused.
func cmdEnv(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("weft env", "usage: weft env [--format env|docker|podman|json] [--run-dir DIR]\n\nPrints the running node's subnet.env for container runtimes: shell variables, Docker's daemon settings or a\nPodman network. Refuses a subnet.env whose agent does not answer.")
	runDir := runDirFlag(fs)
	format := fs.String("format", "env", "output `format`: env (shell variables), docker (daemon.json and dockerd flags), podman (a network create command) or json")
	name := fs.String("network-name", "weft", "Podman network `name`")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	s, err := api.ReadLiveSubnetEnv(ctx, filepath.Join(*runDir, subnetenv.File), api.AgentTimeout)
	if err != nil {
		return fmt.Errorf("%w (is weft up running with --run-dir %s?)", err, *runDir)
	}
	if err := s.WriteAs(stdout, *format, *name); err != nil {
		return fmt.Errorf("--format %q: %w", *format, err)
	}
	return nil
}
