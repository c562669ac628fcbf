package tunnel

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testenv"
)

// As root CheckAccess passes; a process without CAP_NET_ADMIN (this test
// binary again, under setpriv with every capability dropped) gets the one
// line that names what is missing.
func TestCheckAccess(t *testing.T) {
	if os.Getenv("WEFT_TEST_CHECK_ACCESS") != "" {
		if err := CheckAccess(); err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(0)
	}
	testenv.Require(t)
	if err := CheckAccess(); err != nil {
		t.Fatalf("as root: %v", err)
	}
	setpriv, err := exec.LookPath("setpriv")
	testenv.Need(t, err)
	cmd := exec.Command(setpriv, "--inh-caps=-all", "--bounding-set=-all", os.Args[0], "-test.run=^TestCheckAccess$")
	cmd.Env = append(os.Environ(), "WEFT_TEST_CHECK_ACCESS=1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.HasPrefix(string(out), "needs root or CAP_NET_ADMIN") {
		t.Fatalf("without capabilities: %v, %q; want exit 3 and \"needs root or CAP_NET_ADMIN …\"", err, out)
	}
}
