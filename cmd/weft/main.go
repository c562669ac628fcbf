// Command weft is the weft overlay agent and its CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/internal/cli"
)

const usage = `weft: a userspace overlay network you can read, run anywhere and debug with tcpdump.

Usage:
  weft up [flags]        run this node in the foreground
  weft status [--json]   show the running node's state, peers and drop counters
  weft doctor            check the running node and every peer's path; say what is wrong and how to fix it
  weft trace [flags]     follow packets through the running node: one line each, with its fate (--pcap FILE)
  weft env [--format F]  print the node's subnet for Docker (--format docker), Podman (podman) or shells (env)
  weft keygen [--out F]  make a new cluster key
  weft key list|add|use|remove   rotate the running node's cluster keys
  weft lease list        show the cluster's subnet leases
  weft lease release N   free the lease of node N, which is gone
  weft lab [flags]       build a lab of hosts in network namespaces and run weft between them
  weft bench [flags]     compare weft's data paths with plain veth and kernel VXLAN in a namespace lab
  weft version           print the version

Run 'weft help COMMAND' (or 'weft COMMAND --help') for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are the subcommands, each given its arguments after the name.
// Each parses them with package cli: help on stdout, usage errors exit 2.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"up": cmdUp, "status": cmdStatus, "doctor": cmdDoctor, "trace": cmdTrace, "env": cmdEnv,
	"keygen": cmdKeygen, "key": cmdKey, "lease": cmdLease, "lab": cmdLab, "bench": cmdBench,
	"version": cmdVersion,
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	switch {
	case cmd == "--version":
		cmd, rest = "version", nil
	case cmd == "help" && len(rest) > 0: // weft help CMD is CMD --help
		cmd, rest = rest[0], []string{"--help"}
	case cmd == "help", cli.IsHelp(cmd):
		fmt.Fprint(stdout, usage)
		return 0
	}
	if commands[cmd] == nil {
		fmt.Fprintf(stderr, "weft: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	err := commands[cmd](ctx, rest, stdout, stderr)
	switch {
	case errors.Is(err, errDoctor):
		return 1 // doctor printed its findings
	case err != nil && cli.ExitCode(err) == 1:
		fmt.Fprintf(stderr, "weft %s: %v\n", cmd, err)
	}
	return cli.ExitCode(err)
}

// cmdVersion prints the version.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("weft version", "usage: weft version\n\nPrints the version of this weft binary.")
	if err := fs.Parse(args, stdout, stderr); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, "weft", version)
	return err
}

// runDirFlag adds --run-dir, naming the node a command talks to.
func runDirFlag(fs *cli.FlagSet) *string {
	return fs.String("run-dir", agent.DefaultConfig().RunDir, "run `directory` of the node")
}

// parseVerb parses `weft CMD VERB [ARG] [--run-dir DIR]` (cli.Verb) and
// returns the client of the node --run-dir names.
func parseVerb(cmd string, args []string, verbs map[string]string, usage string, stdout, stderr io.Writer) (verb, arg string, c *api.Client, err error) {
	verb, arg, rest, err := cli.Verb("weft "+cmd, args, verbs, usage, stdout, stderr)
	if err != nil {
		return "", "", nil, err
	}
	fs := cli.NewFlagSet("weft "+cmd+" "+verb, usage)
	runDir := runDirFlag(fs)
	if err := fs.Parse(rest, stdout, stderr); err != nil {
		return "", "", nil, err
	}
	return verb, arg, api.NewClient(*runDir), nil
}

// orSelf sets *bin to this program's executable if it is empty.
func orSelf(bin *string) (err error) {
	if *bin == "" {
		if *bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find the weft binary: %w", err)
		}
	}
	return nil
}
