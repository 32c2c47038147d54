package connector

import (
	"context"
	"crypto/md5"
	"encoding/binary"

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

// Digester is implemented by snapshots whose database can hash a table's rows itself,
// so that verify compares per-bucket digests without moving the rows, and reads rows
// only from the buckets whose digests differ (docs/design.md, "Verify").
//
// The digest text of a row is its columns' fields joined by ',' in schema order, a
// NULL column being the field "N"; the key text is the key columns' fields joined the
// same way, in schema order. A field is the text DigestForm.AppendValue renders and
// the database renders alike: either free of ',' or its text's length in bytes, ':'
// and the text (so it parses unambiguously), and never "N" or "?". The key
// hash is the first 8 bytes of the key text's MD5, big-endian: its top Bits bits are
// the bucket, and its low 32 bits decide the sample (a key is sampled when they are
// below SampleBelow). A row's digest is the first 8 bytes of its text's MD5,
// big-endian; a bucket sums its rows' digests mod 2^64. DigestKey and DigestRow
// compute both in Go.
type Digester interface {
	// DigestForm returns how table's values are rendered into fields, or an error
	// saying why the table has none (a column type the form cannot render), in which
	// case verify moves the rows instead.
	DigestForm(table *record.Schema) (DigestForm, error)
	// Digest calls fn once for each non-empty bucket of table's sampled rows.
	Digest(ctx context.Context, table *record.Schema, q DigestQuery, fn func(DigestBucket) error) error
	// ScanBuckets is Scan restricted to the sampled rows whose key is in q.Buckets.
	ScanBuckets(ctx context.Context, table *record.Schema, q DigestQuery, fn func(row []record.Value) error) error
}

// DigestQuery selects the buckets and the sample of a digest read.
type DigestQuery struct {
	Bits        int    // 1..16: 2^Bits buckets
	SampleBelow uint32 // 0: every key
	Buckets     []uint32
}

// DigestBucket is one bucket's row count and the sum of its rows' digests.
type DigestBucket struct {
	Bucket uint32
	Rows   int64
	Sum    uint64
}

// DigestForm renders a table's values as its database does in its digest query.
type DigestForm interface {
	// AppendValue appends the field of column i's non-NULL value v.
	AppendValue(dst []byte, i int, v record.Value) []byte
}

// AppendDigestRow appends row's digest text; with key set, only the key columns'.
func AppendDigestRow(dst []byte, f DigestForm, s *record.Schema, row []record.Value, key bool) []byte {
	first := true
	for i, c := range s.Columns {
		if key && !c.Key {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		if row[i] == nil {
			dst = append(dst, 'N')
			continue
		}
		dst = f.AppendValue(dst, i, row[i])
	}
	return dst
}

// DigestKey is the key hash of a key text.
func DigestKey(text []byte) uint64 {
	sum := md5.Sum(text)
	return binary.BigEndian.Uint64(sum[:8])
}

// DigestRow is the digest of a row text.
func DigestRow(text []byte) uint64 {
	sum := md5.Sum(text)
	return binary.BigEndian.Uint64(sum[:8])
}

// Sampled reports whether a key hash is in the sample of q.
func (q DigestQuery) Sampled(h uint64) bool {
	return q.SampleBelow == 0 || uint32(h) < q.SampleBelow
}

// BucketOf is the bucket of a key hash.
func (q DigestQuery) BucketOf(h uint64) uint32 {
	return uint32(h >> (64 - q.Bits))
}
