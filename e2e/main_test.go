package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/weftnet/weft/lab"
)

// weftBin and weftCNIBin are the weft and weft-cni binaries TestMain built;
// empty when the tests cannot run here (not root), in which case every test
// skips or fails in testenv.Require before using them.
var weftBin, weftCNIBin string

// TestMain builds the binaries once and closes every lab on SIGINT or
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
		weftBin, weftCNIBin = filepath.Join(dir, "weft"), filepath.Join(dir, "weft-cni")
		// go test puts its toolchain's GOROOT/bin first in PATH, so this
		// is the go that runs the tests.
		for bin, pkg := range map[string]string{weftBin: "cmd/weft", weftCNIBin: "cmd/weft-cni"} {
			build := exec.Command("go", "build", "-o", bin, "github.com/weftnet/weft/"+pkg)
			if out, err := build.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: build %s: %v\n%s", filepath.Base(bin), err, out)
				return 1
			}
		}
	}
	return m.Run()
}
