package e2e

// The registry-free image (issue 17 item 11): scripts/image.sh builds static
// binaries here and lays them FROM scratch with Podman, pulling nothing; the
// image runs `weft version` with no network, and holds what the DaemonSet's
// install step needs (sh, cp, mv, basename and the CNI plugins).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cni/cnitest"
	"github.com/weftnet/weft/internal/testenv"
)

// imageTimeout bounds the build: static builds of weft and weft-cni (the
// first one on a machine compiles everything again, CGO off) and the image.
const imageTimeout = 8 * time.Minute

func TestScratchImage(t *testing.T) {
	testenv.Require(t)
	podman, err := exec.LookPath("podman")
	testenv.Need(t, errors.Join(err, cnitest.PluginSets()[0].Check()))
	tag := fmt.Sprintf("localhost/weft-e2e:%d", os.Getpid())
	ctx, cancel := context.WithTimeout(t.Context(), imageTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "../scripts/image.sh", tag)
	// Debian's plugins: no download, and the set the docs name for offline builds.
	build.Env = append(os.Environ(), "WEFT_CNI_PLUGINS_DIR="+cnitest.DebianPluginDir)
	build.WaitDelay = waitDelay
	out, err := build.CombinedOutput()
	t.Cleanup(func() { exec.Command(podman, "rmi", "--force", tag).Run() })
	if err != nil {
		t.Fatalf("scripts/image.sh: %v (%v)\n%s", err, ctx.Err(), out)
	}

	got := podmanRun(t, podman, tag, "version")
	if !strings.HasPrefix(got, "weft ") || strings.Count(got, "\n") != 1 {
		t.Fatalf("weft version in the image: %q", got)
	}
	// The DaemonSet's install step runs sh with cp, mv and basename over
	// /opt/weft/cni-plugins.
	got = podmanRun(t, podman, "--entrypoint", "sh", tag, "-ec",
		`for p in /opt/weft/cni-plugins/*; do basename "$p"; done; cp /usr/bin/weft-cni /usr/bin/.new; mv /usr/bin/.new /usr/bin/.done`)
	if plugins := strings.Fields(got); !slices.Equal(plugins, []string{"bridge", "host-local", "loopback", "portmap"}) {
		t.Fatalf("plugins in the image: %q", got)
	}
}

// waitDelay bounds Wait after a killed build whose children hold its output.
const waitDelay = 5 * time.Second

// podmanRun runs `podman run --network none args...` (options, the image,
// the command's arguments) and returns its stdout.
func podmanRun(t *testing.T, podman string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	run := []string{"run", "--rm", "--network", "none",
		// Lower limits than the host's: raising them needs CAP_SYS_RESOURCE,
		// which a test machine inside a container may lack.
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	if rt, err := exec.LookPath("runc"); err == nil {
		run = append(run, "--runtime", rt) // crun refuses hybrid cgroup hierarchies
	}
	cmd := exec.CommandContext(ctx, podman, append(run, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s%s", strings.Join(append(run, args...), " "), err, out, stderr.String())
	}
	return string(out)
}

// deploy/Dockerfile names its base images fully: Podman resolves no short
// names ("golang:1.26" fails there).
func TestDockerfileNames(t *testing.T) {
	for _, f := range []string{"../deploy/Dockerfile", "../deploy/Dockerfile.scratch"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			fields := strings.Fields(line)
			if len(fields) < 2 || !strings.EqualFold(fields[0], "FROM") || fields[1] == "scratch" {
				continue
			}
			if host, _, ok := strings.Cut(fields[1], "/"); !ok || !strings.Contains(host, ".") {
				t.Errorf("%s: %q is not a fully qualified image name (want e.g. docker.io/library/golang:1.26)", f, strings.TrimSpace(line))
			}
		}
	}
}
