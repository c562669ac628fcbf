// Package cli is how weft's commands read their command lines, so every
// command behaves alike: help that was asked for (-h, --help, `weft help
// CMD`) goes to stdout and exits 0; a usage error is one line on stderr
// naming the flag, and exits 2.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrHelp is returned after help was asked for and printed on stdout: the
// command did nothing else and exits 0.
var ErrHelp = flag.ErrHelp

// ErrUsage is returned after a usage error was printed on stderr: the
// command exits 2.
var ErrUsage = errors.New("usage error")

// ExitCode is the exit status for err as a command returned it: 0 for
// none or help, 2 for a usage error, 1 otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		return 1
	}
}

// IsHelp reports whether arg asks for help.
func IsHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// FlagSet is a command's flags and its help text.
type FlagSet struct {
	*flag.FlagSet
	usage string
}

// NewFlagSet returns the flags of the command name ("weft up"); usage is
// its help text, the usage line(s) first, printed above the flags. Parse
// errors are reported in one line plus a hint, never the whole help text,
// so the line naming the bad flag stays visible.
func NewFlagSet(name, usage string) *FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // the flag package would print it on every error
	return &FlagSet{FlagSet: fs, usage: usage}
}

// Parse parses args, which must hold flags only. Help goes to stdout
// (ErrHelp); an error is one line on stderr (ErrUsage).
func (fs *FlagSet) Parse(args []string, stdout, stderr io.Writer) error {
	if err := fs.FlagSet.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.WriteHelp(stdout)
			return ErrHelp
		}
		// The flag package spells flags with one dash; weft's docs use two.
		msg := strings.Replace(err.Error(), "flag -", "flag --", 1)
		msg = strings.Replace(msg, "not defined: -", "not defined: --", 1)
		fmt.Fprintf(stderr, "%s: %s (see '%s --help')\n", fs.Name(), msg, fs.Name())
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see '%s --help')\n", fs.Name(), fs.Arg(0), fs.Name())
		return ErrUsage
	}
	return nil
}

// WriteHelp writes the help text and the flags with their defaults to w,
// each flag spelled with two dashes as weft's docs spell them.
func (fs *FlagSet) WriteHelp(w io.Writer) {
	fmt.Fprintln(w, strings.TrimRight(fs.usage, "\n"))
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		arg, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(w, " %s", arg)
		}
		fmt.Fprintf(w, "\n    \t%s", usage)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// Verb reads `CMD VERB [ARG] [flags]` (as `weft key use 2 --run-dir D`):
// verbs maps each verb to the name of its one argument, "" for none; usage
// is CMD's help text. It returns the verb, its argument and the rest of
// args for the verb's FlagSet, which takes usage as its help too. CMD
// alone with -h or --help prints usage on stdout (ErrHelp); no verb, an
// unknown one or a missing argument prints it on stderr (ErrUsage).
func Verb(cmd string, args []string, verbs map[string]string, usage string, stdout, stderr io.Writer) (verb, arg string, rest []string, err error) {
	if len(args) > 0 && IsHelp(args[0]) {
		fmt.Fprintln(stdout, strings.TrimRight(usage, "\n"))
		return "", "", nil, ErrHelp
	}
	if len(args) == 0 {
		fmt.Fprintf(stderr, "%s: missing command\n%s\n", cmd, strings.TrimRight(usage, "\n"))
		return "", "", nil, ErrUsage
	}
	verb, rest = args[0], args[1:]
	argName, ok := verbs[verb]
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n%s\n", cmd, verb, strings.TrimRight(usage, "\n"))
		return "", "", nil, ErrUsage
	}
	if argName != "" {
		if len(rest) > 0 && IsHelp(rest[0]) {
			return verb, "", rest, nil // the verb's FlagSet prints the help
		}
		if len(rest) == 0 || rest[0] == "" || rest[0][0] == '-' {
			fmt.Fprintf(stderr, "%s %s: missing %s\n%s\n", cmd, verb, argName, strings.TrimRight(usage, "\n"))
			return "", "", nil, ErrUsage
		}
		arg, rest = rest[0], rest[1:]
	}
	return verb, arg, rest, nil
}
