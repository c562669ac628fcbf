package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/weftnet/weft/lab"
)

// weftBin is the weft binary TestMain built; empty when the tests cannot run
// here (not root), in which case every test skips or fails in
// testenv.Require before using it.
var weftBin string

// TestMain builds the weft binary once and closes every lab on SIGINT or
// SIGTERM, so an interrupted run leaves no namespaces behind.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var dir string
	if os.Geteuid() == 0 {
		var err error
		if dir, err = os.MkdirTemp("", "weft-e2e-"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "e2e: %v: closing labs\n", sig)
		if err := lab.CloseAll(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		if dir != "" {
			os.RemoveAll(dir)
		}
		os.Exit(1)
	}()

	if dir != "" {
		weftBin = filepath.Join(dir, "weft")
		// go test puts its toolchain's GOROOT/bin first in PATH, so this
		// is the go that runs the tests.
		build := exec.Command("go", "build", "-o", weftBin, "github.com/weftnet/weft/cmd/weft")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build weft: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}
