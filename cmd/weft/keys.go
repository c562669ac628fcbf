package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/weftnet/weft/encap"
)

// cmdKeygen prints a new cluster key, or writes it to a new 0600 file.
func cmdKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", stderr)
	out := fs.String("out", "", "write the key to this new `file` (mode 0600) instead of stdout")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	key, err := encap.GenerateKey()
	if err != nil {
		return err
	}
	line := encap.FormatKey(key) + "\n"
	if *out == "" {
		_, err := io.WriteString(stdout, line)
		return err
	}
	// O_EXCL: never overwrite a key a cluster may already use.
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("--out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(stderr, "wrote a new cluster key (id %d) to %s; copy it to every node and start them with --key-file %s\n",
		encap.KeyID(key), *out, *out)
	return nil
}

// readKeyFile reads the cluster keys in path: one base64 key per line, the
// first one is sent with; blank lines and # comments are skipped. A file that
// others can read is refused: the key lets anyone into the overlay.
func readKeyFile(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("--key-file %s is readable by others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, err := encap.ParseKey(text)
		if err != nil {
			return nil, fmt.Errorf("--key-file %s line %d: %w", path, line, err)
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("--key-file " + path + ": no key in the file (make one with 'weft keygen --out FILE')")
	}
	return keys, nil
}
