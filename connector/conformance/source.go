package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// How many rows the source checks put on the source side by default: enough for a
// snapshot of several chunks and batches when the source emits a few records per
// batch, few enough that a check takes seconds.
const (
	defaultSnapshotRows = 40
	defaultStreamRows   = 30
)

// Sizes is implemented by a SourceDriver whose source emits more records per batch
// than the default rows allow for. The runtime commits whole batches only, so a
// restart lands between two; each phase needs more rows than two of the source's
// largest batches hold (a check that cannot crash inside a phase fails, saying so).
type Sizes interface {
	// Sizes returns how many rows the checks insert before the first read (the
	// snapshot) and after it (the stream).
	Sizes() (snapshot, stream int)
}

func sizesOf(d SourceDriver) (snapshot, stream int) {
	if s, ok := d.(Sizes); ok {
		return s.Sizes()
	}
	return defaultSnapshotRows, defaultStreamRows
}

// errCrash is what emit returns to simulate connectd dying once the records it
// accepted are committed.
var errCrash = errors.New("conformance: simulated crash")

// SourceChecks returns the checks every source must pass.
func SourceChecks() []Check[SourceDriver] {
	return []Check[SourceDriver]{
		{Name: "PositionsStrictlyIncreaseAcrossSnapshotAndStream", Run: checkPositionsIncrease},
		{Name: "SyncReturnsOnceCaughtUpAndEmitsNothingTwice", Run: checkSyncEnds},
		{Name: "RestartMidSnapshotDeliversExactlyTheRest", Run: checkRestartMidSnapshot},
		{Name: "RestartMidStreamAfterAckDeliversExactlyTheRest", Run: checkRestartMidStream},
		{Name: "CancelEndsReadWithinBound", Run: checkCancel},
		{Name: "CloseLeavesNoGoroutine", Run: checkSourceGoroutines},
	}
}

// checkPositionsIncrease reads a snapshot, then a stream of later rows, and requires
// every position of both to sort after the one before it.
func checkPositionsIncrease(ctx context.Context, tb testing.TB, d SourceDriver) error {
	snapshotRows, streamRows := sizesOf(d)
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := fx.Insert(ctx, snapshotRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	first, err := read(ctx, fx, connector.ModeSync, nil, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	if err := fx.Insert(ctx, streamRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	second, err := read(ctx, fx, connector.ModeSync, first.committed, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("second sync: %w", err)
	}
	return errors.Join(
		count("the first sync (the snapshot)", first.data, snapshotRows),
		count("the second sync (the stream)", second.data, streamRows),
		increasing(concat(first.data, second.data)),
		distinct(concat(first.data, second.data)),
	)
}

// checkSyncEnds requires ModeSync to return nil once caught up, and a sync from the
// position the last one committed to emit no row again.
func checkSyncEnds(ctx context.Context, tb testing.TB, d SourceDriver) error {
	snapshotRows, _ := sizesOf(d)
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := fx.Insert(ctx, snapshotRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	first, err := read(ctx, fx, connector.ModeSync, nil, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	again, err := read(ctx, fx, connector.ModeSync, first.committed, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("sync with nothing new: %w", err)
	}
	return errors.Join(
		count("the first sync", first.data, snapshotRows),
		count("a sync with nothing new", again.data, 0),
	)
}

// checkRestartMidSnapshot crashes in the middle of the snapshot (committed, not yet
// acked) and requires the restart from the committed position to deliver exactly
// the rows not yet delivered.
func checkRestartMidSnapshot(ctx context.Context, tb testing.TB, d SourceDriver) error {
	snapshotRows, _ := sizesOf(d)
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := fx.Insert(ctx, snapshotRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	cut := snapshotRows/2 - 3 // not on a chunk boundary of a round size
	crashed, err := read(ctx, fx, connector.ModeSync, nil, plan{crashAfter: cut})
	if err != nil {
		return fmt.Errorf("sync until the crash: %w", err)
	}
	tb.Logf("crashed after %d of %d snapshot records, committed %s", len(crashed.data), snapshotRows, crashed.committed)
	rest, err := read(ctx, fx, connector.ModeSync, crashed.committed, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("sync after the restart: %w", err)
	}
	all := concat(crashed.data, rest.data)
	return errors.Join(
		count("the restarted sync", rest.data, snapshotRows-len(crashed.data)),
		increasing(all),
		distinct(all),
	)
}

// checkRestartMidStream crashes twice while streaming: once with the committed
// position not yet acked, once after Ack of it. Each restart from the committed
// position must deliver exactly the rest: an Ack that told the server more than it
// was given loses rows here.
func checkRestartMidStream(ctx context.Context, tb testing.TB, d SourceDriver) error {
	snapshotRows, streamRows := sizesOf(d)
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := fx.Insert(ctx, snapshotRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	snap, err := read(ctx, fx, connector.ModeSync, nil, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	if err := fx.Insert(ctx, streamRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	// Each crash comes after one more batch: with more rows than two of the
	// source's largest batches (see Sizes), rows are left after both.
	one, err := read(ctx, fx, connector.ModeSync, snap.committed, plan{crashAfter: 1})
	if err != nil {
		return fmt.Errorf("stream until the first crash (not acked): %w", err)
	}
	two, err := read(ctx, fx, connector.ModeSync, one.committed, plan{crashAfter: 1, ack: true})
	if err != nil {
		return fmt.Errorf("stream until the second crash (acked): %w", err)
	}
	tb.Logf("crashed after %d and %d more of %d streamed records, committed %s then %s (acked)",
		len(one.data), len(two.data), streamRows, one.committed, two.committed)
	rest, err := read(ctx, fx, connector.ModeSync, two.committed, plan{crashAfter: -1, ack: true})
	if err != nil {
		return fmt.Errorf("sync after the second restart: %w", err)
	}
	stream := concat(one.data, two.data, rest.data)
	return errors.Join(
		count("the snapshot", snap.data, snapshotRows),
		count("the stream after two restarts", rest.data, streamRows-len(one.data)-len(two.data)),
		increasing(concat(snap.data, stream)),
		distinct(concat(snap.data, stream)),
	)
}

// checkCancel cancels a streaming Read twice: while it waits for the server with
// nothing to read, and while its emit is blocked by backpressure. Read must return
// within ReturnBound each time.
func checkCancel(ctx context.Context, tb testing.TB, d SourceDriver) error {
	snapshotRows, streamRows := sizesOf(d)
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := fx.Insert(ctx, snapshotRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	idle, err := read(ctx, fx, connector.ModeStream, nil, plan{crashAfter: -1, ack: true, cancelAt: snapshotRows})
	if err != nil {
		return fmt.Errorf("cancel while idle: %w", err)
	}
	if err := fx.Insert(ctx, streamRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	if _, err := read(ctx, fx, connector.ModeStream, idle.committed, plan{crashAfter: -1, blockEmit: true}); err != nil {
		return fmt.Errorf("cancel while emit blocks: %w", err)
	}
	return count("the stream until cancelled", idle.data, snapshotRows)
}

// checkSourceGoroutines requires every goroutine a source started to be gone once
// Read has returned and Close has.
func checkSourceGoroutines(ctx context.Context, tb testing.TB, d SourceDriver) error {
	snapshotRows, _ := sizesOf(d)
	fx, err := d.Setup(ctx, tb)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := fx.Insert(ctx, snapshotRows); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	before := goroutinesNow()
	if _, err := read(ctx, fx, connector.ModeStream, nil, plan{crashAfter: -1, ack: true, cancelAt: snapshotRows}); err != nil {
		return err
	}
	return leftBehind(ctx, before)
}

// plan says how read treats a source.
type plan struct {
	// crashAfter makes emit fail once at least this many data records were
	// accepted (in whole batches), as a connectd that dies after committing them;
	// < 0 never.
	crashAfter int
	// ack acks every accepted batch, as the runtime does once it has committed it.
	ack bool
	// cancelAt (ModeStream) cancels Read once this many data records arrived and the
	// source had a moment to go idle.
	cancelAt int
	// blockEmit (ModeStream) blocks the first emit until the context ends, as a full
	// buffer does, and cancels Read while it blocks.
	blockEmit bool
}

// session is what one Open-Read-Close of a source delivered.
type session struct {
	committed record.Position // the last accepted position: where a restart starts
	data      []record.Record // accepted records other than checkpoints
}

// read opens a source from fx, reads from start as plan says, closes it, and
// checks on the way what every read must keep: each position sorts after start
// and after every position before it, ModeSync returns nil, a failed emit makes
// Read fail, and Read returns within its bounds.
func read(ctx context.Context, fx SourceFixture, mode connector.Mode, start record.Position, p plan) (*session, error) {
	src, err := fx.Open(ctx, mode)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	s := &session{committed: start}
	var (
		mu       sync.Mutex
		problems []error
		crashed  bool
		blocked  bool
	)
	progress := make(chan struct{}, 1)
	notify := func() {
		select {
		case progress <- struct{}{}:
		default:
		}
	}
	emit := func(ectx context.Context, recs []record.Record) error {
		mu.Lock()
		if p.blockEmit {
			blocked = true
			mu.Unlock()
			notify()
			<-ectx.Done()
			return ectx.Err()
		}
		defer mu.Unlock()
		defer notify()
		if crashed {
			problems = append(problems, errors.New("emit was called again after it had failed"))
			return errCrash
		}
		// The runtime commits whole batches only, so the crash comes between two
		// emits: the committed position is the last one of a batch.
		if p.crashAfter >= 0 && len(s.data) >= p.crashAfter {
			crashed = true
			return errCrash
		}
		for _, r := range recs {
			if err := checkRecord(r, s.committed, start); err != nil {
				problems = append(problems, err)
				if len(problems) > 10 {
					problems = append(problems, errors.New("(more problems left out)"))
					return errors.Join(problems...)
				}
			}
			if s.committed == nil || r.Pos.Compare(s.committed) > 0 {
				s.committed = r.Pos
			}
			if r.Op != record.OpCheckpoint {
				s.data = append(s.data, r)
			}
		}
		if p.ack && len(recs) > 0 {
			if err := src.Ack(ectx, s.committed); err != nil {
				problems = append(problems, fmt.Errorf("ack %s: %w", s.committed, err))
				return err
			}
		}
		return nil
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Read(rctx, start, emit) }()

	var readErr error
	returned := false
	catchUp := time.NewTimer(CatchUpBound)
	defer catchUp.Stop()
	var returnBound <-chan time.Time // set once Read has been told to stop
	for !returned {
		select {
		case readErr = <-done:
			returned = true
		case <-progress:
			mu.Lock()
			stop := crashed || blocked || (mode == connector.ModeStream && p.cancelAt > 0 && len(s.data) >= p.cancelAt)
			mu.Unlock()
			if stop && returnBound == nil {
				if !crashed && !blocked {
					// Let the source go idle, waiting on its server, before the cancel.
					time.Sleep(200 * time.Millisecond)
				}
				cancel()
				returnBound = time.After(ReturnBound)
			}
		case <-catchUp.C:
			if returnBound == nil {
				mu.Lock()
				n := len(s.data)
				mu.Unlock()
				return nil, fmt.Errorf("Read delivered %d records and did not return nor reach the point the check waits for within %s", n, CatchUpBound)
			}
		case <-returnBound:
			return nil, fmt.Errorf("Read did not return within %s of its context's cancel or its emit's failure", ReturnBound)
		case <-ctx.Done():
			return nil, fmt.Errorf("the check ran out of time waiting for Read: %w", ctx.Err())
		}
	}
	if err := src.Close(ctx); err != nil {
		problems = append(problems, fmt.Errorf("close: %w", err))
	}
	mu.Lock()
	defer mu.Unlock()
	switch {
	case crashed:
		if readErr == nil {
			problems = append(problems, errors.New("Read returned nil after its emit had failed"))
		}
	case p.crashAfter >= 0:
		problems = append(problems, fmt.Errorf("Read returned (%v) after %d records, before the crash the check makes after %d and before the last batch: "+
			"records are missing, or the source emits more records per batch than the rows allow for (see Sizes)", readErr, len(s.data), p.crashAfter))
	case mode == connector.ModeSync && readErr != nil:
		problems = append(problems, fmt.Errorf("Read in ModeSync: %w", readErr))
	case mode == connector.ModeStream && returnBound == nil:
		problems = append(problems, fmt.Errorf("Read in ModeStream returned (%v) before its context ended", readErr))
	}
	return s, errors.Join(problems...)
}

// checkRecord checks one emitted record against the position accepted before it
// (last) and the start of the Read.
func checkRecord(r record.Record, last, start record.Position) error {
	if len(r.Pos) == 0 {
		return fmt.Errorf("a %s record has no position", r.Op)
	}
	if r.Op != record.OpCheckpoint {
		if !r.Op.Valid() {
			return fmt.Errorf("record at %s has op %q", r.Pos, r.Op)
		}
		if r.Schema == nil {
			return fmt.Errorf("record at %s has no schema", r.Pos)
		}
	}
	if start != nil && r.Pos.Compare(start) <= 0 {
		return fmt.Errorf("record at %s emitted again: it is at or before start %s", r.Pos, start)
	}
	if last != nil && r.Pos.Compare(last) <= 0 {
		return fmt.Errorf("%s record at %s does not sort after the record before it at %s", r.Op, r.Pos, last)
	}
	return nil
}

// count checks how many records a read delivered.
func count(what string, recs []record.Record, want int) error {
	if len(recs) != want {
		return fmt.Errorf("%s delivered %d records, want %d", what, len(recs), want)
	}
	return nil
}

// increasing checks that positions strictly increase across reads.
func increasing(recs []record.Record) error {
	for i := 1; i < len(recs); i++ {
		if recs[i].Pos.Compare(recs[i-1].Pos) <= 0 {
			return fmt.Errorf("record %d at %s does not sort after record %d at %s", i, recs[i].Pos, i-1, recs[i-1].Pos)
		}
	}
	return nil
}

// distinct checks that no row image arrived twice: a record re-emitted under a new
// position shows here.
func distinct(recs []record.Record) error {
	seen := map[string]record.Position{}
	for _, r := range recs {
		key := fmt.Sprintf("%s.%s %s %v", r.Namespace(), r.Table(), r.Op, r.Row())
		if p, ok := seen[key]; ok {
			return fmt.Errorf("the row %s arrived twice, at %s and at %s", key, p, r.Pos)
		}
		seen[key] = r.Pos
	}
	return nil
}

func concat(parts ...[]record.Record) []record.Record {
	var out []record.Record
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
