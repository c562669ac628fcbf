package encap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	two := filepath.Join(dir, "two")
	os.WriteFile(two, []byte("# rotation\n"+FormatKey(k2)+"\n\n"+FormatKey(k1)+"\n"), 0o600)
	keys, err := ReadKeyFile(two)
	if err != nil || len(keys) != 2 || KeyID(keys[0]) != KeyID(k2) || KeyID(keys[1]) != KeyID(k1) {
		t.Fatalf("two keys: %d, %v", len(keys), err)
	}
	for name, tc := range map[string]struct {
		body string
		mode os.FileMode
		want string
	}{
		"readable by others": {FormatKey(k1) + "\n", 0o644, "chmod 600"},
		"not base64":         {"not a key\n", 0o600, "line 1"},
		"empty":              {"# nothing\n", 0o600, "no key"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(tc.body), tc.mode)
		os.Chmod(p, tc.mode)
		if _, err := ReadKeyFile(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming %s and %q", name, err, p, tc.want)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was read")
	}
}

// The README's first real-hosts command writes /etc/weft/cluster.key on a
// host that has no /etc/weft yet.
func TestWriteKeyFileMakesParents(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "weft", "cluster.key")
	key, _ := GenerateKey()
	if err := WriteKeyFile(path, key); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "etc"), filepath.Join(dir, "etc", "weft")} {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, mode %v, want 0700", d, err, st.Mode().Perm())
		}
	}
	keys, err := ReadKeyFile(path)
	if err != nil || len(keys) != 1 || KeyID(keys[0]) != KeyID(key) {
		t.Fatalf("read back: %v", err)
	}
	if err := WriteKeyFile(path, key); err == nil {
		t.Fatal("an existing key file was overwritten")
	}
}
