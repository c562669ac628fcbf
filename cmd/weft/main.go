// Command weft is the weft overlay agent and its CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/weftnet/weft/agent"
	"github.com/weftnet/weft/api"
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

Run 'weft COMMAND -h' for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are the subcommands, each given its arguments after the name.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"up": cmdUp, "status": cmdStatus, "doctor": cmdDoctor, "trace": cmdTrace, "env": cmdEnv,
	"keygen": cmdKeygen, "key": cmdKey, "lease": cmdLease, "lab": cmdLab, "bench": cmdBench,
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, rest := args[0], args[1:]; {
	case commands[cmd] != nil:
		err = commands[cmd](ctx, rest, stdout, stderr)
	case cmd == "version", cmd == "--version":
		fmt.Fprintln(stdout, "weft", version)
	case cmd == "help", cmd == "-h", cmd == "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "weft: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2 // the flag package already said what is wrong
	case errors.Is(err, errDoctor):
		return 1 // doctor printed its findings
	default:
		fmt.Fprintf(stderr, "weft %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks a flag error the flag package has already printed.
var errUsage = errors.New("usage")

// newFlagSet returns a flag set that reports errors in one line plus a hint,
// not the whole usage text, so the line naming the bad flag stays visible.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("weft "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package would print it on every error
	return fs
}

// parseFlags parses args; errors print one line naming the flag.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "Usage of %s:\n", fs.Name())
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return err
		}
		// The flag package spells flags with one dash; weft's docs use two.
		msg := strings.Replace(err.Error(), "flag -", "flag --", 1)
		fmt.Fprintf(stderr, "%s: %s (see '%s -h')\n", fs.Name(), msg, fs.Name())
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see '%s -h')\n", fs.Name(), fs.Arg(0), fs.Name())
		return errUsage
	}
	return nil
}

// runDirFlag adds --run-dir, naming the node a command talks to.
func runDirFlag(fs *flag.FlagSet) *string {
	return fs.String("run-dir", agent.DefaultConfig().RunDir, "run `directory` of the node")
}

// parseVerb parses `weft CMD VERB [ARG] [--run-dir DIR]`: verbs maps each
// verb to the name of its one argument, "" for none. It returns the client
// of the node --run-dir names.
func parseVerb(cmd string, args []string, verbs map[string]string, usage string, stderr io.Writer) (verb, arg string, c *api.Client, err error) {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return "", "", nil, errUsage
	}
	verb, rest := args[0], args[1:]
	argName, ok := verbs[verb]
	if !ok {
		fmt.Fprintln(stderr, usage)
		return "", "", nil, errUsage
	}
	if argName != "" {
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			fmt.Fprintf(stderr, "weft %s %s: missing %s\n%s\n", cmd, verb, argName, usage)
			return "", "", nil, errUsage
		}
		arg, rest = rest[0], rest[1:]
	}
	fs := newFlagSet(cmd+" "+verb, stderr)
	runDir := runDirFlag(fs)
	if err := parseFlags(fs, rest, stderr); err != nil {
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
