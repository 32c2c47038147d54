package pgvalue

import (
	"unsafe"

	"github.com/connectd/connectd/record"
)

// Alloc hands out decoded values from blocks instead of one heap object each.
//
// Putting an int64, a string or a UUID into a record.Value (an interface) normally
// allocates a small object for it, and text needs one more for its bytes: about ten
// allocations for a typical row, which made allocation and GC the largest cost of
// decoding a snapshot. Alloc appends the value to a typed block and builds the
// interface around a pointer into that block, and copies text into a shared byte
// block. Each value stays valid for as long as anything refers to it (the block is
// an ordinary Go object kept alive by the interior pointer) and is never written
// again, so values from an Alloc are indistinguishable from heap-allocated ones.
// The price is that one live value keeps its whole block (a few KiB) alive.
//
// An Alloc is not safe for concurrent use; the zero value is ready. A nil *Alloc
// allocates every value on the heap.
type Alloc struct {
	i64   block[int64]
	i32   block[int32]
	i16   block[int16]
	f64   block[float64]
	f32   block[float32]
	str   block[string]
	dec   block[record.Decimal]
	ts    block[record.Timestamp]
	tm    block[record.Time]
	date  block[record.Date]
	uuid  block[record.UUID]
	json  block[record.JSON]
	bytes block[[]byte]
	text  []byte // the rest of the current text block
}

const (
	// blockValues is how many values one typed block holds.
	blockValues = 512
	// textBlock is the size of a text block; longer texts get their own allocation.
	textBlock = 32 << 10
)

// eface is the layout of an interface value without methods (Go's runtime.eface):
// a type word and a pointer to the value. Every type boxed here is larger than a
// pointer or not pointer-shaped, so the data word is a pointer to the value, exactly
// as the compiler's own boxing makes it.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// block is a run of values of one type that interfaces point into.
type block[T any] struct {
	buf []T
	typ unsafe.Pointer
}

func (b *block[T]) box(v T) record.Value {
	if len(b.buf) == cap(b.buf) {
		if b.typ == nil {
			var zero T
			var a any = zero
			b.typ = (*eface)(unsafe.Pointer(&a)).typ
		}
		b.buf = make([]T, 0, blockValues)
	}
	b.buf = append(b.buf, v)
	var a any
	*(*eface)(unsafe.Pointer(&a)) = eface{typ: b.typ, data: unsafe.Pointer(&b.buf[len(b.buf)-1])}
	return a
}

// copyText returns a copy of b that shares a block with other texts. Its capacity
// is its length, so appending to it never writes into a neighbour.
func (a *Alloc) copyText(b []byte) []byte {
	n := len(b)
	if n == 0 {
		return []byte{}
	}
	if n > textBlock/8 {
		return append([]byte(nil), b...)
	}
	if len(a.text) < n {
		a.text = make([]byte, textBlock)
	}
	out := a.text[:n:n]
	copy(out, b)
	a.text = a.text[n:]
	return out
}

func (a *Alloc) stringOf(b []byte) record.Value {
	if a == nil {
		return string(b)
	}
	t := a.copyText(b)
	return a.str.box(unsafe.String(unsafe.SliceData(t), len(t)))
}

func (a *Alloc) decimalOf(b []byte) record.Value {
	if a == nil {
		return record.Decimal(b)
	}
	t := a.copyText(b)
	return a.dec.box(record.Decimal(unsafe.String(unsafe.SliceData(t), len(t))))
}

func (a *Alloc) jsonOf(b []byte) record.Value {
	if a == nil {
		return record.JSON(append([]byte(nil), b...))
	}
	return a.json.box(record.JSON(a.copyText(b)))
}

func (a *Alloc) bytesOf(b []byte) record.Value {
	if a == nil {
		return b
	}
	return a.bytes.box(b)
}

func (a *Alloc) int64Of(v int64) record.Value {
	if a == nil {
		return v
	}
	return a.i64.box(v)
}

func (a *Alloc) int32Of(v int32) record.Value {
	if a == nil {
		return v
	}
	return a.i32.box(v)
}

func (a *Alloc) int16Of(v int16) record.Value {
	if a == nil {
		return v
	}
	return a.i16.box(v)
}

func (a *Alloc) float64Of(v float64) record.Value {
	if a == nil {
		return v
	}
	return a.f64.box(v)
}

func (a *Alloc) float32Of(v float32) record.Value {
	if a == nil {
		return v
	}
	return a.f32.box(v)
}

func (a *Alloc) timestampOf(v record.Timestamp) record.Value {
	if a == nil {
		return v
	}
	return a.ts.box(v)
}

func (a *Alloc) timeOf(v record.Time) record.Value {
	if a == nil {
		return v
	}
	return a.tm.box(v)
}

func (a *Alloc) dateOf(v record.Date) record.Value {
	if a == nil {
		return v
	}
	return a.date.box(v)
}

func (a *Alloc) uuidOf(v record.UUID) record.Value {
	if a == nil {
		return v
	}
	return a.uuid.box(v)
}
