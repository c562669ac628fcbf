// Package testenv holds what weft's tests need from the machine (root, the
// TUN clone device, a private network namespace) and the one way they wait
// for a condition (Poll, WaitFor). Under CI=true a missing capability fails
// the test; elsewhere it skips, so a laptop run stays useful.
//
// The package does not import "testing" (TB is its own small interface), so
// the lab harness, which `weft lab` and `weft bench` link, can poll with it
// too.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
)

// TB is the part of testing.TB the helpers use; *testing.T and *testing.B
// satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

const netnsEnv = "WEFT_TEST_IN_NETNS"

// CI reports whether the tests run in CI, where nothing may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Require fails (in CI) or skips (elsewhere) unless the process is root and
// /dev/net/tun exists.
func Require(t TB) {
	t.Helper()
	if msg := missing(); msg != "" {
		Need(t, fmt.Errorf("%s: these tests need root and /dev/net/tun", msg))
	}
}

// Need fails the test under CI=true and skips it elsewhere if err (a missing
// capability or tool) is not nil.
func Need(t TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if CI() {
		t.Fatalf("CI=true, so not skipping: %v", err)
	}
	t.Skipf("skipping: %v", err)
}

func missing() string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return "no /dev/net/tun"
	}
	for _, bin := range []string{"ip", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " not found in PATH"
		}
	}
	return ""
}

// InNetns is for TestMain: it runs the package's tests inside a fresh,
// anonymous network namespace (unshare -n) with loopback up, so tests may
// create TUN devices, addresses and routes without touching the host. The
// namespace dies with the process, so a crashed test leaves nothing behind.
// Without root it just runs the tests, which then skip or fail in Require.
// m is the package's *testing.M.
func InNetns(m interface{ Run() int }) int {
	if os.Getenv(netnsEnv) != "" || missing() != "" {
		return m.Run()
	}
	args := append([]string{"-n", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, os.Args[0]}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "testenv: run tests in a network namespace: %v\n", err)
		return 1
	}
	return 0
}
