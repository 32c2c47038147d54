package parquet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// stagingArea is one destination's private folder for files not yet durable. Each
// open destination gets its own folder under <parent>, locked with flock for as long
// as it is open, so two processes (or two configs) with a connector of the same name
// never touch each other's files. A folder whose lock nobody holds was left by a
// crash: its files are garbage (their records are replayed) and the next open of the
// same connector removes it.
type stagingArea struct {
	dir  string
	lock *os.File
}

const (
	stagingLockName = "lock"
	// A folder without a lock file is either being created right now or left by a
	// crash in the instant between mkdir and lock; only the second is old.
	stagingOrphanAge = time.Minute
)

// openStaging creates and locks a fresh folder under parent, after removing the
// folders that crashed destinations left there.
func openStaging(parent string, perm os.FileMode) (*stagingArea, error) {
	if err := os.MkdirAll(parent, perm); err != nil {
		return nil, fmt.Errorf("parquet: create staging %s: %w", parent, err)
	}
	dir, err := os.MkdirTemp(parent, "run-")
	if err != nil {
		return nil, fmt.Errorf("parquet: create staging in %s: %w", parent, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, stagingLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.RemoveAll(dir)
		return nil, fmt.Errorf("parquet: lock staging %s: %w", dir, err)
	}
	sweepStaging(parent, dir)
	return &stagingArea{dir: dir, lock: lock}, nil
}

// sweepStaging removes the folders under parent that no live destination holds.
func sweepStaging(parent, own string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		if dir == own {
			continue
		}
		if !e.IsDir() {
			// Files straight under parent come from versions that staged there.
			os.Remove(dir)
			continue
		}
		if stale(dir) {
			os.RemoveAll(dir)
		}
	}
}

// stale reports whether no destination holds dir's lock.
func stale(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, stagingLockName), os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		info, err := os.Stat(dir)
		return err == nil && time.Since(info.ModTime()) > stagingOrphanAge
	}
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false // held: a live destination's
	}
	// Closing f releases the lock; the folder is removed right after, and a new
	// destination never reuses a name, so nobody can be relying on it.
	return true
}

// release removes the folder and drops the lock.
func (s *stagingArea) release() error {
	err := os.RemoveAll(s.dir)
	s.lock.Close()
	return err
}
