// Package connector is the contract between the runtime and the connectors: the
// Source and Destination interfaces, the parameters they are opened with, and the
// Registry that cmd fills with the built-in kinds (and plugins) by type name.
// Sources and destinations import this package, never the pipeline.
package connector

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/record"
)

// Mode says how long a source reads.
type Mode int

const (
	// ModeStream reads until the context is cancelled (connectd run).
	ModeStream Mode = iota
	// ModeSync reads until everything the server had committed when Read began has been
	// delivered, then Read returns nil (connectd sync).
	ModeSync
)

// EmitFunc hands a batch of records, in source order, to the runtime. It blocks while
// the runtime's buffer is full (backpressure) and returns an error only when the
// context ends or the pipeline has failed. The runtime owns recs after the call.
type EmitFunc func(ctx context.Context, recs []record.Record) error

// Source produces change records.
type Source interface {
	// Read delivers, through emit, every record whose position is after start (nil:
	// from the beginning, snapshot included when the config asks for one), in source
	// order. In ModeStream it returns when ctx ends; in ModeSync it returns nil once
	// caught up. Records at or before start must not be emitted again.
	Read(ctx context.Context, start record.Position, emit EmitFunc) error
	// Ack tells the source that every record up to and including pos is durably stored
	// and its offset committed; only now may the source tell its server (confirm the
	// slot's flush LSN, purge a binlog, ...).
	Ack(ctx context.Context, pos record.Position) error
	// Close releases connections. It is called once, after Read has returned.
	Close(ctx context.Context) error
}

// Destination consumes change records.
type Destination interface {
	// Write accepts records in source order. They need not be durable on return.
	Write(ctx context.Context, recs []record.Record) error
	// Buffered reports what was written since the last Flush: rows and approximate bytes.
	Buffered() (rows, bytes int64)
	// Flush returns only once every record written so far is durable, then starts a
	// new batch. Replaying records after a crash must overwrite, not duplicate
	// (docs/design.md, "Exactly once").
	Flush(ctx context.Context) error
	// Close releases resources without flushing.
	Close(ctx context.Context) error
}

// ReplayVaries is implemented by sources whose records after a committed position
// may differ when they are read again (an API whose data changed between a crash and
// the restart), so that a replay does not rewrite what the interrupted flush wrote.
type ReplayVaries interface {
	ReplayVaries() bool
}

// Resumer is implemented by destinations that can clear what an interrupted flush
// left behind (docs/design.md, "Exactly once"). For a source whose replays vary, the
// runtime calls Resume once, before the first Write, with the committed position (never
// nil): whatever the destination holds beyond it was never committed, and the records
// the source replays take its place.
type Resumer interface {
	Resume(ctx context.Context, committed record.Position) error
}

// Transactional is implemented by destinations that commit each flush's position in
// the same transaction as its records (a database target keeps it in a table of its
// own), so that a crash can never leave records applied without their position
// (docs/design.md, "Targets that keep their position"). The runtime then calls FlushAt
// instead of Flush, and on start reconciles Committed with the offsets store: a later
// position in the target wins over the store's, an earlier one stops the connector.
type Transactional interface {
	// Committed returns the position the target's last flush committed for this
	// connector, nil when it holds none.
	Committed(ctx context.Context) (record.Position, error)
	// FlushAt is Flush that commits pos, at or after the last record written, with
	// the records, in one transaction.
	FlushAt(ctx context.Context, pos record.Position) error
}

// Reloadable is implemented by transactional destinations whose tables keep one row
// per key (replicas). After `connectd offsets reset` a new snapshot would upsert into
// them and leave there the rows the source deleted in the meantime, so the runtime calls
// Reload when the offsets store starts a reset epoch over a target that holds a position
// of an earlier one; an error stops the run (docs/design.md, "Targets that keep their
// position").
type Reloadable interface {
	Reload(ctx context.Context) error
}

// Resnapshotter is implemented by source kinds that can read a table again while the
// stream goes on, with the watermark method (docs/design.md, "Snapshots on request").
// RequestSnapshot checks the request against the source (the table is selected, the
// filter is valid SQL on it) and queues it in the connector's state, where the
// running process, or the next one, picks it up; it returns the request's id.
// SnapshotDone reports whether the request with that id has been read completely.
type Resnapshotter interface {
	RequestSnapshot(ctx context.Context, p SourceParams, table, where string) (id string, err error)
	SnapshotDone(ctx context.Context, p SourceParams, id string) (bool, error)
}

// DDLPlanner is implemented by destination kinds that create a table per source
// table: `connectd discover` shows the statement that would create it.
type DDLPlanner interface {
	TargetDDL(p DestinationParams, s *record.Schema) (string, error)
}

// Describer is implemented by sources whose positions have a readable form
// (connectd offsets show).
type Describer interface {
	DescribePosition(pos record.Position) string
}

// Status receives progress that the status API and metrics show. Implementations are
// safe for concurrent use; a nil-safe no-op is NopStatus.
type Status interface {
	// SetPhase is "snapshot" or "streaming".
	SetPhase(phase string)
	// SnapshotProgress reports rows read so far of a table and the estimated total.
	SnapshotProgress(table string, rows, total int64)
	// SourceLag reports how far the source is behind its server, in bytes and seconds.
	SourceLag(bytes int64, seconds float64)
	// SourcePosition reports the position of the last record read (readable form).
	SourcePosition(pos string)
	// SourceRetained reports what the source makes its server keep: retained is the
	// WAL held for the replication slot (from its restart_lsn), unconfirmed the part
	// of it past what the slot has confirmed (confirmed_flush_lsn), both in bytes.
	SourceRetained(retained, unconfirmed int64)
}

// NopStatus discards progress.
type NopStatus struct{}

func (NopStatus) SetPhase(string)                       {}
func (NopStatus) SnapshotProgress(string, int64, int64) {}
func (NopStatus) SourceLag(int64, float64)              {}
func (NopStatus) SourcePosition(string)                 {}
func (NopStatus) SourceRetained(int64, int64)           {}

// SourceParams is what a source is opened with.
type SourceParams struct {
	Name   string // the connector's name
	Config config.Source
	Mode   Mode
	Logger *slog.Logger
	Status Status
	// State keeps what the source needs besides its position; nil when the offsets
	// store offers none (a source that needs it then keeps it in memory only).
	State StateStore
}

// StateStore keeps small per-connector state a source needs besides its position (e.g. a schema history).
type StateStore interface {
	// Load returns the data saved under key, or nil when there is none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Save durably replaces the data under key.
	Save(ctx context.Context, key string, data []byte) error
}

// DestinationParams is what a destination is opened with.
type DestinationParams struct {
	Name   string
	Config config.Destination
	Logger *slog.Logger
}

// CheckResult is one line of `connectd check`.
type CheckResult struct {
	Name   string // what was checked: "postgres: wal_level"
	OK     bool
	Detail string // what was found
	Fix    string // what to do when !OK: "ALTER SYSTEM SET wal_level = logical; then restart"
}

// SourceKind is one type of source (postgres, mysql, a plugin).
type SourceKind interface {
	// ConfigSpec describes the kind's config section; the loader decodes the section
	// into the struct Spec.New returns, which Open finds in SourceParams.Config.Config.
	ConfigSpec() config.Spec
	Open(ctx context.Context, p SourceParams) (Source, error)
	Check(ctx context.Context, p SourceParams) []CheckResult
	// Discover lists the tables the source config selects, with their current schema.
	Discover(ctx context.Context, p SourceParams) ([]*record.Schema, error)
}

// DestinationKind is one type of destination.
type DestinationKind interface {
	// ConfigSpec describes the kind's config section (see SourceKind).
	ConfigSpec() config.Spec
	Open(ctx context.Context, p DestinationParams) (Destination, error)
	Check(ctx context.Context, p DestinationParams) []CheckResult
}

// SourceConfig returns the source's config struct as *T, with the defaults of its
// tags applied (a config built in Go, by a test say, gets them too). The copy is the
// caller's.
func SourceConfig[T any](p SourceParams) (*T, error) {
	return configAs[T]("source", p.Config.Type, p.Config.Config)
}

// DestinationConfig returns the destination's config struct as *T (see SourceConfig).
func DestinationConfig[T any](p DestinationParams) (*T, error) {
	return configAs[T]("destination", p.Config.Type, p.Config.Config)
}

func configAs[T any](role, typ string, v any) (*T, error) {
	c, ok := v.(*T)
	if !ok || c == nil {
		return nil, fmt.Errorf("%s type %q: the config is %T, not %T", role, typ, v, c)
	}
	out := *c
	if err := config.ApplyDefaults(&out); err != nil {
		return nil, fmt.Errorf("%s type %q: %w", role, typ, err)
	}
	return &out, nil
}
