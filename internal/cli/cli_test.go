package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		err            error
		stdout, stderr string // substrings; "" means empty
	}{
		{nil, nil, "", ""},
		{[]string{"--count", "3"}, nil, "", ""},
		{[]string{"-h"}, ErrHelp, "usage: weft x\n\nFlags:\n  --count n\n    \tstop after n (default 1)\n", ""},
		{[]string{"--help"}, ErrHelp, "usage: weft x", ""},
		{[]string{"--bogus"}, ErrUsage, "", "weft x: flag provided but not defined: --bogus (see 'weft x --help')\n"},
		{[]string{"--count", "many"}, ErrUsage, "", `invalid value "many" for flag --count`},
		{[]string{"stray"}, ErrUsage, "", `weft x: unexpected argument "stray"`},
	} {
		fs := NewFlagSet("weft x", "usage: weft x\n")
		fs.Int("count", 1, "stop after `n`")
		var out, errOut bytes.Buffer
		err := fs.Parse(tc.args, &out, &errOut)
		if !errors.Is(err, tc.err) ||
			(tc.stdout == "") != (out.Len() == 0) || !strings.Contains(out.String(), tc.stdout) ||
			(tc.stderr == "") != (errOut.Len() == 0) || !strings.Contains(errOut.String(), tc.stderr) ||
			strings.Count(errOut.String(), "\n") > 1 {
			t.Errorf("%q: err %v, stdout %q, stderr %q; want %v, %q, %q", tc.args, err, out.String(), errOut.String(), tc.err, tc.stdout, tc.stderr)
		}
		if code, want := ExitCode(err), map[error]int{nil: 0, ErrHelp: 0, ErrUsage: 2}[tc.err]; code != want {
			t.Errorf("%q: exit code %d, want %d", tc.args, code, want)
		}
	}
	if ExitCode(errors.New("failed")) != 1 {
		t.Error("a plain error must exit 1")
	}
}

func TestVerb(t *testing.T) {
	verbs := map[string]string{"list": "", "use": "ID"}
	for _, tc := range []struct {
		args      []string
		verb, arg string
		rest      int
		err       error
		onStdout  bool
	}{
		{[]string{"list"}, "list", "", 0, nil, false},
		{[]string{"use", "3", "--run-dir", "d"}, "use", "3", 2, nil, false},
		{[]string{"use", "--help"}, "use", "", 1, nil, false}, // the verb's FlagSet prints it
		{[]string{"-h"}, "", "", 0, ErrHelp, true},
		{nil, "", "", 0, ErrUsage, false},
		{[]string{"frob"}, "", "", 0, ErrUsage, false},
		{[]string{"use"}, "", "", 0, ErrUsage, false},
		{[]string{"use", "--run-dir"}, "", "", 0, ErrUsage, false},
	} {
		var out, errOut bytes.Buffer
		verb, arg, rest, err := Verb("weft key", tc.args, verbs, "usage: weft key …", &out, &errOut)
		printed := out.Len() > 0 || errOut.Len() > 0
		if verb != tc.verb || arg != tc.arg || len(rest) != tc.rest || !errors.Is(err, tc.err) ||
			printed != (tc.err != nil) || (out.Len() > 0) != tc.onStdout {
			t.Errorf("%q: %q %q %q %v, stdout %q, stderr %q", tc.args, verb, arg, rest, err, out.String(), errOut.String())
		}
	}
}
