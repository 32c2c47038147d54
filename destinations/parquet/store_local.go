package parquet

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// closedFile is a complete Parquet file in staging that is not yet durable at its
// final place.
type closedFile struct {
	staging string // local path of the staged file
	rel     string // slash-separated path below the root: ns/table/date=.../name.parquet
	size    int64
	rows    int64
	moved   bool // file://: renamed into place, the directory not yet synced
}

// store makes staged files durable at their final place.
type store interface {
	// stagingDir is where open files are written.
	stagingDir() string
	// fsyncStaging reports whether staged files must be synced before commit
	// (they become the final file by rename).
	fsyncStaging() bool
	// release removes the staging folder and its lock; the store is unusable after.
	release() error
	// commit makes every file durable and removes it from files as it is done. It
	// returns the files still pending, which a later call retries.
	commit(ctx context.Context, files []*closedFile) ([]*closedFile, error)
	// String is the root url, for messages.
	String() string
	// list returns the relative paths of the .parquet files below dir (relative,
	// slash-separated); remove deletes such files durably.
	list(ctx context.Context, dir string) ([]string, error)
	remove(ctx context.Context, rels []string) error
}

// localStore writes below a directory. Staged files live in a hidden directory under
// the root, on the same file system, so that rename moves them into place atomically.
type localStore struct {
	loc     location
	staging *stagingArea
	known   map[string]bool // directories known to exist durably
}

// stagingDirName is the hidden directory under a file:// root that holds staged
// files. Readers skip it: its files end in .tmp, and Spark and Hive skip names
// starting with a dot.
const stagingDirName = ".connectd-staging"

func newLocalStore(loc location, connector string) (*localStore, error) {
	if err := os.MkdirAll(loc.root, 0o755); err != nil {
		return nil, fmt.Errorf("parquet: create %s: %w", loc.root, err)
	}
	staging, err := openStaging(filepath.Join(loc.root, stagingDirName, escapeSegment(connector)), 0o755)
	if err != nil {
		return nil, err
	}
	return &localStore{loc: loc, staging: staging, known: map[string]bool{"": true}}, nil
}

func (s *localStore) stagingDir() string { return s.staging.dir }
func (s *localStore) release() error     { return s.staging.release() }
func (s *localStore) fsyncStaging() bool { return true }
func (s *localStore) String() string     { return s.loc.String() }

func (s *localStore) commit(ctx context.Context, files []*closedFile) ([]*closedFile, error) {
	pending, err := s.commitFiles(ctx, files)
	if err != nil {
		// A directory marked known may not have had its parent synced yet.
		s.known = map[string]bool{"": true}
	}
	return pending, err
}

func (s *localStore) commitFiles(ctx context.Context, files []*closedFile) ([]*closedFile, error) {
	// Every directory whose entries changed must be synced for a rename or mkdir to
	// survive a power loss.
	dirty := map[string]bool{}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return files, err
		}
		dir := path.Dir(f.rel)
		if f.moved {
			dirty[dir] = true
			continue
		}
		if err := s.ensureDir(dir, dirty); err != nil {
			return files, err
		}
		final := filepath.Join(s.loc.root, filepath.FromSlash(f.rel))
		if err := os.Rename(f.staging, final); err != nil {
			return files, fmt.Errorf("parquet: move %s into place: %w", final, err)
		}
		f.moved = true
		dirty[dir] = true
	}
	for dir := range dirty {
		if err := syncDir(filepath.Join(s.loc.root, filepath.FromSlash(dir))); err != nil {
			return files, err
		}
	}
	return nil, nil
}

// ensureDir creates dir (relative, slash-separated) and its missing parents,
// marking the parent of each created directory dirty.
func (s *localStore) ensureDir(dir string, dirty map[string]bool) error {
	if s.known[dir] || dir == "." {
		return nil
	}
	parent := path.Dir(dir)
	if parent == "." {
		parent = ""
	}
	if err := s.ensureDir(parent, dirty); err != nil {
		return err
	}
	full := filepath.Join(s.loc.root, filepath.FromSlash(dir))
	// A directory that already exists may have been made by a run that crashed
	// before syncing its parent, so its parent is synced once either way.
	if err := os.Mkdir(full, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("parquet: create %s: %w", full, err)
	}
	dirty[parent] = true
	s.known[dir] = true
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("parquet: sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("parquet: sync %s: %w", dir, err)
	}
	return nil
}

func (s *localStore) list(_ context.Context, dir string) ([]string, error) {
	root := filepath.Join(s.loc.root, filepath.FromSlash(dir))
	var out []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".parquet") {
			rel, err := filepath.Rel(s.loc.root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parquet: list %s: %w", root, err)
	}
	return out, nil
}

func (s *localStore) remove(_ context.Context, rels []string) error {
	dirs := map[string]bool{}
	for _, rel := range rels {
		full := filepath.Join(s.loc.root, filepath.FromSlash(rel))
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("parquet: remove %s: %w", full, err)
		}
		dirs[filepath.Dir(full)] = true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	return nil
}
