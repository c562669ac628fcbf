package membership

// leases.json in StateDir keeps the lease table across restarts, so a node
// gets its subnet back and remembers reservations of nodes that are gone.
// It is written atomically (temporary file, fsync, rename): a crash leaves
// the old table or the new one, never half of one.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// LeaseFile is the name of the lease table in StateDir.
const LeaseFile = "leases.json"

// loadLeases reads the lease file. A missing file is a fresh start. A file
// that does not parse is renamed to leases.json.corrupt-<time> and reported
// as corrupt, so the caller learns the table from the cluster before claiming.
func loadLeases(path string, now time.Time) (ls []Lease, corrupt string, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read lease file: %w", err)
	}
	ls, derr := decodeState(b)
	if derr == nil {
		return ls, "", nil
	}
	aside := path + ".corrupt-" + now.UTC().Format("20060102T150405.000Z")
	if err := os.Rename(path, aside); err != nil {
		return nil, "", fmt.Errorf("move corrupt lease file %s aside: %w (it does not parse: %v)", path, err, derr)
	}
	return nil, aside, fmt.Errorf("lease file %s does not parse: %w", path, derr)
}

// saveLeases writes the table atomically.
func saveLeases(path string, ls []Lease) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	f, err := os.CreateTemp(dir, LeaseFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("write lease file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(encodeState(ls), '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write lease file %s: %w", path, err)
	}
	// The rename is durable only once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
