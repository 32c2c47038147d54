package verify

import (
	"bytes"
	"encoding/binary"

	"github.com/cespare/xxhash/v2"

	"github.com/connectd/connectd/record"
)

// The row form: per column a marker (NULL, a value, unknown), and for a value its
// canonical form's length and bytes, so that concatenations cannot collide. A payload
// is the key's row form over the key columns, length-prefixed, then the row form over
// every column. A table without a key is compared as a multiset of whole rows: its key
// is the row form of every column and its row part is empty.
type encoder struct {
	types   []record.Type
	keyCols []int
	keyless bool
	// field renders a non-NULL value: its canonical form, or the source's digest
	// field in the digest pass (digest.go).
	field func(dst []byte, i int, v record.Value) []byte
	flags []bool // unchanged columns of the row being encoded
	kbuf  []byte
	vbuf  []byte
}

func newEncoder(s *record.Schema) *encoder {
	e := &encoder{types: make([]record.Type, len(s.Columns)), flags: make([]bool, len(s.Columns))}
	for i, c := range s.Columns {
		e.types[i] = c.Type
	}
	e.field = func(dst []byte, i int, v record.Value) []byte { return AppendCanonical(dst, e.types[i], v) }
	e.keyCols = s.KeyIndexes()
	if len(e.keyCols) == 0 {
		e.keyless = true
		for i := range s.Columns {
			e.keyCols = append(e.keyCols, i)
		}
	}
	return e
}

func (e *encoder) appendColumn(dst []byte, i int, v record.Value) []byte {
	if e.flags[i] {
		return append(dst, markUnknown)
	}
	if v == nil {
		return append(dst, markNull)
	}
	e.vbuf = e.field(e.vbuf[:0], i, v)
	dst = append(dst, markValue)
	dst = binary.AppendUvarint(dst, uint64(len(e.vbuf)))
	return append(dst, e.vbuf...)
}

// appendPayload appends row's payload; unchanged lists the columns the destination
// record did not carry.
func (e *encoder) appendPayload(dst []byte, row []record.Value, unchanged []int) []byte {
	for _, i := range unchanged {
		if i >= 0 && i < len(e.flags) {
			e.flags[i] = true
		}
	}
	e.kbuf = e.appendKey(e.kbuf[:0], row)
	dst = binary.AppendUvarint(dst, uint64(len(e.kbuf)))
	dst = append(dst, e.kbuf...)
	if !e.keyless {
		for i := range e.types {
			dst = e.appendColumn(dst, i, value(row, i))
		}
	}
	for _, i := range unchanged {
		if i >= 0 && i < len(e.flags) {
			e.flags[i] = false
		}
	}
	return dst
}

func value(row []record.Value, i int) record.Value {
	if i < len(row) {
		return row[i]
	}
	return nil
}

// appendKey appends the key columns' row form of row.
func (e *encoder) appendKey(dst []byte, row []record.Value) []byte {
	for _, i := range e.keyCols {
		dst = e.appendColumn(dst, i, value(row, i))
	}
	return dst
}

// rowKeyHash is keyHash of the payload row would have, computed from the key columns
// alone, so that a row left out of a sample is never encoded whole; false for a
// table without a key, whose key is the whole row.
func (e *encoder) rowKeyHash(row []record.Value) (uint64, bool) {
	if e.keyless {
		return 0, false
	}
	e.kbuf = e.appendKey(e.kbuf[:0], row)
	return xxhash.Sum64(e.kbuf), true
}

// keyHash chooses a payload's range and whether it is sampled: a function of the key's
// canonical form only, so both sides agree without sorting in any collation.
func (e *encoder) keyHash(payload []byte) uint64 {
	return xxhash.Sum64(payloadKey(payload))
}

func (e *encoder) joinPayload(dst, key, row []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, row...)
}

// rowLen is the length of the row form at the start of b.
func (e *encoder) rowLen(b []byte) int {
	if e.keyless {
		return 0
	}
	n := 0
	for range e.types {
		col, _ := nextColumn(b[n:])
		n += len(col)
	}
	return n
}

// nextColumn splits the first column (marker included) off a row form.
func nextColumn(b []byte) (col, rest []byte) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != markValue {
		return b[:1], b[1:]
	}
	l, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < l {
		return b, nil
	}
	n := 1 + k + int(l)
	return b[:n], b[n:]
}

func hasUnknown(row []byte) bool {
	for len(row) > 0 {
		var col []byte
		col, row = nextColumn(row)
		if col[0] == markUnknown {
			return true
		}
	}
	return false
}

// resolve gives each unknown column of row the value it has in prev (the key's
// earlier state), when there is one; row is returned as is when nothing is unknown.
func (e *encoder) resolve(row, prev []byte) []byte {
	if !hasUnknown(row) {
		return row
	}
	out := make([]byte, 0, len(row)+len(prev))
	for len(row) > 0 {
		var col, pcol []byte
		col, row = nextColumn(row)
		pcol, prev = nextColumn(prev)
		if col[0] == markUnknown && pcol != nil {
			col = pcol
		}
		out = append(out, col...)
	}
	return out
}

// diffColumns compares two row forms column by column: the first differing columns
// (at most maxColDiffs), and every column the destination does not know.
func (e *encoder) diffColumns(src, dst []byte, names func(int) string) (differs []ColumnDiff, ndiff int, unknown []ColumnDiff) {
	for i := 0; len(src) > 0 || len(dst) > 0; i++ {
		var s, d []byte
		s, src = nextColumn(src)
		d, dst = nextColumn(dst)
		if bytes.Equal(s, d) || i >= len(e.types) {
			continue
		}
		unk := len(d) > 0 && d[0] == markUnknown
		if !unk {
			ndiff++
		}
		if unk || len(differs) < maxColDiffs {
			cd := ColumnDiff{Column: names(i), Source: renderColumn(e.types[i], s), Destination: renderColumn(e.types[i], d)}
			if unk {
				unknown = append(unknown, cd)
			} else {
				differs = append(differs, cd)
			}
		}
	}
	return differs, ndiff, unknown
}

// renderColumn renders one column of a row form.
func renderColumn(t record.Type, col []byte) string {
	switch {
	case len(col) == 0 || col[0] == markNull:
		return "NULL"
	case col[0] == markUnknown:
		return "unknown (unchanged, no earlier value)"
	}
	l, k := binary.Uvarint(col[1:])
	return renderCanonical(t, col[1+k:1+k+int(l)])
}
