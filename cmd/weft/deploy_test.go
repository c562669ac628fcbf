package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The systemd unit passes systemd-analyze verify without a complaint, and
// the example flags in weft.env are flags weft up takes.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/systemd/weft.service")
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile("../../deploy/systemd/weft.env")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^WEFT_OPTS="([^"]*)"$`).FindSubmatch(env)
	if m == nil {
		t.Fatal("weft.env sets no WEFT_OPTS")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "cluster.key")
	var out strings.Builder
	if code := run([]string{"keygen", "--out", key}, &out, io.Discard); code != 0 {
		t.Fatal("keygen failed")
	}
	args := strings.Fields(strings.ReplaceAll(string(m[1]), "/etc/weft/cluster.key", key))
	if _, err := parseUp(args, io.Discard, io.Discard); err != nil {
		t.Fatalf("weft.env's WEFT_OPTS: %v", err)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit file is not verified")
	}
	bin, err := os.Executable() // any executable will do for ExecStart
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "weft.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/weft", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(o), path) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, o)
	}
}
