// Package conformance is the suite every connector.Source and connector.Destination
// runs against itself to show that it keeps the contract the runtime relies on
// (docs/design.md, "Positions", "Delivery order" and "Exactly once"): positions that
// strictly increase and never repeat, a restart from a committed position that
// delivers exactly the rest, ModeSync that ends, cancellation that is obeyed, an Ack
// that never reaches past what was committed, a replay that leaves one copy, and no
// goroutine left behind by Close.
//
// A connector's test supplies a small driver that knows how to make a fresh
// instance of the connector against a real server, how to put rows on a source's
// side and how to read back what a destination's side holds; the suite owns the
// checks:
//
//	func TestConformance(t *testing.T) { conformance.TestSource(t, myDriver{...}) }
//
// A destination that keeps a replica of each source table (merge mode: a database
// table with one row per key) instead of a change log also runs the replica checks
// (TestReplica, with a ReplicaDriver whose fixture reads the target table back). They
// write records of ReplicaSchema from ReplicaRecords: inserts, updates, some leaving
// a TOASTed text column unchanged (nil in After, named in Unchanged), deletes that
// carry only the key, key changes (a delete then an insert), re-inserts and
// truncates (docs/design.md, "Envelope"). After each run the table must equal the
// model of the records written so far (Replica: upserts by key, an unchanged column
// keeping the row's value, deletes that remove the row or, with soft deletes, mark
// it _deleted with its values, a truncate that removes or marks every row):
//
//   - FlushOnceLeavesTheReplica: every record in one flush, folded per key;
//   - ReplayAfterCrashWithoutFlushLeavesTheReplica: unflushed records lost in a
//     crash and written again, in other batches, flushed at other points;
//   - ReplayOfFlushedRecordsChangesNothing: records the target already holds
//     written again, flushed at other points: the table must not change, neither
//     when the replay ends where the flushed records end nor when it runs past them.
//     Comparing _pos keeps an older record from overwriting a newer row, but not from
//     bringing back a row a hard delete removed: a destination skips the records at
//     or before the position it committed with its data;
//   - SmallFlushesKeepUnchangedValues: a flush every few records, so that an update
//     leaving a column unchanged lands in a later flush than the row's insert and
//     must keep the target's value, not write NULL; the destination is reopened
//     halfway;
//   - CloseLeavesNoGoroutine.
//
// A difference is reported by key and column, the first few only.
//
// Each check is also available as a value (SourceChecks, DestinationChecks,
// ReplicaChecks) that returns an error instead of failing a test, so the suite's own
// tests can show that a broken connector fails it. The package imports no test
// environment: drivers bring their servers.
package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Bounds of the suite. They are liveness bounds (a source that ignores its context
// hangs for ever; one that is slow still passes), never performance assertions.
const (
	// ReturnBound is how long Read may take to return once its context is cancelled
	// or its emit has failed.
	ReturnBound = 30 * time.Second
	// CatchUpBound is how long a read may take to deliver the few dozen rows a check
	// puts on the source side, and a ModeSync Read to return after that.
	CatchUpBound = 2 * time.Minute
	// checkBound bounds one whole check.
	checkBound = 5 * time.Minute
)

// SourceDriver makes instances of the source under test.
type SourceDriver interface {
	// Setup prepares a new connector that has read nothing yet: its own tables (or
	// files, or streams), replication slot, offsets state and name, so that no two
	// checks see each other's rows. Whatever it creates is released through
	// tb.Cleanup. Every check begins with a Setup of its own.
	Setup(ctx context.Context, tb testing.TB) (SourceFixture, error)
}

// SourceFixture is one connector instance made by a SourceDriver.
type SourceFixture interface {
	// Open opens the connector's source in mode. Every Open of one fixture opens
	// the same connector (same name, slot, state), as a restarted connectd would.
	Open(ctx context.Context, mode connector.Mode) (connector.Source, error)
	// Insert commits n new rows on the source side, in one or more transactions.
	// Each row must reach a reader as exactly one record (a snapshot read before the
	// source first read anything, an insert after), and no two rows may carry the
	// same row image.
	Insert(ctx context.Context, n int) error
}

// DestinationDriver makes instances of the destination under test.
type DestinationDriver interface {
	// Setup prepares a new, empty destination (a directory, a bucket prefix, a
	// schema) that no other check writes to; it is released through tb.Cleanup.
	Setup(ctx context.Context, tb testing.TB) (DestinationFixture, error)
}

// DestinationFixture is one destination instance made by a DestinationDriver.
type DestinationFixture interface {
	// Open opens the destination. Every Open of one fixture writes to the same place,
	// as a restarted connectd would.
	Open(ctx context.Context) (connector.Destination, error)
	// ReadBack returns every record the destination's side holds, one entry per
	// stored copy, read independently of the destination's own code (with the
	// reader a user would use: DuckDB for a lake, a query for a database).
	ReadBack(ctx context.Context) ([]Stored, error)
}

// Stored is one record as the destination's side holds it.
type Stored struct {
	Pos record.Position
	Op  record.Op
}

// Check is one named check of the suite. Run returns nil when the connector keeps
// the contract the check is about, and an error saying what it broke otherwise.
type Check[D any] struct {
	Name string
	Run  func(ctx context.Context, tb testing.TB, d D) error
}

// TestSource runs every source check against d, each as a subtest of t.
func TestSource(t *testing.T, d SourceDriver) {
	t.Helper()
	runChecks(t, d, SourceChecks())
}

// TestDestination runs every destination check against d, each as a subtest of t.
func TestDestination(t *testing.T, d DestinationDriver) {
	t.Helper()
	runChecks(t, d, DestinationChecks())
}

func runChecks[D any](t *testing.T, d D, checks []Check[D]) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), checkBound)
			defer cancel()
			if err := c.Run(ctx, t, d); err != nil {
				t.Error(err)
			}
		})
	}
}
