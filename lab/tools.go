package lab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

// ErrMissingTool is returned (wrapped) by Require and New when a program
// the lab needs is not installed. The package never installs anything.
var ErrMissingTool = errors.New("missing tool")

// debianPackage names the Debian package that ships each tool.
var debianPackage = map[string]string{
	"ip":      "iproute2",
	"bridge":  "iproute2",
	"tc":      "iproute2",
	"ss":      "iproute2",
	"ethtool": "ethtool",
	"iperf3":  "iperf3",
	"ping":    "iputils-ping",
	"nft":     "nftables",
	"tcpdump": "tcpdump",
	"sysctl":  "procps",
	"tee":     "coreutils",
	"unshare": "util-linux",
}

// Require checks that every tool is in PATH. The error wraps
// ErrMissingTool and names each missing tool with its Debian package and the
// apt-get command that installs them.
func Require(tools ...string) error {
	var missing, pkgs []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err == nil {
			continue
		}
		pkg := debianPackage[t]
		if pkg == "" {
			missing = append(missing, t)
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (Debian package %s)", t, pkg))
		if !slices.Contains(pkgs, pkg) {
			pkgs = append(pkgs, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	err := fmt.Errorf("%w: %s", ErrMissingTool, strings.Join(missing, ", "))
	if len(pkgs) > 0 {
		err = fmt.Errorf("%w; install with: apt-get install %s", err, strings.Join(pkgs, " "))
	}
	return err
}

// ErrTimeout is wrapped by WaitFor's error when the timeout expired; it is
// testenv.ErrTimeout.
var ErrTimeout = testenv.ErrTimeout

// WaitFor is testenv.Poll, the one polling loop of weft's tests and
// harness: it calls cond until it returns nil, for at most timeout (cond
// runs at least once, so timeout <= 0 means "check once"), retrying at
// intervals growing from 1 ms to 50 ms. On failure the error names what was
// awaited and wraps both ErrTimeout (or ctx's error) and cond's last error.
// cond should itself be bounded in time.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	return testenv.Poll(ctx, timeout, what, cond)
}

// run runs a command in the current (root) namespace, bounded by
// cmdTimeout, and returns its combined output; the error includes it.
// The lab only runs ip with -n/netns exec this way, never touching the
// root namespace's own configuration.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// runAll runs each argv in order and stops at the first error.
func runAll(ctx context.Context, argvs [][]string) error {
	for _, argv := range argvs {
		if _, err := run(ctx, argv[0], argv[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// sysctl writes value to /proc/sys/<key> inside netns. /proc/sys/net shows
// the namespace of the process that opens it, so tee run through `ip netns
// exec` writes the namespace's setting (and needs no procps).
func sysctl(ctx context.Context, netns, key, value string) error {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", netns, "tee", "/proc/sys/"+key)
	cmd.Stdin = strings.NewReader(value + "\n")
	cmd.WaitDelay = waitDelay
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sysctl %s=%s in %s: %w: %s", key, value, netns, err, strings.TrimSpace(string(out)))
	}
	return nil
}
