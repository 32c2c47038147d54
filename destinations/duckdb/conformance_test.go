package duckdb

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/record"
)

// TestConformance runs the connector suite against the destination in append mode,
// where each record is one row: the suite reads back each record's position and op.
func TestConformance(t *testing.T) {
	conformance.TestDestination(t, fileDriver{})
}

// fileDriver gives each check a database file of its own.
type fileDriver struct{}

var conformanceSeq atomic.Int64

func (fileDriver) Setup(_ context.Context, tb testing.TB) (conformance.DestinationFixture, error) {
	return &fileFixture{tb: tb, name: fmt.Sprintf("conformance_%d", conformanceSeq.Add(1)), path: newPath(tb)}, nil
}

type fileFixture struct {
	tb   testing.TB
	name string
	path string
}

func (f *fileFixture) Open(ctx context.Context) (connector.Destination, error) {
	return Kind{}.Open(ctx, params(f.name, &Config{Path: f.path, Mode: "append"}))
}

// ReadBack reads the target table with a connection of its own, opened after the
// destination was closed.
func (f *fileFixture) ReadBack(ctx context.Context) ([]conformance.Stored, error) {
	db := readDB(f.tb, f.path)
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT _pos, _op FROM main.items`)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil, nil
		}
		return nil, err
	}
	defer rows.Close()
	var out []conformance.Stored
	for rows.Next() {
		var p, op string
		if err := rows.Scan(&p, &op); err != nil {
			return nil, err
		}
		pos, err := record.ParsePosition(p)
		if err != nil {
			return nil, fmt.Errorf("_pos %q: %w", p, err)
		}
		if len(op) != 1 {
			return nil, fmt.Errorf("_op %q at %s", op, p)
		}
		out = append(out, conformance.Stored{Pos: pos, Op: record.Op(op[0])})
	}
	return out, rows.Err()
}
