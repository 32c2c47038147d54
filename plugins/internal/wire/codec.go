package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
)

// Encoder turns records into batches for one stream. It sends each schema once and
// refers to it by id afterwards, so it must be used for one stream only, in order.
type Encoder struct {
	ids   map[*record.Schema]uint32
	byKey map[schemaKey]uint32
	next  uint32
}

// schemaKey recognises a schema sent before under another pointer, so that a source
// that rebuilds equal schemas does not resend them with every record.
type schemaKey struct {
	ns, table, fp string
	version       int
}

// NewEncoder returns an encoder for a new stream.
func NewEncoder() *Encoder {
	return &Encoder{ids: map[*record.Schema]uint32{}, byKey: map[schemaKey]uint32{}, next: 1}
}

// Encode converts recs into one batch. It also returns an estimate of the records'
// size in bytes (what a destination reports as buffered).
func (e *Encoder) Encode(recs []record.Record) (*pb.Batch, int64, error) {
	b := &pb.Batch{Records: make([]*pb.Record, len(recs))}
	nvals := 0
	for i := range recs {
		nvals += len(recs[i].Before) + len(recs[i].After)
	}
	a := &allocator{}
	a.vals.grow(nvals)
	pbrecs := make([]pb.Record, len(recs))
	var size int64
	for i := range recs {
		r := &recs[i]
		if r.Schema == nil {
			return nil, 0, fmt.Errorf("record %d (pos %s): no schema", i, r.Pos)
		}
		id, err := e.schemaID(b, r.Schema)
		if err != nil {
			return nil, 0, err
		}
		op, ok := opToPB[r.Op]
		if !ok {
			return nil, 0, fmt.Errorf("record %d (pos %s): invalid op %q", i, r.Pos, byte(r.Op))
		}
		pr := &pbrecs[i]
		pr.Op = op
		pr.SchemaId = id
		pr.Unchanged = r.Unchanged
		pr.Pos = r.Pos
		pr.CommitTs = r.CommitTS.UnixMicro()
		pr.Txid = r.TxID
		size += 24 + int64(len(r.Pos)+len(r.TxID))
		cols := r.Schema.Columns
		if r.Before != nil {
			pr.Before, err = a.row(cols, r.Before, &size)
			if err != nil {
				return nil, 0, fmt.Errorf("record %d (pos %s) of %s: before: %w", i, r.Pos, r.Schema.QualifiedName(), err)
			}
		}
		if r.After != nil {
			pr.After, err = a.row(cols, r.After, &size)
			if err != nil {
				return nil, 0, fmt.Errorf("record %d (pos %s) of %s: after: %w", i, r.Pos, r.Schema.QualifiedName(), err)
			}
		}
		b.Records[i] = pr
	}
	return b, size, nil
}

func (e *Encoder) schemaID(b *pb.Batch, s *record.Schema) (uint32, error) {
	if id, ok := e.ids[s]; ok {
		return id, nil
	}
	k := schemaKey{ns: s.Namespace, table: s.Table, fp: s.Fingerprint(), version: s.Version}
	if id, ok := e.byKey[k]; ok {
		e.ids[s] = id
		return id, nil
	}
	ps, err := SchemaToPB(s)
	if err != nil {
		return 0, err
	}
	id := e.next
	e.next++
	ps.Id = id
	b.Schemas = append(b.Schemas, ps)
	e.ids[s] = id
	e.byKey[k] = id
	return id, nil
}

// SchemaToPB converts a schema (its id left zero).
func SchemaToPB(s *record.Schema) (*pb.Schema, error) {
	ps := &pb.Schema{Namespace: s.Namespace, Table: s.Table, Version: int32(s.Version), Columns: make([]*pb.Column, len(s.Columns))}
	for i, c := range s.Columns {
		t, err := typeToPB(c.Type)
		if err != nil {
			return nil, fmt.Errorf("schema %s: column %s: %w", s.QualifiedName(), c.Name, err)
		}
		ps.Columns[i] = &pb.Column{Name: c.Name, SourceType: c.SourceType, Type: t, Nullable: c.Nullable, Key: c.Key}
	}
	return ps, nil
}

func typeToPB(t record.Type) (*pb.Type, error) {
	if t.Kind == record.KindInvalid || t.Kind > record.KindList {
		return nil, fmt.Errorf("invalid kind %d", t.Kind)
	}
	pt := &pb.Type{Kind: pb.Kind(t.Kind), Precision: int32(t.Precision), Scale: int32(t.Scale)}
	if t.Kind == record.KindList {
		if t.Elem == nil {
			return nil, errors.New("list without element type")
		}
		e, err := typeToPB(*t.Elem)
		if err != nil {
			return nil, fmt.Errorf("list element: %w", err)
		}
		pt.Elem = e
	}
	return pt, nil
}

var opToPB = map[record.Op]pb.Op{
	record.OpRead: pb.Op_OP_READ, record.OpCreate: pb.Op_OP_CREATE, record.OpUpdate: pb.Op_OP_UPDATE,
	record.OpDelete: pb.Op_OP_DELETE, record.OpTruncate: pb.Op_OP_TRUNCATE,
}

var opFromPB = map[pb.Op]record.Op{
	pb.Op_OP_READ: record.OpRead, pb.Op_OP_CREATE: record.OpCreate, pb.Op_OP_UPDATE: record.OpUpdate,
	pb.Op_OP_DELETE: record.OpDelete, pb.Op_OP_TRUNCATE: record.OpTruncate,
}

// slab hands out pointers into chunks, so that a batch costs a few large allocations
// instead of one per value.
type slab[T any] struct{ s []T }

func (a *slab[T]) grow(n int) {
	if n > 0 {
		a.s = make([]T, n)
	}
}

func (a *slab[T]) next() *T {
	if len(a.s) == 0 {
		a.s = make([]T, 256)
	}
	p := &a.s[0]
	a.s = a.s[1:]
	return p
}

type allocator struct {
	vals   slab[pb.Value]
	rows   slab[pb.Row]
	bools  slab[pb.Value_BoolValue]
	ints   slab[pb.Value_IntValue]
	uints  slab[pb.Value_UintValue]
	f32s   slab[pb.Value_Float32Value]
	f64s   slab[pb.Value_Float64Value]
	decs   slab[pb.Value_Decimal]
	strs   slab[pb.Value_StringValue]
	byts   slab[pb.Value_BytesValue]
	dates  slab[pb.Value_Date]
	times  slab[pb.Value_Time]
	tss    slab[pb.Value_Timestamp]
	uuids  slab[pb.Value_Uuid]
	jsons  slab[pb.Value_Json]
	lists  slab[pb.Value_List]
	ptrbuf []*pb.Value
}

func (a *allocator) ptrs(n int) []*pb.Value {
	if len(a.ptrbuf) < n {
		a.ptrbuf = make([]*pb.Value, max(n, 4096))
	}
	p := a.ptrbuf[:n:n]
	a.ptrbuf = a.ptrbuf[n:]
	return p
}

func (a *allocator) row(cols []record.Column, vals []record.Value, size *int64) (*pb.Row, error) {
	if len(vals) != len(cols) {
		return nil, fmt.Errorf("%d values for %d columns", len(vals), len(cols))
	}
	out := a.ptrs(len(vals))
	for i, v := range vals {
		pv, n, err := a.value(cols[i].Type, v)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
		out[i] = pv
		*size += n
	}
	r := a.rows.next()
	r.Values = out
	return r, nil
}

// value converts one value of type t; n is its approximate size.
func (a *allocator) value(t record.Type, v record.Value) (*pb.Value, int64, error) {
	pv := a.vals.next()
	if v == nil {
		return pv, 1, nil
	}
	bad := func() (*pb.Value, int64, error) {
		return nil, 0, fmt.Errorf("%T is not a value of kind %s", v, t.Kind)
	}
	switch t.Kind {
	case record.KindBool:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		w := a.bools.next()
		w.BoolValue = x
		pv.V = w
		return pv, 1, nil
	case record.KindInt16, record.KindInt32, record.KindInt64:
		var x int64
		switch y := v.(type) {
		case int16:
			x = int64(y)
		case int32:
			x = int64(y)
		case int64:
			x = y
		default:
			return bad()
		}
		w := a.ints.next()
		w.IntValue = x
		pv.V = w
		return pv, 8, nil
	case record.KindUint64:
		x, ok := v.(uint64)
		if !ok {
			return bad()
		}
		w := a.uints.next()
		w.UintValue = x
		pv.V = w
		return pv, 8, nil
	case record.KindFloat32:
		x, ok := v.(float32)
		if !ok {
			return bad()
		}
		w := a.f32s.next()
		w.Float32Value = x
		pv.V = w
		return pv, 4, nil
	case record.KindFloat64:
		x, ok := v.(float64)
		if !ok {
			return bad()
		}
		w := a.f64s.next()
		w.Float64Value = x
		pv.V = w
		return pv, 8, nil
	case record.KindDecimal, record.KindDecimalText:
		x, ok := v.(record.Decimal)
		if !ok {
			return bad()
		}
		w := a.decs.next()
		w.Decimal = string(x)
		pv.V = w
		return pv, int64(len(x)), nil
	case record.KindString:
		x, ok := v.(string)
		if !ok {
			return bad()
		}
		w := a.strs.next()
		w.StringValue = []byte(x)
		pv.V = w
		return pv, int64(len(x)), nil
	case record.KindBytes:
		x, ok := v.([]byte)
		if !ok {
			return bad()
		}
		w := a.byts.next()
		w.BytesValue = x
		pv.V = w
		return pv, int64(len(x)), nil
	case record.KindDate:
		x, ok := v.(record.Date)
		if !ok {
			return bad()
		}
		w := a.dates.next()
		w.Date = int32(x)
		pv.V = w
		return pv, 4, nil
	case record.KindTime:
		x, ok := v.(record.Time)
		if !ok {
			return bad()
		}
		w := a.times.next()
		w.Time = int64(x)
		pv.V = w
		return pv, 8, nil
	case record.KindTimestamp, record.KindTimestampTZ:
		x, ok := v.(record.Timestamp)
		if !ok {
			return bad()
		}
		w := a.tss.next()
		w.Timestamp = int64(x)
		pv.V = w
		return pv, 8, nil
	case record.KindUUID:
		x, ok := v.(record.UUID)
		if !ok {
			return bad()
		}
		w := a.uuids.next()
		w.Uuid = append([]byte(nil), x[:]...)
		pv.V = w
		return pv, 16, nil
	case record.KindJSON:
		x, ok := v.(record.JSON)
		if !ok {
			return bad()
		}
		w := a.jsons.next()
		w.Json = x
		pv.V = w
		return pv, int64(len(x)), nil
	case record.KindList:
		x, ok := v.([]record.Value)
		if !ok {
			return bad()
		}
		if t.Elem == nil {
			return nil, 0, errors.New("list without element type")
		}
		l := &pb.List{Values: make([]*pb.Value, len(x))}
		var total int64
		for i, e := range x {
			ev, n, err := a.value(*t.Elem, e)
			if err != nil {
				return nil, 0, fmt.Errorf("element %d: %w", i, err)
			}
			l.Values[i] = ev
			total += n
		}
		w := a.lists.next()
		w.List = l
		pv.V = w
		return pv, total, nil
	}
	return nil, 0, fmt.Errorf("invalid kind %d", t.Kind)
}

// Decoder turns the batches of one stream back into records, checking everything:
// a plugin's mistakes must become errors, never panics or wrong values.
type Decoder struct {
	schemas map[uint32]*record.Schema
	defs    map[uint32]*pb.Schema
}

// NewDecoder returns a decoder for a new stream.
func NewDecoder() *Decoder {
	return &Decoder{schemas: map[uint32]*record.Schema{}, defs: map[uint32]*pb.Schema{}}
}

// Decode converts one batch. The error says which record and column was malformed.
func (d *Decoder) Decode(b *pb.Batch) ([]record.Record, error) {
	for _, ps := range b.GetSchemas() {
		if ps.GetId() == 0 {
			return nil, fmt.Errorf("schema %s.%s: id 0 is reserved", ps.GetNamespace(), ps.GetTable())
		}
		if _, ok := d.schemas[ps.GetId()]; ok {
			return nil, fmt.Errorf("schema id %d sent twice", ps.GetId())
		}
		s, err := SchemaFromPB(ps)
		if err != nil {
			return nil, err
		}
		d.schemas[ps.GetId()] = s
	}
	recs := make([]record.Record, len(b.GetRecords()))
	nvals := 0
	for _, pr := range b.GetRecords() {
		nvals += len(pr.GetBefore().GetValues()) + len(pr.GetAfter().GetValues())
	}
	vals := make([]record.Value, nvals)
	for i, pr := range b.GetRecords() {
		s, ok := d.schemas[pr.GetSchemaId()]
		if !ok {
			return nil, fmt.Errorf("record %d: unknown schema id %d", i, pr.GetSchemaId())
		}
		op, ok := opFromPB[pr.GetOp()]
		if !ok {
			return nil, fmt.Errorf("record %d: invalid op %d", i, pr.GetOp())
		}
		if len(pr.GetPos()) == 0 {
			return nil, fmt.Errorf("record %d: empty position", i)
		}
		r := &recs[i]
		r.Op = op
		r.Schema = s
		r.Unchanged = pr.GetUnchanged()
		r.Pos = record.Position(pr.GetPos())
		r.CommitTS = time.UnixMicro(pr.GetCommitTs()).UTC()
		r.TxID = pr.GetTxid()
		var err error
		if pr.Before != nil {
			n := len(pr.Before.GetValues())
			r.Before, err = decodeRow(s.Columns, pr.Before.GetValues(), vals[:n:n])
			if err != nil {
				return nil, fmt.Errorf("record %d (pos %s) of %s: before: %w", i, r.Pos, s.QualifiedName(), err)
			}
			vals = vals[n:]
		}
		if pr.After != nil {
			n := len(pr.After.GetValues())
			r.After, err = decodeRow(s.Columns, pr.After.GetValues(), vals[:n:n])
			if err != nil {
				return nil, fmt.Errorf("record %d (pos %s) of %s: after: %w", i, r.Pos, s.QualifiedName(), err)
			}
			vals = vals[n:]
		}
		switch {
		case (op == record.OpRead || op == record.OpCreate || op == record.OpUpdate) && r.After == nil:
			return nil, fmt.Errorf("record %d (pos %s): op %s without an after image", i, r.Pos, op)
		case op == record.OpDelete && r.Before == nil:
			return nil, fmt.Errorf("record %d (pos %s): delete without a before image", i, r.Pos)
		}
	}
	return recs, nil
}

// SchemaFromPB converts and checks a schema.
func SchemaFromPB(ps *pb.Schema) (*record.Schema, error) {
	name := ps.GetNamespace() + "." + ps.GetTable()
	if ps.GetTable() == "" {
		return nil, fmt.Errorf("schema %d: empty table name", ps.GetId())
	}
	cols := make([]record.Column, len(ps.GetColumns()))
	seen := make(map[string]bool, len(cols))
	for i, pc := range ps.GetColumns() {
		if pc.GetName() == "" || seen[pc.GetName()] {
			return nil, fmt.Errorf("schema %s: column %d: empty or duplicate name %q", name, i, pc.GetName())
		}
		seen[pc.GetName()] = true
		t, err := typeFromPB(pc.GetType(), 0)
		if err != nil {
			return nil, fmt.Errorf("schema %s: column %s: %w", name, pc.GetName(), err)
		}
		cols[i] = record.Column{Name: pc.GetName(), SourceType: pc.GetSourceType(), Type: t, Nullable: pc.GetNullable(), Key: pc.GetKey()}
	}
	s := record.NewSchema(ps.GetNamespace(), ps.GetTable(), cols)
	if v := ps.GetVersion(); v > 0 {
		s.Version = int(v)
	}
	return s, nil
}

func typeFromPB(pt *pb.Type, depth int) (record.Type, error) {
	if pt == nil {
		return record.Type{}, errors.New("no type")
	}
	if depth > 8 {
		return record.Type{}, errors.New("lists nested too deeply")
	}
	k := record.Kind(pt.GetKind())
	if k == record.KindInvalid || k > record.KindList {
		return record.Type{}, fmt.Errorf("invalid kind %d", pt.GetKind())
	}
	t := record.Type{Kind: k, Precision: int(pt.GetPrecision()), Scale: int(pt.GetScale())}
	switch k {
	case record.KindDecimal:
		if t.Precision < 1 || t.Precision > 38 || t.Scale < 0 || t.Scale > t.Precision {
			return record.Type{}, fmt.Errorf("decimal(%d,%d): precision must be 1..38 and scale 0..precision", t.Precision, t.Scale)
		}
	case record.KindList:
		e, err := typeFromPB(pt.GetElem(), depth+1)
		if err != nil {
			return record.Type{}, fmt.Errorf("list element: %w", err)
		}
		t.Elem = &e
	}
	return t, nil
}

func decodeRow(cols []record.Column, in []*pb.Value, out []record.Value) ([]record.Value, error) {
	if len(in) != len(cols) {
		return nil, fmt.Errorf("%d values for %d columns", len(in), len(cols))
	}
	for i, pv := range in {
		v, err := decodeValue(cols[i].Type, pv)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// maxTime is 24:00:00, which Postgres allows as a time of day.
const maxTime = 24 * 3600 * 1000000

func decodeValue(t record.Type, pv *pb.Value) (record.Value, error) {
	if pv.GetV() == nil {
		return nil, nil
	}
	bad := func() (record.Value, error) {
		return nil, fmt.Errorf("a %T is not a value of kind %s", pv.GetV(), t.Kind)
	}
	switch t.Kind {
	case record.KindBool:
		if x, ok := pv.V.(*pb.Value_BoolValue); ok {
			return x.BoolValue, nil
		}
	case record.KindInt16:
		if x, ok := pv.V.(*pb.Value_IntValue); ok {
			if x.IntValue < math.MinInt16 || x.IntValue > math.MaxInt16 {
				return nil, fmt.Errorf("%d out of range for int16", x.IntValue)
			}
			return int16(x.IntValue), nil
		}
	case record.KindInt32:
		if x, ok := pv.V.(*pb.Value_IntValue); ok {
			if x.IntValue < math.MinInt32 || x.IntValue > math.MaxInt32 {
				return nil, fmt.Errorf("%d out of range for int32", x.IntValue)
			}
			return int32(x.IntValue), nil
		}
	case record.KindInt64:
		if x, ok := pv.V.(*pb.Value_IntValue); ok {
			return x.IntValue, nil
		}
	case record.KindUint64:
		if x, ok := pv.V.(*pb.Value_UintValue); ok {
			return x.UintValue, nil
		}
	case record.KindFloat32:
		if x, ok := pv.V.(*pb.Value_Float32Value); ok {
			return x.Float32Value, nil
		}
	case record.KindFloat64:
		if x, ok := pv.V.(*pb.Value_Float64Value); ok {
			return x.Float64Value, nil
		}
	case record.KindDecimal, record.KindDecimalText:
		if x, ok := pv.V.(*pb.Value_Decimal); ok {
			if err := checkDecimal(x.Decimal, t); err != nil {
				return nil, err
			}
			return record.Decimal(x.Decimal), nil
		}
	case record.KindString:
		if x, ok := pv.V.(*pb.Value_StringValue); ok {
			return string(x.StringValue), nil
		}
	case record.KindBytes:
		if x, ok := pv.V.(*pb.Value_BytesValue); ok {
			if x.BytesValue == nil {
				return []byte{}, nil
			}
			return x.BytesValue, nil
		}
	case record.KindDate:
		if x, ok := pv.V.(*pb.Value_Date); ok {
			return record.Date(x.Date), nil
		}
	case record.KindTime:
		if x, ok := pv.V.(*pb.Value_Time); ok {
			if x.Time < 0 || x.Time > maxTime {
				return nil, fmt.Errorf("time %d µs is outside 00:00-24:00", x.Time)
			}
			return record.Time(x.Time), nil
		}
	case record.KindTimestamp, record.KindTimestampTZ:
		if x, ok := pv.V.(*pb.Value_Timestamp); ok {
			return record.Timestamp(x.Timestamp), nil
		}
	case record.KindUUID:
		if x, ok := pv.V.(*pb.Value_Uuid); ok {
			var u record.UUID
			if len(x.Uuid) != len(u) {
				return nil, fmt.Errorf("uuid of %d bytes, want 16", len(x.Uuid))
			}
			copy(u[:], x.Uuid)
			return u, nil
		}
	case record.KindJSON:
		if x, ok := pv.V.(*pb.Value_Json); ok {
			if !json.Valid(x.Json) {
				return nil, errors.New("invalid JSON document")
			}
			return record.JSON(x.Json), nil
		}
	case record.KindList:
		if x, ok := pv.V.(*pb.Value_List); ok {
			out := make([]record.Value, len(x.List.GetValues()))
			for i, e := range x.List.GetValues() {
				v, err := decodeValue(*t.Elem, e)
				if err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
				out[i] = v
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("invalid kind %d", t.Kind)
	}
	return bad()
}

// checkDecimal accepts record.Decimal's canonical text. Whether a value fits the
// column's precision is the destination's business, as for a built-in source.
func checkDecimal(s string, t record.Type) error {
	if t.Kind == record.KindDecimalText && (s == "NaN" || s == "Infinity" || s == "-Infinity") {
		return nil
	}
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	intDigits, fracDigits := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		intDigits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			fracDigits++
		}
		if fracDigits == 0 {
			i = -1
		}
	}
	if i != len(s) || intDigits == 0 {
		return fmt.Errorf("decimal %q is not exact decimal text", s)
	}
	return nil
}
