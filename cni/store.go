package cni

// The data dir: one file per attachment holding the delegate config ADD
// used, so DEL and CHECK replay exactly that config, whatever the agent or
// the subnet file say by then. A lock file in the same dir lets GC (which
// holds it exclusively) never run between ADD's save and the delegate's
// reservation, or in the middle of a DEL (which hold it shared).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

const (
	lockFile  = "lock"
	recordExt = ".json"
)

// record is one attachment's saved state.
type record struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
	Network     string `json:"network"`
	Netns       string `json:"netns,omitempty"`
	// Delegate is the delegate config exactly as ADD passed it.
	Delegate json.RawMessage `json:"delegate"`
}

type store struct{ dir string }

// openStore opens the store in dir and takes its lock (see lock); its error
// is the CNI error every command returns for it.
func openStore(dir string, exclusive bool) (store, func(), error) {
	st := store{dir}
	unlock, err := st.lock(exclusive)
	if err != nil {
		return st, nil, errIO("dataDir", err)
	}
	return st, unlock, nil
}

// lock takes the data dir's lock, shared or exclusive, creating the dir. The
// returned function releases it.
func (s store) lock(exclusive bool) (func(), error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := flock(f, how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing drops the lock
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// path names an attachment's file. '@' cannot occur in a container ID
// (CNI allows [A-Za-z0-9_.-]), so the name is unambiguous.
func (s store) path(containerID, ifName string) string {
	return filepath.Join(s.dir, containerID+"@"+ifName+recordExt)
}

// save writes r atomically (temp file, fsync, rename).
func (s store) save(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	path := s.path(r.ContainerID, r.IfName)
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// load reads an attachment's record; os.ErrNotExist (wrapped) if there is none.
func (s store) load(containerID, ifName string) (record, error) {
	return readRecord(s.path(containerID, ifName))
}

func readRecord(path string) (record, error) {
	var r record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	if r.ContainerID == "" || len(r.Delegate) == 0 {
		return r, fmt.Errorf("%s: not a weft-cni record", path)
	}
	return r, nil
}

// remove deletes an attachment's record; one already gone is not an error.
func (s store) remove(containerID, ifName string) error {
	err := os.Remove(s.path(containerID, ifName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// list reads every record in the dir. Unreadable ones are reported in errs
// and skipped; a missing dir is empty.
func (s store) list() (recs []record, errs []error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{err}
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), recordExt) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := readRecord(filepath.Join(s.dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}
