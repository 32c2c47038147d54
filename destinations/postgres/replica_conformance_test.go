package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
)

// TestReplicaConformance runs the suite's replica checks against merge tables, with hard
// and soft deletes, read back with plain queries.
func TestReplicaConformance(t *testing.T) {
	t.Run("hard", func(t *testing.T) { conformance.TestReplica(t, replicaDriver{}) })
	t.Run("soft", func(t *testing.T) { conformance.TestReplica(t, replicaDriver{soft: true}) })
}

type replicaDriver struct{ soft bool }

func (d replicaDriver) Setup(ctx context.Context, tb testing.TB) (conformance.ReplicaFixture, error) {
	return &replicaFixture{tg: newTarget(tb), soft: d.soft}, nil
}

type replicaFixture struct {
	tg   *target
	soft bool
}

func (f *replicaFixture) Open(ctx context.Context) (connector.Destination, error) {
	return Kind{}.Open(ctx, params("replica", f.tg.config("merge", f.soft)))
}

func (f *replicaFixture) SoftDelete() bool { return f.soft }

func (f *replicaFixture) ReadReplica(ctx context.Context) ([]conformance.ReplicaRow, error) {
	del := "false"
	if f.soft {
		del = "_deleted"
	}
	var exists bool
	if err := f.tg.db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", f.tg.schema+".replica").Scan(&exists); err != nil || !exists {
		return nil, err
	}
	r, err := f.tg.db.Query(ctx, fmt.Sprintf("SELECT id, body, amount::text, qty::text, %s FROM %s.replica", del, f.tg.schema))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []conformance.ReplicaRow
	for r.Next() {
		var row conformance.ReplicaRow
		if err := r.Scan(&row.ID, &row.Body, &row.Amount, &row.Qty, &row.Deleted); err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, r.Err()
}
