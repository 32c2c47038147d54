package conformance

import (
	"context"
	"fmt"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// ReplicaDriver makes instances of a destination that keeps a replica of each
// source table (merge mode) instead of a change log.
type ReplicaDriver interface {
	// Setup prepares a new, empty target (a schema, a database file) that no other
	// check writes to; it is released through tb.Cleanup.
	Setup(ctx context.Context, tb testing.TB) (ReplicaFixture, error)
}

// ReplicaFixture is one replica destination instance made by a ReplicaDriver.
type ReplicaFixture interface {
	// Open opens the destination, configured to keep a replica of ReplicaSchema's
	// table. Every Open of one fixture writes to the same place, as a restarted
	// connectd would.
	Open(ctx context.Context) (connector.Destination, error)
	// ReadReplica returns the rows of the replica table, read independently of the
	// destination's own code, no rows when the table does not exist. A query such as
	// SELECT id, body, amount::text, qty::text, _deleted FROM <schema>.replica,
	// scanned into the fields of ReplicaRow, does (false for _deleted with hard
	// deletes). The checks call it only while no destination of the fixture is
	// open, so that an embedded database's single writer is free.
	ReadReplica(ctx context.Context) ([]ReplicaRow, error)
	// SoftDelete reports whether the destination marks deleted rows (_deleted)
	// instead of removing them.
	SoftDelete() bool
}

// replicaRecords is how many records each replica check writes.
const replicaRecords = 240

// ReplicaChecks returns the checks every replica (merge mode) destination must pass.
func ReplicaChecks() []Check[ReplicaDriver] {
	return []Check[ReplicaDriver]{
		{Name: "FlushOnceLeavesTheReplica", Run: checkReplicaFlushOnce},
		{Name: "ReplayAfterCrashWithoutFlushLeavesTheReplica", Run: checkReplicaReplayUnflushed},
		{Name: "ReplayOfFlushedRecordsChangesNothing", Run: checkReplicaReplayFlushed},
		{Name: "SmallFlushesKeepUnchangedValues", Run: checkReplicaSmallFlushes},
		{Name: "CloseLeavesNoGoroutine", Run: checkReplicaGoroutines},
	}
}

// TestReplica runs every replica check against d, each as a subtest of t.
func TestReplica(t *testing.T, d ReplicaDriver) {
	t.Helper()
	runChecks(t, d, ReplicaChecks())
}

// replicaHolds reads the fixture's replica and compares it with the model of recs.
func replicaHolds(ctx context.Context, fx ReplicaFixture, recs []record.Record) error {
	m, err := ReplicaModel(recs, fx.SoftDelete())
	if err != nil {
		return fmt.Errorf("the suite's model: %w", err)
	}
	got, err := fx.ReadReplica(ctx)
	if err != nil {
		return fmt.Errorf("read the replica: %w", err)
	}
	return m.Match(got)
}

// checkReplicaFlushOnce writes every record, flushes once (each key's records fold
// into one batch), and compares the replica with the model.
func checkReplicaFlushOnce(ctx context.Context, tb testing.TB, d ReplicaDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := ReplicaRecords(1, replicaRecords)
	if err := play(ctx, fx, recs, step{from: 0, to: len(recs), chunk: 50, flush: true}); err != nil {
		return err
	}
	if err := replicaHolds(ctx, fx, recs); err != nil {
		return fmt.Errorf("after records 0..%d were flushed at once: %w", len(recs)-1, err)
	}
	return nil
}

// checkReplicaReplayUnflushed: a flush is committed, more records are written, the
// process dies before flushing them; the restarted connector replays them (with
// other batch sizes, flushing at other points) and more after them.
func checkReplicaReplayUnflushed(ctx context.Context, tb testing.TB, d ReplicaDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := ReplicaRecords(2, replicaRecords)
	if err := play(ctx, fx, recs,
		step{from: 0, to: 100, chunk: 25, flush: true},
		step{from: 100, to: 200, chunk: 25}); err != nil {
		return fmt.Errorf("before the crash: %w", err)
	}
	if err := play(ctx, fx, recs,
		step{from: 100, to: 170, chunk: 7, flush: true},
		step{from: 170, to: len(recs), chunk: 13, flush: true}); err != nil {
		return fmt.Errorf("the replay: %w", err)
	}
	if err := replicaHolds(ctx, fx, recs); err != nil {
		return fmt.Errorf("after the replay of records 100..%d: %w", len(recs)-1, err)
	}
	return nil
}

// checkReplicaReplayFlushed: the process dies after a flush was durable but before
// its position reached the offsets store; the restarted connector replays records
// the target already has, flushing at other points, and dies again, and the next
// replay runs past the end of what was flushed. A replayed record is older than the
// row it would overwrite: the replica must not change until the records are new.
func checkReplicaReplayFlushed(ctx context.Context, tb testing.TB, d ReplicaDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := ReplicaRecords(3, replicaRecords)
	if err := play(ctx, fx, recs,
		step{from: 0, to: 90, chunk: 30, flush: true},
		step{from: 90, to: 200, chunk: 30, flush: true}); err != nil {
		return fmt.Errorf("before the crash: %w", err)
	}
	if err := replicaHolds(ctx, fx, recs[:200]); err != nil {
		return fmt.Errorf("after records 0..199 were flushed: %w", err)
	}
	if err := play(ctx, fx, recs,
		step{from: 60, to: 130, chunk: 11, flush: true, flushed: true}); err != nil {
		return fmt.Errorf("the first replay: %w", err)
	}
	if err := replicaHolds(ctx, fx, recs[:200]); err != nil {
		return fmt.Errorf("after the replay of records 60..129, which were flushed before: %w", err)
	}
	if err := play(ctx, fx, recs,
		step{from: 130, to: 220, chunk: 11, flush: true},
		step{from: 220, to: len(recs), chunk: 11, flush: true}); err != nil {
		return fmt.Errorf("the second replay: %w", err)
	}
	if err := replicaHolds(ctx, fx, recs); err != nil {
		return fmt.Errorf("after the replay of records 130..%d: %w", len(recs)-1, err)
	}
	return nil
}

// checkReplicaSmallFlushes flushes every few records, so that most updates land in
// a later flush than the insert of their row: an unchanged value must be kept from
// the target's row, not from the batch. The destination is reopened halfway.
func checkReplicaSmallFlushes(ctx context.Context, tb testing.TB, d ReplicaDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := ReplicaRecords(4, replicaRecords)
	small := func(from, to int) []step {
		var steps []step
		for i := from; i < to; i += 3 {
			steps = append(steps, step{from: i, to: min(i+3, to), chunk: 2, flush: true})
		}
		return steps
	}
	half := len(recs) / 2
	if err := play(ctx, fx, recs, small(0, half)...); err != nil {
		return fmt.Errorf("the first half: %w", err)
	}
	if err := replicaHolds(ctx, fx, recs[:half]); err != nil {
		return fmt.Errorf("after records 0..%d were flushed three at a time: %w", half-1, err)
	}
	if err := play(ctx, fx, recs, small(half, len(recs))...); err != nil {
		return fmt.Errorf("the second half: %w", err)
	}
	if err := replicaHolds(ctx, fx, recs); err != nil {
		return fmt.Errorf("after records %d..%d were flushed three at a time: %w", half, len(recs)-1, err)
	}
	return nil
}

// checkReplicaGoroutines requires every goroutine a replica destination started to
// be gone once Close has returned.
func checkReplicaGoroutines(ctx context.Context, tb testing.TB, d ReplicaDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	before := goroutinesNow()
	recs := ReplicaRecords(5, replicaRecords)
	if err := play(ctx, fx, recs, step{from: 0, to: 150, chunk: 50, flush: true}, step{from: 150, to: len(recs), chunk: 50}); err != nil {
		return err
	}
	return leftBehind(ctx, before)
}
