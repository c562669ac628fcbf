package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

	lab.CloseOnSignal("e2e", func() {
		if dir != "" {
			os.RemoveAll(dir)
		}
	})

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
