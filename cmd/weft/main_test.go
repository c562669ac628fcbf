package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/apitest"
	"github.com/weftnet/weft/encap"
)

// Bad flags fail before anything is touched, with one line naming the flag.
func TestUpBadFlags(t *testing.T) {
	base := []string{"up", "--insecure", "--run-dir", t.TempDir(), "--state-dir", t.TempDir()}
	cases := []struct {
		args []string
		flag string
	}{
		{[]string{"--subnet", "10.244.1.0/33"}, "--subnet"},
		{[]string{"--subnet", "10.9.1.0/24"}, "--subnet"},
		{[]string{"--subnet", "10.244.1.5/24"}, "--subnet"},
		{[]string{"--network", "10.244.0.1/16", "--subnet", "10.244.1.0/24"}, "--network"},
		{[]string{"--subnet", "10.244.1.0/24", "--tun-driver", "tap"}, "--tun-driver"},
		{[]string{"--subnet", "10.244.1.0/24", "--queues", "65"}, "--queues 65: want 1 to 64"},
		{[]string{"--subnet", "10.244.1.0/24", "--queues", "2", "--tun-driver", "water"}, "--queues 2: the water TUN driver has one queue"},
		{[]string{"--subnet", "10.244.1.0/24", "--tun", "a-very-long-tun-name"}, "--tun"},
		{[]string{"--subnet", "10.244.1.0/24", "--peer", "b=10.244.2.0/24@192.0.2.2", "--peer", "c=10.244.2.128/25@192.0.2.3"}, "--peer"},
		{[]string{"--subnet", "10.244.1.0/24", "--peer", "b=10.244.1.0/25@192.0.2.2"}, "--peer"},
		{[]string{"--subnet", "10.244.1.0/24", "--peer", "nonsense"}, "--peer"},
		{[]string{"--subnet", "10.244.1.0/24", "--listen", "0.0.0.0"}, "--listen"},
		{[]string{"--subnet", "10.244.1.0/24", "--subnet-len", "8"}, "--subnet-len"},
		{[]string{"--subnet", "10.244.1.0/24", "--log-level", "loud"}, "--log-level \"loud\": want debug, info, warn or error"},
		{[]string{"--subnet", "10.244.1.0/24", "stray"}, "unexpected argument"},
		{[]string{"--subnet", "10.244.1.0/24", "--kube"}, "--subnet and --kube"},
	}
	for _, tc := range cases {
		var out, errOut bytes.Buffer
		code := run(append(base, tc.args...), &out, &errOut)
		msg := strings.TrimSpace(errOut.String())
		if code == 0 || !strings.Contains(msg, tc.flag) || strings.Count(msg, "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q: want a non-zero exit and one line naming %s", tc.args, code, msg, tc.flag)
		}
	}
}

func TestUpRefusesWithoutInsecure(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"up", "--subnet", "10.244.1.0/24", "--run-dir", t.TempDir()}, &out, &errOut)
	msg := strings.TrimSpace(errOut.String())
	if code != 1 || !strings.Contains(msg, "--key-file") || !strings.Contains(msg, "--insecure") || strings.Contains(msg, "\n") {
		t.Fatalf("exit %d, stderr %q", code, msg)
	}
}

func TestStatusWithoutNode(t *testing.T) {
	var out, errOut bytes.Buffer
	dir := t.TempDir()
	code := run([]string{"status", "--run-dir", dir}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no weft node is running with --run-dir "+dir) {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestKeygenAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/key"
	var out, errOut bytes.Buffer
	if code := run([]string{"keygen", "--out", path}, &out, &errOut); code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut.String())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	keys, err := encap.ReadKeyFile(path)
	if err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("ReadKeyFile: %d keys, %v", len(keys), err)
	}
	// Never overwrite an existing key.
	if code := run([]string{"keygen", "--out", path}, &out, &errOut); code == 0 {
		t.Fatal("keygen overwrote an existing key file")
	}
	// Stdout form is one base64 line that parses.
	out.Reset()
	if code := run([]string{"keygen"}, &out, &errOut); code != 0 || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("keygen to stdout: %q", out.String())
	}
}

// weft env prints subnet.env in a runtime's form (subnetenv tests every
// form); a bad format, a missing file or one no agent answers for is a
// one-line error.
func TestEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/subnet.env", []byte("WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.3.0/24\nWEFT_MTU=1424\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"env", "--run-dir", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "does not answer") {
		t.Errorf("subnet.env left by a killed agent: exit %d, %q", code, errb.String()) // issue 17 item 6
	}
	apitest.Agent(t, dir, "10.244.3.0/24")
	if code := run([]string{"env", "--run-dir", dir, "--format", "podman"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "podman network create --subnet 10.244.3.0/24 --gateway 10.244.3.1 --opt mtu=1424 weft\n") {
		t.Fatalf("env --format podman: exit %d: %s%s", code, out.String(), errb.String())
	}
	if code := run([]string{"env", "--run-dir", dir, "--format", "xml"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--format") {
		t.Errorf("bad --format: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"env", "--run-dir", t.TempDir()}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "weft up") {
		t.Errorf("no subnet.env: exit %d, %q", code, errb.String())
	}
}
