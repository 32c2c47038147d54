package conformance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// The records the destination checks write: one table, inserts, updates and
// deletes, commit times that cross a UTC midnight (two date partitions in a lake).
const destRecords = 150

var destSchema = record.NewSchema("conformance", "items", []record.Column{
	{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
	{Name: "name", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
	{Name: "amount", SourceType: "numeric(12,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
})

// Records returns the n deterministic records the destination checks write, in
// source order; a replay writes the same records with the same positions again.
func Records(n int) []record.Record {
	base := time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC)
	recs := make([]record.Record, n)
	for i := range recs {
		var pos [8]byte
		binary.BigEndian.PutUint64(pos[:], uint64(1_000_000+10*i))
		r := record.Record{Schema: destSchema, Pos: pos[:], CommitTS: base.Add(time.Duration(i) * time.Second), TxID: fmt.Sprint(i / 5)}
		id := int64(i / 3)
		switch i % 3 {
		case 0:
			r.Op, r.After = record.OpCreate, []record.Value{id, fmt.Sprintf("item %d", id), record.Decimal(fmt.Sprintf("%d.%02d", i, i%100))}
		case 1:
			r.Op, r.After = record.OpUpdate, []record.Value{id, fmt.Sprintf("item %d v2", id), nil}
		default:
			r.Op, r.Before = record.OpDelete, []record.Value{id, nil, nil}
		}
		recs[i] = r
	}
	return recs
}

// DestinationChecks returns the checks every destination must pass.
func DestinationChecks() []Check[DestinationDriver] {
	return []Check[DestinationDriver]{
		{Name: "FlushStoresEveryRecordOnce", Run: checkFlushOnce},
		{Name: "ReplayAfterCrashWithoutFlushLeavesOneCopy", Run: checkReplayUnflushed},
		{Name: "ReplayAfterFlushLeavesOneCopy", Run: checkReplayFlushed},
		{Name: "CloseLeavesNoGoroutine", Run: checkDestinationGoroutines},
	}
}

// step is one action on an open destination: write recs[from:to] in chunks, then
// flush or not.
type step struct {
	from, to, chunk int
	flush           bool
	// flushed says that every record of the step was flushed before (a replay of
	// them): a destination that keeps its position with its data skips them, and
	// may have nothing to flush.
	flushed bool
}

// opener is a fixture that opens its destination.
type opener interface {
	Open(ctx context.Context) (connector.Destination, error)
}

// play opens a destination, runs steps on it and closes it without a flush of its
// own: whatever the last step did not flush is lost, as in a crash.
func play(ctx context.Context, fx opener, recs []record.Record, steps ...step) error {
	dst, err := fx.Open(ctx)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	var problems []error
	for _, s := range steps {
		for i := s.from; i < s.to; i += s.chunk {
			if err := dst.Write(ctx, recs[i:min(i+s.chunk, s.to)]); err != nil {
				problems = append(problems, fmt.Errorf("write records %d..%d: %w", i, min(i+s.chunk, s.to)-1, err))
				break
			}
		}
		if rows, _ := dst.Buffered(); len(problems) == 0 && s.flush && rows == 0 && !s.flushed {
			problems = append(problems, fmt.Errorf("Buffered reports 0 rows after records %d..%d were written", s.from, s.to-1))
		}
		if s.flush && len(problems) == 0 {
			if err := dst.Flush(ctx); err != nil {
				problems = append(problems, fmt.Errorf("flush after records %d..%d: %w", s.from, s.to-1, err))
			} else if rows, _ := dst.Buffered(); rows != 0 {
				problems = append(problems, fmt.Errorf("Buffered reports %d rows right after Flush", rows))
			}
		}
		if len(problems) > 0 {
			break
		}
	}
	if err := dst.Close(ctx); err != nil {
		problems = append(problems, fmt.Errorf("close: %w", err))
	}
	return errors.Join(problems...)
}

// checkFlushOnce writes every record, flushes once, and reads them back.
func checkFlushOnce(ctx context.Context, tb testing.TB, d DestinationDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := Records(destRecords)
	if err := play(ctx, fx, recs, step{from: 0, to: destRecords, chunk: 50, flush: true}); err != nil {
		return err
	}
	return exactlyOnce(ctx, fx, recs)
}

// checkReplayUnflushed: a flush is committed, more records are written, the
// process dies before flushing them; the restarted connector replays them (with
// other batch sizes) and more after them, and flushes.
func checkReplayUnflushed(ctx context.Context, tb testing.TB, d DestinationDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := Records(destRecords)
	if err := play(ctx, fx, recs,
		step{from: 0, to: 60, chunk: 25, flush: true},
		step{from: 60, to: 120, chunk: 25}); err != nil {
		return fmt.Errorf("before the crash: %w", err)
	}
	if err := play(ctx, fx, recs, step{from: 60, to: destRecords, chunk: 7, flush: true}); err != nil {
		return fmt.Errorf("the replay: %w", err)
	}
	return exactlyOnce(ctx, fx, recs)
}

// checkReplayFlushed: the process dies after a flush was durable but before its
// position was committed; the restarted connector replays from the commit before
// it, flushing at other points.
func checkReplayFlushed(ctx context.Context, tb testing.TB, d DestinationDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	recs := Records(destRecords)
	if err := play(ctx, fx, recs,
		step{from: 0, to: 60, chunk: 60, flush: true},
		step{from: 60, to: 120, chunk: 60, flush: true}); err != nil {
		return fmt.Errorf("before the crash: %w", err)
	}
	if err := play(ctx, fx, recs,
		step{from: 60, to: 90, chunk: 11, flush: true},
		step{from: 90, to: destRecords, chunk: 11, flush: true}); err != nil {
		return fmt.Errorf("the replay: %w", err)
	}
	return exactlyOnce(ctx, fx, recs)
}

// checkDestinationGoroutines requires every goroutine a destination started to be
// gone once Close has returned.
func checkDestinationGoroutines(ctx context.Context, tb testing.TB, d DestinationDriver) error {
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	before := goroutinesNow()
	recs := Records(destRecords)
	if err := play(ctx, fx, recs, step{from: 0, to: 100, chunk: 50, flush: true}, step{from: 100, to: destRecords, chunk: 50}); err != nil {
		return err
	}
	return leftBehind(ctx, before)
}

// exactlyOnce reads the destination's side back and requires each record of recs
// there exactly once, with its op, and nothing else.
func exactlyOnce(ctx context.Context, fx DestinationFixture, recs []record.Record) error {
	stored, err := fx.ReadBack(ctx)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	want := map[string]record.Op{}
	for _, r := range recs {
		want[string(r.Pos)] = r.Op
	}
	copies := map[string]int{}
	var problems []error
	for _, s := range stored {
		copies[string(s.Pos)]++
		op, ok := want[string(s.Pos)]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("the destination holds a record at %s that was never written", s.Pos))
		case s.Op != op && copies[string(s.Pos)] == 1:
			problems = append(problems, fmt.Errorf("the record at %s is stored with op %s, written with %s", s.Pos, s.Op, op))
		}
	}
	var doubled, missing []string
	for p := range want {
		switch n := copies[p]; {
		case n == 0:
			missing = append(missing, record.Position(p).String())
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s (%d copies)", record.Position(p), n))
		}
	}
	sort.Strings(doubled)
	sort.Strings(missing)
	if len(doubled) > 0 {
		problems = append(problems, fmt.Errorf("%d of %d records are stored more than once: %s", len(doubled), len(want), firstFew(doubled)))
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Errorf("%d of %d records are missing: %s", len(missing), len(want), firstFew(missing)))
	}
	return errors.Join(problems...)
}

func firstFew(s []string) string {
	if len(s) > 5 {
		return fmt.Sprint(s[:5], " ...")
	}
	return fmt.Sprint(s)
}
