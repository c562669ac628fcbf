package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/lab"
)

// TestKeyRotation rotates the cluster key of a running gossip cluster with
// `weft key add/use/remove`, in the order docs/security.md gives, while the
// nodes keep talking: no packet is refused along the way, and afterwards a
// node holding only the new key joins the cluster (gossip rotated too) and
// reaches the others.
func TestKeyRotation(t *testing.T) {
	requireTools(t, "ping")
	_, nodes := gossipLab(t, "kr", 3)
	for _, w := range nodes {
		waitPeers(t, w, others(nodes, w)...)
	}
	pingAll(t, nodes)
	oldID := status(t, nodes[0]).Encryption.Primary

	newKey := filepath.Join(t.TempDir(), "new.key")
	if r := runWeft(t, nodes[0].Host, "keygen", "--out", newKey); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	key := func(w *lab.Weft, args ...string) weftRun {
		t.Helper()
		return runWeft(t, w.Host, append(append([]string{"key"}, args...), "--run-dir", w.RunDir)...)
	}
	mustKey := func(w *lab.Weft, args ...string) string {
		t.Helper()
		r := key(w, args...)
		if r.code != 0 {
			t.Fatalf("%s: weft key %v: exit %d: %s", w.Name, args, r.code, r.stderr)
		}
		return r.stdout
	}

	// 1. Every node accepts the new key.
	var newID int
	for _, w := range nodes {
		out := mustKey(w, "add", newKey)
		f := strings.Fields(out) // "key N added: ..."
		if len(f) < 2 {
			t.Fatalf("weft key add printed %q", out)
		}
		id, err := strconv.Atoi(f[1])
		if err != nil || (newID != 0 && id != newID) {
			t.Fatalf("weft key add printed %q", out)
		}
		newID = id
	}
	notHeld := 1
	for notHeld == oldID || notHeld == newID {
		notHeld++
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"add", newKey}, "already held"},
		{[]string{"use", "x1"}, "key id"},
		{[]string{"use", "300"}, "key id"},
		{[]string{"remove", strconv.Itoa(notHeld)}, "not held"},
		{[]string{"add", "/nonexistent"}, "no such file"},
	} {
		if r := key(nodes[0], bad.args...); r.code != 1 || !strings.Contains(r.stderr, bad.want) {
			t.Fatalf("weft key %v: exit %d, %q; want exit 1 saying %q", bad.args, r.code, r.stderr, bad.want)
		}
	}
	list := mustKey(nodes[0], "list")
	if uses := keyUses(list); len(uses) != 2 || uses[oldID] != "accepts, sends" || uses[newID] != "accepts" {
		t.Fatalf("weft key list after add:\n%s", list)
	}
	pingAll(t, nodes)

	// 2. One node sends with it: the others accept it already.
	mustKey(nodes[0], "use", strconv.Itoa(newID))
	if p := status(t, nodes[0]).Encryption.Primary; p != newID {
		t.Fatalf("h1 sends with key %d after 'key use %d'", p, newID)
	}
	pingAll(t, nodes)
	for _, w := range nodes[1:] {
		mustKey(w, "use", strconv.Itoa(newID))
	}
	pingAll(t, nodes)

	// 3. The old key goes; the one in use cannot.
	if r := key(nodes[0], "remove", strconv.Itoa(newID)); r.code == 0 || !strings.Contains(r.stderr, "primary") {
		t.Fatalf("removing the key in use: exit %d, %q", r.code, r.stderr)
	}
	for _, w := range nodes {
		mustKey(w, "remove", strconv.Itoa(oldID))
	}
	pingAll(t, nodes)
	for _, w := range nodes {
		s := status(t, w)
		if len(s.Encryption.KeyIDs) != 1 || s.Encryption.KeyIDs[0] != newID {
			t.Fatalf("%s holds keys %v after the rotation, want [%d]", w.Name, s.Encryption.KeyIDs, newID)
		}
		for _, reason := range []string{"unknown_key", "auth_failed"} {
			if n := s.Drops[reason]; n != 0 {
				t.Fatalf("%s dropped %d packets as %s during the rotation: %v", w.Name, n, reason, s.Drops)
			}
		}
	}

	// 4. h3 restarts with only the new key in its key file: it rejoins
	// through gossip encrypted under the new key, and traffic flows.
	h3 := nodes[2]
	if err := h3.Stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(newKey)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew := filepath.Join(t.TempDir(), "only-new.key")
	if err := os.WriteFile(onlyNew, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, a := range h3.Args {
		if a == "--key-file" {
			h3.Args[i+1] = onlyNew
		}
	}
	if err := h3.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, w := range nodes {
		waitPeers(t, w, others(nodes, w)...)
	}
	pingAll(t, nodes)
}

// keyUses parses `weft key list`: key id → use.
func keyUses(out string) map[int]string {
	uses := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		id, use, _ := strings.Cut(line, " ")
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil
		}
		uses[n] = strings.TrimSpace(use)
	}
	return uses
}
