package offsets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/record"
)

// fileExt ends every offset file; anything else in the directory is ignored.
const fileExt = ".json"

// File is a Store keeping one small JSON file per connector in a directory. A commit
// writes a temporary file beside the target, fsyncs it, renames it over the target and
// fsyncs the directory, so after a crash the file holds either the old or the new
// position.
type File struct {
	dir string

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per connector, so one slow fsync does not block others
}

var _ Store = (*File)(nil)

// fileContent is what an offset file holds. It is JSON so that an operator can read
// (and, in an emergency, write) it by hand.
type fileContent struct {
	Connector   string    `json:"connector"`
	Position    string    `json:"position"` // record.Position.String (hex); "" only with a generation: no position yet
	CommittedAt time.Time `json:"committed_at"`
	// Generation is the lease generation of the process that wrote it (0: written
	// without a lease). An s3:// store rewrites it when a new owner takes the lease,
	// so that the previous owner's conditional write fails.
	Generation int64 `json:"generation,omitempty"`
}

// NewFile returns a Store keeping offsets in dir, creating the directory if needed.
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("offsets: file store: empty directory")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("offsets: create directory %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("offsets: %s is not a directory", dir)
	}
	return &File{dir: dir, locks: map[string]*sync.Mutex{}}, nil
}

// Close does nothing: a File holds no connection.
func (f *File) Close() error { return nil }

// Dir is the directory the store writes to.
func (f *File) Dir() string { return f.dir }

// Path is the file holding the connector's offset.
func (f *File) Path(connector string) string {
	return filepath.Join(f.dir, escapeName(connector)+fileExt)
}

func (f *File) lock(connector string) *sync.Mutex {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.locks[connector]
	if !ok {
		l = &sync.Mutex{}
		f.locks[connector] = l
	}
	return l
}

// Load returns the connector's committed position, or nil when it has none.
func (f *File) Load(ctx context.Context, connector string) (record.Position, error) {
	if err := checkName(connector); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := f.lock(connector)
	l.Lock()
	defer l.Unlock()
	pos, _, err := f.read(connector)
	return pos, err
}

// decodeOffset reads what encodeOffset wrote; where names the file or object in errors.
func decodeOffset(connector, where string, data []byte) (record.Position, error) {
	pos, _, err := decodeOffsetGen(connector, where, data)
	return pos, err
}

// decodeOffsetGen is decodeOffset with the generation that wrote the offset. A
// position "" with a generation is a lease's marker: no position yet.
func decodeOffsetGen(connector, where string, data []byte) (record.Position, int64, error) {
	var c fileContent
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, 0, fmt.Errorf("offsets: load %s: corrupt %s: %w (restore it from a backup, or reset the connector)", connector, where, err)
	}
	if c.Connector != connector {
		return nil, 0, fmt.Errorf("offsets: load %s: %s belongs to connector %q", connector, where, c.Connector)
	}
	if c.Position == "" && c.Generation > 0 {
		return nil, c.Generation, nil
	}
	pos, err := record.ParsePosition(c.Position)
	if err != nil {
		return nil, 0, fmt.Errorf("offsets: load %s: corrupt %s: position: %w", connector, where, err)
	}
	if len(pos) == 0 {
		return nil, 0, fmt.Errorf("offsets: load %s: corrupt %s: empty position", connector, where)
	}
	return pos, c.Generation, nil
}

// encodeOffset is the JSON an offset file or object holds.
func encodeOffset(connector string, pos record.Position) ([]byte, error) {
	return encodeOffsetGen(connector, pos, 0)
}

// encodeOffsetGen is encodeOffset by the owner of lease generation gen.
func encodeOffsetGen(connector string, pos record.Position, gen int64) ([]byte, error) {
	if len(pos) == 0 {
		// Load reports "no position" as nil, so an empty one could not be told apart.
		return nil, fmt.Errorf("offsets: commit %s: empty position", connector)
	}
	return marshalOffset(fileContent{Connector: connector, Position: pos.String(), CommittedAt: time.Now().UTC(), Generation: gen})
}

// encodeMarker is an offset object without a position, written by a new owner of
// the lease (s3://) so that the object exists and carries its generation.
func encodeMarker(connector string, gen int64) ([]byte, error) {
	return marshalOffset(fileContent{Connector: connector, CommittedAt: time.Now().UTC(), Generation: gen})
}

func marshalOffset(c fileContent) ([]byte, error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("offsets: commit %s: %w", c.Connector, err)
	}
	return append(data, '\n'), nil
}

// Commit durably replaces the connector's position.
func (f *File) Commit(ctx context.Context, connector string, pos record.Position) error {
	if err := checkName(connector); err != nil {
		return err
	}
	data, err := encodeOffset(connector, pos)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l := f.lock(connector)
	l.Lock()
	defer l.Unlock()
	committed, _, err := f.read(connector)
	if err != nil {
		return err
	}
	if err := checkForward(connector, committed, pos); err != nil {
		return err
	}
	if err := f.writeAtomic(f.Path(connector), data); err != nil {
		return fmt.Errorf("offsets: commit %s: %w", connector, err)
	}
	return nil
}

// read returns the connector's position and the generation that wrote it; the
// caller holds the connector's lock.
func (f *File) read(connector string) (record.Position, int64, error) {
	path := f.Path(connector)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("offsets: load %s: %w", connector, err)
	}
	return decodeOffsetGen(connector, "offset file "+path, data)
}

func (f *File) writeAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(f.dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return f.syncDir()
}

// syncDir makes a rename or removal durable: without it the directory entry can be
// lost in a crash even though the file's data was synced.
func (f *File) syncDir() error {
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.dir, err)
	}
	return nil
}

// Reset forgets the connector's source state, then replaces its position with to
// (nil: removes it). Resetting a connector without one is not an error.
func (f *File) Reset(ctx context.Context, connector string, to record.Position) error {
	if err := checkName(connector); err != nil {
		return err
	}
	var data []byte
	if to != nil {
		var err error
		if data, err = encodeOffset(connector, to); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l := f.lock(connector)
	l.Lock()
	defer l.Unlock()
	// The source state belongs to the position: a snapshot's progress kept after its
	// position is forgotten would make the next run resume instead of starting again.
	states, err := filepath.Glob(filepath.Join(f.dir, escapeName(connector)+".*"+stateExt)) // escaped names hold no glob characters
	if err != nil {
		return fmt.Errorf("offsets: reset %s: %w", connector, err)
	}
	if to == nil {
		states = append(states, f.Path(connector))
	}
	if err := f.removeAll(states); err != nil {
		return fmt.Errorf("offsets: reset %s: %w", connector, err)
	}
	if to != nil {
		if err := f.writeAtomic(f.Path(connector), data); err != nil {
			return fmt.Errorf("offsets: reset %s: %w", connector, err)
		}
	}
	return nil
}

// removeAll removes the files that exist among paths, then makes that durable.
func (f *File) removeAll(paths []string) error {
	removed := false
	for _, p := range paths {
		err := os.Remove(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		removed = true
	}
	if !removed {
		return nil
	}
	return f.syncDir()
}

// List names the connectors that have a committed position, sorted.
func (f *File) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("offsets: list %s: %w", f.dir, err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		// Temporary files start with a dot; they are leftovers of an interrupted commit.
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, fileExt) {
			continue
		}
		name, ok := unescapeName(strings.TrimSuffix(n, fileExt))
		if !ok {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

func checkName(connector string) error {
	if connector == "" {
		return errors.New("offsets: empty connector name")
	}
	return nil
}

// escapeName turns a connector name into a file name. Letters, digits, '_' and '-' stay;
// an upper-case letter becomes '!' and its lower case (as Go's module cache does) so two
// names differing only in case do not share a file on a case-insensitive file system;
// every other byte becomes %XX.
func escapeName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte('!')
			b.WriteByte(c - 'A' + 'a')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// unescapeName reverses escapeName; ok is false for names escapeName cannot produce.
func unescapeName(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '!':
			if i+1 >= len(s) || s[i+1] < 'a' || s[i+1] > 'z' {
				return "", false
			}
			b.WriteByte(s[i+1] - 'a' + 'A')
			i++
		case c == '%':
			if i+2 >= len(s) {
				return "", false
			}
			var v byte
			for _, h := range []byte{s[i+1], s[i+2]} {
				switch {
				case h >= '0' && h <= '9':
					v = v<<4 | (h - '0')
				case h >= 'A' && h <= 'F':
					v = v<<4 | (h - 'A' + 10)
				default:
					return "", false
				}
			}
			b.WriteByte(v)
			i += 2
		default:
			return "", false
		}
	}
	if b.Len() == 0 {
		return "", false
	}
	return b.String(), true
}
