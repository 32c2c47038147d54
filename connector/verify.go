package connector

import (
	"context"

	"github.com/connectd/connectd/record"
)

// The interfaces below are what `connectd verify` needs of the connectors
// (docs/design.md, "Verify"): a source kind reads its tables at one consistent point,
// a destination kind reads back what it holds. Both are optional; verify refuses a
// connector whose kinds implement neither, naming the kind.

// SnapshotOpener is implemented by source kinds that can read their tables in one
// consistent snapshot for verify.
type SnapshotOpener interface {
	// OpenSnapshot starts a consistent read of the tables the config selects. It
	// neither creates nor moves the connector's own replication state (slot,
	// publication, saved schema): a busy source and a running connector are fine.
	OpenSnapshot(ctx context.Context, p SourceParams) (Snapshot, error)
}

// Snapshot is a source's tables as they were at one point of its change stream.
type Snapshot interface {
	// Boundary is the source position (without the runtime's epoch prefix) that
	// splits the change stream at the snapshot: every change the snapshot sees has a
	// position below it, every change it does not see a position at or above it.
	Boundary() record.Position
	// DescribeBoundary renders Boundary in the source's terms (an LSN, a binlog file
	// and offset) for reports.
	DescribeBoundary() string
	// Tables returns the schemas, as of the snapshot, of the tables the config
	// selects, in a stable order.
	Tables() []*record.Schema
	// EstimateRows is the server's cheap estimate of a table's rows (planner
	// statistics); 0 when it has none. verify sizes its key ranges with it.
	EstimateRows(ctx context.Context, table *record.Schema) (int64, error)
	// Scan calls fn with every row of table in the snapshot, in no particular order,
	// each value decoded exactly as the source's snapshot decodes it for the lake
	// (record.Value of the column's kind, nil for NULL). row is reused after fn
	// returns. An error from fn ends the scan and is returned.
	Scan(ctx context.Context, table *record.Schema, fn func(row []record.Value) error) error
	// Close ends the snapshot's transaction and releases its connections.
	Close(ctx context.Context) error
}

// ReaderOpener is implemented by destination kinds that can read back what they hold
// for verify.
type ReaderOpener interface {
	OpenReader(ctx context.Context, p DestinationParams) (Reader, error)
}

// Reader reads back the records a destination holds.
type Reader interface {
	// Changes calls fn with every record the destination holds for the table named by
	// schema (namespace and table), in no particular order. c.Row is aligned with
	// schema.Columns: values are converted to each column's kind as schema has it
	// now, matched by column name; a column the stored record lacks is nil and is
	// listed in c.Missing. c and its slices are reused after fn returns. A table the
	// destination has never written yields no records and no error.
	Changes(ctx context.Context, schema *record.Schema, fn func(c *StoredChange) error) error
	// Describe names where the table's records are (a URL prefix) for reports.
	Describe(schema *record.Schema) string
	Close(ctx context.Context) error
}

// StoredChange is one record as a destination holds it.
type StoredChange struct {
	Op record.Op
	// Pos is the runtime's position (with the epoch prefix of a reset connector), as
	// the offsets store holds it.
	Pos record.Position
	Row []record.Value
	// Unchanged are indexes into Row of the columns the source did not send
	// (record.Record.Unchanged).
	Unchanged []int
	// Missing are indexes into Row of the columns the stored record does not have
	// (added to the table after it was written).
	Missing []int
	// Where says where the record is stored (a file), for reports.
	Where string
}
