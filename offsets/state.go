package offsets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/connectd/connectd/connector"
)

// stateExt ends every state file; List ignores them (they are not offsets).
const stateExt = ".state"

// fileState is a connector.StateStore keeping one file per connector and key beside
// the offset files, written atomically like them.
type fileState struct {
	f         *File
	connector string
}

// State returns the store of the connector's source state (connector.StateStore).
func (f *File) State(connector string) connector.StateStore {
	return &fileState{f: f, connector: connector}
}

// path joins the escaped names with '.', which escapeName never produces, so two
// (connector, key) pairs never share a file.
func (s *fileState) path(key string) string {
	return filepath.Join(s.f.dir, escapeName(s.connector)+"."+escapeName(key)+stateExt)
}

// Load returns the data saved under key, or nil when there is none.
func (s *fileState) Load(ctx context.Context, key string) ([]byte, error) {
	if err := checkState(s.connector, key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := s.f.lock(s.connector)
	l.Lock()
	defer l.Unlock()
	data, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offsets: load state %s/%s: %w", s.connector, key, err)
	}
	return data, nil
}

// Save durably replaces the data under key.
func (s *fileState) Save(ctx context.Context, key string, data []byte) error {
	if err := checkState(s.connector, key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l := s.f.lock(s.connector)
	l.Lock()
	defer l.Unlock()
	if err := s.f.writeAtomic(s.path(key), data); err != nil {
		return fmt.Errorf("offsets: save state %s/%s: %w", s.connector, key, err)
	}
	return nil
}

func checkState(connector, key string) error {
	if err := checkName(connector); err != nil {
		return err
	}
	if key == "" {
		return errors.New("offsets: state: empty key")
	}
	return nil
}
