// Package record defines the change envelope that every source produces and every
// destination consumes (docs/design.md, "Envelope"). It does no I/O.
package record

import (
	"bytes"
	"encoding/hex"
	"time"
)

// Op is the kind of change a record carries.
type Op byte

// The operations (docs/design.md, "Envelope").
const (
	OpRead     Op = 'r' // a row read by a snapshot
	OpCreate   Op = 'c' // insert
	OpUpdate   Op = 'u' // update
	OpDelete   Op = 'd' // delete
	OpTruncate Op = 't' // truncate of the whole table
	// OpCheckpoint carries only a position: the source asks the runtime to commit it
	// although no data goes with it (an empty snapshot that is complete, say). The
	// runtime commits it like any record and never hands it to a destination.
	OpCheckpoint Op = '#'
)

// String returns the one-letter form used in the lake's _op column.
func (o Op) String() string { return string(rune(o)) }

// Valid reports whether o is one of the defined operations.
func (o Op) Valid() bool {
	switch o {
	case OpRead, OpCreate, OpUpdate, OpDelete, OpTruncate:
		return true
	}
	return false
}

// Position is an opaque source position. Comparing two positions of one connector
// as byte strings gives their source order; a record replayed after a restart gets
// the same position again.
type Position []byte

// Compare orders two positions: -1, 0 or +1.
func (p Position) Compare(q Position) int { return bytes.Compare(p, q) }

// String is the lowercase hex form, which sorts like the bytes when positions of a
// connector have a common length prefix scheme; it is what the lake's _pos column holds.
func (p Position) String() string { return hex.EncodeToString(p) }

// ParsePosition reverses Position.String.
func ParsePosition(s string) (Position, error) {
	b, err := hex.DecodeString(s)
	return Position(b), err
}

// Record is one change. Before and After are aligned with Schema.Columns: entry i is
// the value of column i (nil means SQL NULL). A nil slice means the image is absent.
type Record struct {
	Op        Op
	Schema    *Schema // shared by every record of the same table and schema version
	Before    []Value // old image (u where the source has it, d always with at least the key)
	After     []Value // new image (r, c, u); nil for d and t
	Unchanged []string
	Pos       Position
	CommitTS  time.Time // UTC, microsecond precision
	TxID      string    // empty when the source has none
}

// Namespace is the Postgres schema or MySQL database of the record's table.
func (r *Record) Namespace() string { return r.Schema.Namespace }

// Table is the record's table name.
func (r *Record) Table() string { return r.Schema.Table }

// Row returns the image a destination writes: After, or Before for deletes.
func (r *Record) Row() []Value {
	if r.Op == OpDelete {
		return r.Before
	}
	return r.After
}

// Bytes approximates the memory the record's values hold: the bytes of strings,
// byte slices and the like, a word for every other value. It is what bounds the
// records queued between a source and its destination, so it is cheap rather than
// exact.
func (r *Record) Bytes() int {
	return 64 + len(r.Pos) + valuesBytes(r.Before) + valuesBytes(r.After)
}

func valuesBytes(vs []Value) int {
	n := 0
	for _, v := range vs {
		n += ValueBytes(v)
	}
	return n
}

// ValueBytes approximates the memory one value holds: its interface word pair, and
// the bytes of a string, byte slice, decimal, JSON or list.
func ValueBytes(v Value) int {
	n := 16
	switch x := v.(type) {
	case string:
		n += len(x)
	case []byte:
		n += len(x)
	case Decimal:
		n += len(x)
	case JSON:
		n += len(x)
	case []Value:
		n += 24 + valuesBytes(x)
	}
	return n
}
