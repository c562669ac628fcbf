package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/weftnet/weft/subnetenv"
)

// cmdEnv prints the node's subnet.env in the forms container runtimes on a
// plain host need: shell variables, Docker's daemon settings, a Podman
// network.
func cmdEnv(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("env", stderr)
	runDir := runDirFlag(fs)
	format := fs.String("format", "env", "output `format`: env (shell variables), docker (daemon.json and dockerd flags), podman (a network create command) or json")
	name := fs.String("network-name", "weft", "Podman network `name`")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	s, err := subnetenv.Read(filepath.Join(*runDir, subnetenv.File))
	if err != nil {
		return fmt.Errorf("%w (is weft up running with --run-dir %s?)", err, *runDir)
	}
	if err := s.WriteAs(stdout, *format, *name); err != nil {
		return fmt.Errorf("--format %q: %w", *format, err)
	}
	return nil
}
