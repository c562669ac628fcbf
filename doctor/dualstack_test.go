package doctor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/weftnet/weft/api"
)

func TestCheckForwarding6(t *testing.T) {
	dir := t.TempDir()
	for value, w := range map[string]want{
		"1\n": {OK, "IPv6 forwarding is on", "", false},
		"0\n": {Warn, "IPv6 forwarding is off", "net.ipv6.conf.all.forwarding=1", false},
	} {
		path := filepath.Join(dir, "forwarding")
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			t.Fatal(err)
		}
		var f findings
		checkForwarding6(&f, path)
		expect(t, "forwarding "+value, f, w)
	}
	// A single-stack node has nothing to check.
	expect(t, "single-stack", run(checkDualStack, &api.Status{}))
}
