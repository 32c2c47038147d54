package warehouse

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/connectd/connectd/record"
)

// table is one target table: its columns as the next flush leaves them, and the
// records staged for it since the last flush.
type table struct {
	target Target
	source string   // the source table it is loaded from (two may not share a target)
	cols   []Column // nil until read from the target (or planned)
	ddl    []string // statements the next flush runs before loading

	rows    []*row
	index   map[string]int // merge: the row of each key
	truncAt *row           // merge: the last truncate staged, whose rows it removed
	keep    bool           // a staged row keeps some target value
	partial bool           // a staged row lacks values the source did not send
	deletes bool           // a staged row is a delete
	updates bool           // a staged row is an update
	moved   bool           // a staged row takes unsent values from another key's target row
	// lastDelete is the delete staged by the table's last record, if it was one: a
	// create right after it with unsent values is the second half of a key change.
	lastDelete *deleted
	keyBuf     []byte
	known      []bool // stage's scratch
	sent       []bool // stage's scratch
}

// scratch resets *buf to one false per column, with true at the columns of fixed.
func (t *table) scratch(buf *[]bool, fixed []int) []bool {
	s := (*buf)[:0]
	for range t.cols {
		s = append(s, false)
	}
	for _, i := range fixed {
		s[i] = true
	}
	*buf = s
	return s
}

// row is one staged row: a record, or in merge mode the records of one key folded
// into the last of them.
type row struct {
	op        record.Op
	pos       record.Position
	ts        time.Time
	txid      string
	vals      []record.Value // aligned with table.cols
	keep      []bool         // merge: the target keeps its value of the column (nil: none)
	partial   bool           // merge: some kept column is a value the source did not send
	unchanged []string       // append: the record's unchanged list
	// from is, for the new row of a key change, the delete of the old key, whose
	// target row holds the values the source did not send (nil otherwise).
	from *row
}

// deleted is a staged delete and the row it replaced in the batch, if any.
type deleted struct {
	del, prev *row
}

// binding maps the columns of one source schema onto its table.
type binding struct {
	t   *table
	idx []int // index in t.cols of each source column
	key []int // index in t.cols of each key column, in source order
	// unchanged finds the column of a name in a record's unchanged list.
	unchanged map[string]int
	// fixed are the columns no record fills: the metadata, and the target's own
	// columns of types connectd does not map.
	fixed []int
}

func (t *table) reset() {
	t.rows, t.index, t.truncAt = nil, nil, nil
	t.keep, t.partial, t.deletes, t.updates, t.moved = false, false, false, false, false
	t.lastDelete = nil
}

// stage adds one record; it returns the approximate bytes it holds.
func (t *table) stage(b *binding, r *record.Record) int64 {
	img := r.Row()
	vals := make([]record.Value, len(t.cols))
	size := int64(48 + 16*len(vals))
	for i, v := range img {
		vals[b.idx[i]] = v
		size += int64(record.ValueBytes(v))
	}
	if t.target.Mode == Append {
		t.rows = append(t.rows, &row{op: r.Op, pos: r.Pos, ts: r.CommitTS, txid: r.TxID, vals: vals, unchanged: r.Unchanged})
		return size
	}
	if r.Op == record.OpTruncate {
		t.lastDelete = nil
		if !t.target.SoftDelete {
			// What the truncate removes need not be loaded: the flush deletes the
			// target's rows before the ones staged after it.
			t.reset()
			t.truncAt = &row{op: r.Op, pos: r.Pos, ts: r.CommitTS}
			return size
		}
		// Soft deletes keep a deleted row as the truncate found it: the rows staged
		// before it become rows deleted by it (deletes stay as they were), and the
		// first truncate of the flush marks the target's rows, after the staged rows
		// were applied, so that each row is marked by the first truncate after it.
		for _, w := range t.rows {
			if w.op != record.OpDelete {
				w.op, w.pos, w.ts = record.OpDelete, r.Pos, r.CommitTS
				t.deletes = true
			}
		}
		if t.truncAt == nil {
			t.truncAt = &row{op: r.Op, pos: r.Pos, ts: r.CommitTS}
		}
		return size
	}
	w := &row{op: r.Op, pos: r.Pos, ts: r.CommitTS, vals: vals}
	move := t.lastDelete
	t.lastDelete = nil
	// The target keeps what the record does not carry: columns its schema lacks (added
	// on the target later, or dropped on the source), unchanged values the source did
	// not send, and for a delete whatever its old image leaves out.
	known := t.scratch(&t.known, b.fixed)
	for i := range img {
		known[b.idx[i]] = r.Op != record.OpDelete || img[i] != nil
	}
	for _, k := range b.key {
		known[k] = true
	}
	sent := t.scratch(&t.sent, nil) // not an unchanged value the source left out
	for i := range sent {
		sent[i] = true
	}
	for _, name := range r.Unchanged {
		if i, ok := b.unchanged[name]; ok {
			known[i], sent[i] = false, false
		}
	}
	t.keyBuf = t.keyBuf[:0]
	for _, k := range b.key {
		t.keyBuf = appendKey(t.keyBuf, vals[k])
	}
	if t.index == nil {
		t.index = map[string]int{}
	}
	slot, seen := t.index[string(t.keyBuf)]
	if move != nil && r.Op == record.OpCreate && len(r.Unchanged) > 0 {
		// A key change: PostgreSQL leaves the unchanged TOAST values out of the new
		// key's row; the old key's row has them, staged in this batch or in the target.
		for i := range sent {
			if sent[i] {
				continue
			}
			switch p := move.prev; {
			case p != nil && p.op != record.OpDelete && (p.keep == nil || !p.keep[i]):
				vals[i], known[i], sent[i] = p.vals[i], true, true
			case p != nil && p.from != nil:
				w.from = p.from // a key changed twice: the first old key's row has them
			default:
				w.from = move.del
			}
		}
	}
	if seen && r.Op != record.OpCreate && r.Op != record.OpRead {
		// An earlier record of the key in this batch knows what this one leaves out.
		prev := t.rows[slot]
		for i := range known {
			if !known[i] && (prev.keep == nil || !prev.keep[i]) {
				vals[i], known[i] = prev.vals[i], true
			}
		}
		// What the earlier record kept, a key change's new row kept from the old key's row.
		w.from = prev.from
	}
	for i := range known {
		if known[i] {
			continue
		}
		if w.keep == nil {
			w.keep = make([]bool, len(t.cols))
		}
		w.keep[i] = true
		if !sent[i] && r.Op != record.OpDelete {
			w.partial = true
		}
	}
	t.keep = t.keep || w.keep != nil
	t.partial = t.partial || w.partial
	t.deletes = t.deletes || r.Op == record.OpDelete
	t.updates = t.updates || r.Op == record.OpUpdate
	t.moved = t.moved || w.from != nil
	if r.Op == record.OpDelete {
		t.lastDelete = &deleted{del: w}
		if seen {
			t.lastDelete.prev = t.rows[slot]
		}
	}
	if seen {
		t.rows[slot] = w
	} else {
		t.index[string(t.keyBuf)] = len(t.rows)
		t.rows = append(t.rows, w)
	}
	return size
}

// appendKey appends a value's key form: equal values, whatever integer width carries
// them, give equal bytes.
func appendKey(dst []byte, v record.Value) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, 0)
	case bool:
		if x {
			return append(dst, 1, 1)
		}
		return append(dst, 1, 0)
	case int16:
		return binary.BigEndian.AppendUint64(append(dst, 2), uint64(int64(x)))
	case int32:
		return binary.BigEndian.AppendUint64(append(dst, 2), uint64(int64(x)))
	case int64:
		return binary.BigEndian.AppendUint64(append(dst, 2), uint64(x))
	case uint64:
		return binary.BigEndian.AppendUint64(append(dst, 3), x)
	case float32:
		return binary.BigEndian.AppendUint64(append(dst, 4), math.Float64bits(float64(x)))
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, 4), math.Float64bits(x))
	case record.Date:
		return binary.BigEndian.AppendUint64(append(dst, 5), uint64(x))
	case record.Time:
		return binary.BigEndian.AppendUint64(append(dst, 6), uint64(x))
	case record.Timestamp:
		return binary.BigEndian.AppendUint64(append(dst, 7), uint64(x))
	case record.UUID:
		return append(append(dst, 8), x[:]...)
	case string:
		return appendBytes(append(dst, 9), x)
	case record.Decimal:
		return appendBytes(append(dst, 10), string(x))
	case []byte:
		return appendBytes(append(dst, 11), string(x))
	case record.JSON:
		return appendBytes(append(dst, 12), string(x))
	}
	return appendBytes(append(dst, 13), fmt.Sprint(v))
}

func appendBytes(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}
