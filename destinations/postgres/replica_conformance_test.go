package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
)

// TestReplicaConformance runs the suite's replica checks against merge tables, with hard
// and soft deletes, read back with plain queries; with the MERGE statement of servers
// 15 and later and with the UPDATE and INSERT of older ones.
func TestReplicaConformance(t *testing.T) {
	t.Run("hard", func(t *testing.T) { conformance.TestReplica(t, replicaDriver{}) })
	t.Run("soft", func(t *testing.T) { conformance.TestReplica(t, replicaDriver{soft: true}) })
	t.Run("hard-no-merge", func(t *testing.T) { conformance.TestReplica(t, replicaDriver{noMerge: true}) })
	t.Run("soft-no-merge", func(t *testing.T) { conformance.TestReplica(t, replicaDriver{soft: true, noMerge: true}) })
}

type replicaDriver struct{ soft, noMerge bool }

func (d replicaDriver) Setup(ctx context.Context, tb testing.TB) (conformance.ReplicaFixture, error) {
	return &replicaFixture{tg: newTarget(tb), soft: d.soft, noMerge: d.noMerge}, nil
}

type replicaFixture struct {
	tg            *target
	soft, noMerge bool
}

func (f *replicaFixture) Open(ctx context.Context) (connector.Destination, error) {
	cfg := f.tg.config("merge", f.soft)
	cfg.noMerge = f.noMerge
	return Kind{}.Open(ctx, params("replica", cfg))
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
