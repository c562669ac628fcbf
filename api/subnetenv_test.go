package api

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/subnetenv"
)

// A subnet.env left by an agent killed with -9 is not trusted: nothing
// answers beside it. One whose agent holds another subnet is not either.
func TestReadLiveSubnetEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, subnetenv.File)
	read := func() (subnetenv.Env, error) {
		return ReadLiveSubnetEnv(context.Background(), path, time.Second)
	}
	if _, err := read(); !errors.Is(err, subnetenv.ErrNoAgent) {
		t.Fatalf("no file: %v", err)
	}
	write := func(subnet string) {
		body := "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=" + subnet + "\nWEFT_MTU=1424\nWEFT_IPMASQ=false\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10.244.1.0/24")
	_, err := read()
	if !errors.Is(err, ErrStaleSubnetFile) || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("stale file, no agent: %v", err)
	}

	stop := newTestServer().serve(t, dir) // holds 10.244.1.0/24
	defer stop()
	env, err := read()
	if err != nil || env.Subnet.String() != "10.244.1.0/24" {
		t.Fatalf("live agent: %v, %v", env, err)
	}
	write("10.244.7.0/24")
	if _, err := read(); !errors.Is(err, ErrStaleSubnetFile) || !strings.Contains(err.Error(), "holds subnet 10.244.1.0/24") {
		t.Fatalf("agent with another subnet: %v", err)
	}
}
