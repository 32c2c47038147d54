package parquet

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/connectd/connectd/record"
)

// rowBatch accumulates rows for one file as parquet.Values with their repetition and
// definition levels already set, so the writer never reflects over Go values. The
// values are kept per leaf column, which is how the encoder hands them to parquet-go
// (ColumnWriter.WriteRowValues), so they are never scattered from rows to columns.
// Byte values point into the records (strings, which are immutable, without
// copying) or into the arena (everything else, including []byte values, which the
// caller may reuse once Write returns); both stay valid until the encoder has
// written the batch, which copies them.
type rowBatch struct {
	cols  [][]parquet.Value // per leaf column
	marks []int             // column lengths before the record being appended
	rows  int
	arena arena
	bytes int64 // rough size of the values written

	// warn is told when a value is replaced by null (NaN in a DECIMAL column);
	// schema is the schema of the record being appended.
	warn   warnFunc
	schema *record.Schema
}

// batchRows is how many rows are assembled before they go to the file's encoder:
// enough to amortise the hand-over and parquet-go's per-call work, few enough that
// the values are still in cache when the encoder reads them and that the batches
// in flight stay small.
const batchRows = 256

// batchBytes bounds a batch's values the same way, so that large values make small
// batches: the encoder's queue holds encQueue of them.
const batchBytes = 4 << 20

func newRowBatch(leaves int, warn warnFunc) *rowBatch {
	// The columns grow on demand: a file of a table that gets a row now and then
	// keeps small buffers.
	return &rowBatch{cols: make([][]parquet.Value, leaves), marks: make([]int, leaves), warn: warn}
}

func (b *rowBatch) len() int { return b.rows }

func (b *rowBatch) reset() {
	for i := range b.cols {
		clear(b.cols[i]) // drop references to record memory
		b.cols[i] = b.cols[i][:0]
	}
	b.rows = 0
	b.bytes = 0
	b.arena.reset()
}

// put appends one value to a leaf column.
func (b *rowBatch) put(leaf int, v parquet.Value) {
	b.cols[leaf] = append(b.cols[leaf], v)
}

// opBytes holds the _op strings so that no row allocates one; nil for invalid ops.
var opBytes = func() (t [256][]byte) {
	for _, op := range []record.Op{record.OpRead, record.OpCreate, record.OpUpdate, record.OpDelete, record.OpTruncate} {
		t[op] = []byte{byte(op)}
	}
	return t
}()

// warnFunc is called when a value is replaced by null (NaN in a DECIMAL column).
type warnFunc func(s *record.Schema, column string, value string)

// appendRecord adds one record as a row. On error the batch is left as it was.
func (b *rowBatch) appendRecord(fs *fileSchema, r *record.Record) error {
	for i := range b.cols {
		b.marks[i] = len(b.cols[i])
	}
	b.schema = r.Schema
	if err := b.appendRecordValues(fs, r); err != nil {
		for i, m := range b.marks {
			clear(b.cols[i][m:])
			b.cols[i] = b.cols[i][:m]
		}
		return err
	}
	b.rows++
	return nil
}

func (b *rowBatch) appendRecordValues(fs *fileSchema, r *record.Record) error {
	op := opBytes[r.Op]
	if op == nil {
		return fmt.Errorf("invalid op %q", r.Op)
	}
	row := r.Row()
	if r.Op == record.OpTruncate {
		row = nil // a truncate has every column null whatever the source sent
	}
	if row != nil && len(row) != len(fs.columns) {
		return fmt.Errorf("row has %d values, schema has %d columns", len(row), len(fs.columns))
	}
	for i := range fs.columns {
		c := &fs.columns[i]
		var v record.Value
		if row != nil {
			v = row[i]
		}
		if err := b.appendColumn(c, v); err != nil {
			return fmt.Errorf("column %q: %w", c.name, err)
		}
	}
	leaf := len(fs.columns)
	b.put(leaf, parquet.ByteArrayValue(op).Level(0, 0, leaf))
	b.put(leaf+1, parquet.ByteArrayValue(b.hexPos(r.Pos)).Level(0, 0, leaf+1))
	b.put(leaf+2, parquet.Int64Value(r.CommitTS.UnixMicro()).Level(0, 0, leaf+2))
	if r.TxID == "" {
		b.put(leaf+3, parquet.NullValue().Level(0, 0, leaf+3))
	} else {
		b.put(leaf+3, parquet.ByteArrayValue(stringBytes(r.TxID)).Level(0, 1, leaf+3))
	}
	if len(r.Unchanged) == 0 {
		b.put(leaf+4, parquet.NullValue().Level(0, 0, leaf+4))
	} else {
		for j, name := range r.Unchanged {
			rep := 1
			if j == 0 {
				rep = 0
			}
			b.put(leaf+4, parquet.ByteArrayValue(stringBytes(name)).Level(rep, 2, leaf+4))
		}
	}
	b.bytes += int64(len(r.Pos))*2 + 24
	return nil
}

func (b *rowBatch) hexPos(p record.Position) []byte {
	dst := b.arena.alloc(hex.EncodedLen(len(p)))
	hex.Encode(dst, p)
	return dst
}

// appendColumn adds the values of one table column. Levels follow the schema of
// buildSchema: the column itself is optional (definition +1), and each list level
// adds a repeated group (repetition +1, definition +1) and an optional element
// (definition +1).
func (b *rowBatch) appendColumn(c *colInfo, v record.Value) error {
	if v == nil {
		b.put(c.leaf, parquet.NullValue().Level(0, 0, c.leaf))
		return nil
	}
	if c.depth == 0 {
		pv, null, err := b.scalar(c, c.elem, v)
		if err != nil {
			return err
		}
		if null {
			b.put(c.leaf, parquet.NullValue().Level(0, 0, c.leaf))
		} else {
			b.put(c.leaf, pv.Level(0, 1, c.leaf))
		}
		return nil
	}
	list, ok := v.([]record.Value)
	if !ok {
		return fmt.Errorf("list value has Go type %T, want []record.Value", v)
	}
	return b.appendList(c, list, 0, 1, 1)
}

// appendList writes a non-null list at nesting level (1-based). rep is the
// repetition level of its first value; def the definition level of "list present".
func (b *rowBatch) appendList(c *colInfo, list []record.Value, rep, def, level int) error {
	if len(list) == 0 {
		b.put(c.leaf, parquet.NullValue().Level(rep, def, c.leaf))
		return nil
	}
	for j, e := range list {
		r := level
		if j == 0 {
			r = rep
		}
		// def+1: the repeated entry exists; def+2: the element is not null.
		if e == nil {
			b.put(c.leaf, parquet.NullValue().Level(r, def+1, c.leaf))
			continue
		}
		if level < c.depth {
			inner, ok := e.([]record.Value)
			if !ok {
				return fmt.Errorf("list element has Go type %T, want []record.Value", e)
			}
			if err := b.appendList(c, inner, r, def+2, level+1); err != nil {
				return err
			}
			continue
		}
		pv, null, err := b.scalar(c, c.elem, e)
		if err != nil {
			return err
		}
		if null {
			b.put(c.leaf, parquet.NullValue().Level(r, def+1, c.leaf))
		} else {
			b.put(c.leaf, pv.Level(r, def+2, c.leaf))
		}
	}
	return nil
}

// scalar converts one non-null value of type t. null reports a value that must be
// written as null (a NaN or infinity in a DECIMAL column), after warn was called.
func (b *rowBatch) scalar(c *colInfo, t *record.Type, v record.Value) (pv parquet.Value, null bool, err error) {
	switch t.Kind {
	case record.KindBool:
		if x, ok := v.(bool); ok {
			b.bytes++
			return parquet.BooleanValue(x), false, nil
		}
	case record.KindInt16:
		if x, ok := v.(int16); ok {
			b.bytes += 4
			return parquet.Int32Value(int32(x)), false, nil
		}
	case record.KindInt32:
		if x, ok := v.(int32); ok {
			b.bytes += 4
			return parquet.Int32Value(x), false, nil
		}
	case record.KindInt64:
		if x, ok := v.(int64); ok {
			b.bytes += 8
			return parquet.Int64Value(x), false, nil
		}
	case record.KindUint64:
		if x, ok := v.(uint64); ok {
			dst := b.arena.alloc(c.flba)
			clear(dst[:c.flba-8])
			binary.BigEndian.PutUint64(dst[c.flba-8:], x)
			b.bytes += int64(c.flba)
			return parquet.FixedLenByteArrayValue(dst), false, nil
		}
	case record.KindFloat32:
		if x, ok := v.(float32); ok {
			b.bytes += 4
			return parquet.FloatValue(x), false, nil
		}
	case record.KindFloat64:
		if x, ok := v.(float64); ok {
			b.bytes += 8
			return parquet.DoubleValue(x), false, nil
		}
	case record.KindDecimal:
		x, ok := v.(record.Decimal)
		if !ok {
			break
		}
		hi, lo, err := unscaled(string(x), t.Precision, t.Scale)
		if errors.Is(err, errDecimalSpecial) {
			if b.warn != nil {
				b.warn(b.schema, c.name, string(x))
			}
			return parquet.Value{}, true, nil
		}
		if err != nil {
			return parquet.Value{}, false, err
		}
		switch {
		case t.Precision <= 9:
			b.bytes += 4
			return parquet.Int32Value(int32(lo)), false, nil
		case t.Precision <= 18:
			b.bytes += 8
			return parquet.Int64Value(int64(lo)), false, nil
		}
		dst := b.arena.alloc(c.flba)
		putBigEndian(dst, c.flba, hi, lo)
		b.bytes += int64(c.flba)
		return parquet.FixedLenByteArrayValue(dst), false, nil
	case record.KindDecimalText:
		if x, ok := v.(record.Decimal); ok {
			b.bytes += int64(len(x)) + 4
			return parquet.ByteArrayValue(stringBytes(string(x))), false, nil
		}
	case record.KindString:
		if x, ok := v.(string); ok {
			b.bytes += int64(len(x)) + 4
			return parquet.ByteArrayValue(stringBytes(x)), false, nil
		}
	case record.KindBytes:
		if x, ok := v.([]byte); ok {
			b.bytes += int64(len(x)) + 4
			return parquet.ByteArrayValue(b.arena.copy(x)), false, nil
		}
	case record.KindDate:
		if x, ok := v.(record.Date); ok {
			b.bytes += 4
			if x == math.MinInt32 {
				x = duckDateNegInfinity
			}
			return parquet.Int32Value(int32(x)), false, nil
		}
	case record.KindTime:
		if x, ok := v.(record.Time); ok {
			b.bytes += 8
			return parquet.Int64Value(int64(x)), false, nil
		}
	case record.KindTimestamp, record.KindTimestampTZ:
		if x, ok := v.(record.Timestamp); ok {
			b.bytes += 8
			if x == record.TimestampNegInfinity {
				// DuckDB's -infinity is -(2^63-1): it reads -2^63 as an out-of-range
				// date that fails every cast. +infinity is 2^63-1 for both.
				x = duckNegInfinity
			}
			return parquet.Int64Value(int64(x)), false, nil
		}
	case record.KindUUID:
		if x, ok := v.(record.UUID); ok {
			dst := b.arena.alloc(16)
			copy(dst, x[:])
			b.bytes += 16
			return parquet.FixedLenByteArrayValue(dst), false, nil
		}
	case record.KindJSON:
		if x, ok := v.(record.JSON); ok {
			b.bytes += int64(len(x)) + 4
			return parquet.ByteArrayValue(b.arena.copy(x)), false, nil
		}
	default:
		return parquet.Value{}, false, fmt.Errorf("no Parquet mapping for %s", t)
	}
	return parquet.Value{}, false, fmt.Errorf("%s value has Go type %T", t, v)
}

// duckDateNegInfinity is how a -infinity date (the int32 minimum) is written: DuckDB
// reads -(2^31-1) days as -infinity and the minimum itself as a finite date.
const duckDateNegInfinity = -math.MaxInt32

// duckNegInfinity is how -infinity timestamps are written (see README).
const duckNegInfinity = record.TimestampNegInfinity + 1

// stringBytes views a string's bytes without copying. The parquet writer only reads
// them (it copies values into its column buffers), so the string stays immutable.
func stringBytes(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// arena hands out byte slices that stay valid until reset. It grows by adding
// chunks, never by moving one, because earlier slices still point into them.
type arena struct {
	chunks [][]byte
	cur    int
}

const arenaChunk = 64 << 10

func (a *arena) alloc(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, n)
	}
	for {
		if a.cur == len(a.chunks) {
			a.chunks = append(a.chunks, make([]byte, 0, arenaChunk))
		}
		c := a.chunks[a.cur]
		if len(c)+n <= cap(c) {
			a.chunks[a.cur] = c[:len(c)+n]
			return c[len(c) : len(c)+n : len(c)+n]
		}
		a.cur++
	}
}

// copy returns a copy of p that lives until reset.
func (a *arena) copy(p []byte) []byte {
	dst := a.alloc(len(p))
	copy(dst, p)
	return dst
}

func (a *arena) reset() {
	for i := range a.chunks[:min(a.cur+1, len(a.chunks))] {
		a.chunks[i] = a.chunks[i][:0]
	}
	a.cur = 0
}
