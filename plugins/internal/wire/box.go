package wire

import (
	"unsafe"

	"github.com/connectd/connectd/record"
)

// Boxing: a record.Value is an interface, and putting an int64, a string or a
// Decimal into one normally allocates a copy of it on the heap: one allocation per
// value, which was most of the decoder's cost. The decoder instead stores the
// values of a batch in typed slabs (a few allocations per batch) and makes each
// interface point into its slab, exactly as the runtime would have pointed it at
// its own copy: an interface is a type word and a pointer to the value, and the
// value is never modified afterwards (each Decode has slabs of its own). This is
// the one place that knows the interface layout; TestBoxedValuesBehaveAsValues
// checks it against values boxed by the compiler.

// eface is the runtime's layout of an empty interface.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// The type words of the boxed kinds, read from values boxed by the compiler.
var (
	typeInt16     = typeWord(int16(0))
	typeInt32     = typeWord(int32(0))
	typeInt64     = typeWord(int64(0))
	typeUint64    = typeWord(uint64(0))
	typeFloat32   = typeWord(float32(0))
	typeFloat64   = typeWord(float64(0))
	typeDecimal   = typeWord(record.Decimal(""))
	typeString    = typeWord("")
	typeBytes     = typeWord([]byte(nil))
	typeDate      = typeWord(record.Date(0))
	typeTime      = typeWord(record.Time(0))
	typeTimestamp = typeWord(record.Timestamp(0))
	typeUUID      = typeWord(record.UUID{})
	typeJSON      = typeWord(record.JSON(nil))
)

// slab hands out stable pointers to values of one type: a full chunk is left to
// the values that point into it, never reallocated.
type slab[T any] struct{ s []T }

func (a *slab[T]) put(v T, chunk int) unsafe.Pointer {
	if len(a.s) == cap(a.s) {
		a.s = make([]T, 0, max(chunk, 64))
	}
	a.s = append(a.s, v)
	return unsafe.Pointer(&a.s[len(a.s)-1])
}

// slabs are the slabs of one Decode.
type slabs struct {
	chunk int // values per chunk: about one per record of the batch
	i64   slab[int64]
	u64   slab[uint64]
	i32   slab[int32]
	i16   slab[int16]
	f32   slab[float32]
	f64   slab[float64]
	str   slab[string]
	byts  slab[[]byte]
	uuids slab[record.UUID]
}

func box(typ, data unsafe.Pointer) record.Value {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// Every named type below shares its slab with its underlying type: the type word
// alone says what the value is.
func (s *slabs) int64(typ unsafe.Pointer, x int64) record.Value {
	return box(typ, s.i64.put(x, s.chunk))
}
func (s *slabs) uint64(x uint64) record.Value { return box(typeUint64, s.u64.put(x, s.chunk)) }
func (s *slabs) int32(typ unsafe.Pointer, x int32) record.Value {
	return box(typ, s.i32.put(x, s.chunk))
}
func (s *slabs) int16(x int16) record.Value     { return box(typeInt16, s.i16.put(x, s.chunk)) }
func (s *slabs) float32(x float32) record.Value { return box(typeFloat32, s.f32.put(x, s.chunk)) }
func (s *slabs) float64(x float64) record.Value { return box(typeFloat64, s.f64.put(x, s.chunk)) }
func (s *slabs) string(typ unsafe.Pointer, x string) record.Value {
	return box(typ, s.str.put(x, s.chunk))
}
func (s *slabs) bytes(typ unsafe.Pointer, x []byte) record.Value {
	return box(typ, s.byts.put(x, s.chunk))
}
func (s *slabs) uuid(x record.UUID) record.Value { return box(typeUUID, s.uuids.put(x, s.chunk)) }
