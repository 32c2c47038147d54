package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/record"
)

// TestConformance runs the connector suite against append tables on a real server,
// read back with plain queries.
func TestConformance(t *testing.T) {
	conformance.TestDestination(t, appendDriver{})
}

type appendDriver struct{}

func (appendDriver) Setup(ctx context.Context, tb testing.TB) (conformance.DestinationFixture, error) {
	return &appendFixture{tg: newTarget(tb), tb: tb}, nil
}

type appendFixture struct {
	tg *target
	tb testing.TB
}

func (f *appendFixture) Open(ctx context.Context) (connector.Destination, error) {
	return Kind{}.Open(ctx, params("conformance", f.tg.config("append", false)))
}

func (f *appendFixture) ReadBack(ctx context.Context) ([]conformance.Stored, error) {
	r, err := f.tg.db.Query(ctx, fmt.Sprintf("SELECT _pos, _op FROM %s.items", f.tg.schema))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []conformance.Stored
	for r.Next() {
		var pos, op string
		if err := r.Scan(&pos, &op); err != nil {
			return nil, err
		}
		p, err := record.ParsePosition(pos)
		if err != nil || len(op) != 1 {
			return nil, fmt.Errorf("row _pos %q, _op %q", pos, op)
		}
		out = append(out, conformance.Stored{Pos: p, Op: record.Op(op[0])})
	}
	return out, r.Err()
}
