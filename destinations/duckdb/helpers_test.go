package duckdb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

func testLogger(name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("connector", name)
}

// newPath is a database file that does not exist yet, in a directory that does not
// either (the destination creates both).
func newPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "target", "replica.duckdb")
}

// params is what the runtime opens a duckdb destination with.
func params(name string, cfg *Config) connector.DestinationParams {
	return connector.DestinationParams{Name: name, Config: config.Destination{Type: "duckdb", Config: cfg}, Logger: testLogger(name)}
}

// open opens the destination as the runtime does.
func open(ctx context.Context, t testing.TB, name string, cfg *Config) *warehouse.Destination {
	t.Helper()
	d, err := Kind{}.Open(ctx, params(name, cfg))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return d.(*warehouse.Destination)
}

// readDB opens the file as a user would, apart from the destination's own code;
// it is closed when the test ends, or by the caller.
func readDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatalf("open %s to read it back: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// pos is the position of the n-th record of a test: 8 bytes, so that they sort.
func pos(n int) record.Position {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}
