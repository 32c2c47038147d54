package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
)

// The packed record format is documented on Batch in connectd.proto; encoder and
// decoder below are its only implementation in Go.

// Record flags.
const (
	flagBefore = 1 << 0
	flagAfter  = 1 << 1
)

// Encoder turns records into batches for one stream. It sends each schema once and
// refers to it by id afterwards, so it must be used for one stream only, in order.
//
// Records accumulate (Append) in one reused buffer until Batch takes them; a batch
// therefore shares the encoder's memory and is only valid until the next Append,
// which is as long as gRPC needs it: Send marshals the message before it returns
// (neither side installs a stats handler, the one thing that may read it later).
type Encoder struct {
	ids   map[*record.Schema]uint32
	byKey map[schemaKey]uint32
	next  uint32

	buf     []byte
	count   int
	schemas []*pb.Schema
	added   []added // what the pending batch added to ids and byKey, to undo on error
}

type added struct {
	s      *record.Schema
	newKey bool // byKey got an entry too: the schema is sent in this batch
}

// schemaKey recognises a schema sent before under another pointer, so that a source
// that rebuilds equal schemas does not resend them with every record.
type schemaKey struct {
	ns, table, fp string
	version       int
}

func keyOf(s *record.Schema) schemaKey {
	return schemaKey{ns: s.Namespace, table: s.Table, fp: s.Fingerprint(), version: s.Version}
}

// NewEncoder returns an encoder for a new stream.
func NewEncoder() *Encoder {
	return &Encoder{ids: map[*record.Schema]uint32{}, byKey: map[schemaKey]uint32{}, next: 1}
}

// Encode converts recs into one batch: Append, then Batch. It also returns the size
// of the encoded records in bytes (what a destination reports as buffered).
func (e *Encoder) Encode(recs []record.Record) (*pb.Batch, int64, error) {
	size, err := e.Append(recs)
	if err != nil {
		return nil, 0, err
	}
	return e.Batch(), size, nil
}

// Append encodes recs after the records already pending and returns their size in
// bytes. On error nothing of recs is kept.
func (e *Encoder) Append(recs []record.Record) (int64, error) {
	mark, count, nschemas := len(e.buf), e.count, len(e.schemas)
	nadded := len(e.added)
	for i := range recs {
		if err := e.appendRecord(&recs[i]); err != nil {
			// Undo the whole call, schemas included: they were never sent.
			for _, a := range e.added[nadded:] {
				delete(e.ids, a.s)
				if a.newKey {
					delete(e.byKey, keyOf(a.s))
					e.next--
				}
			}
			e.buf, e.count, e.schemas, e.added = e.buf[:mark], count, e.schemas[:nschemas], e.added[:nadded]
			return 0, fmt.Errorf("record %d (pos %s)%s: %w", i, recs[i].Pos, ofTable(&recs[i]), err)
		}
	}
	return int64(len(e.buf) - mark), nil
}

func ofTable(r *record.Record) string {
	if r.Schema == nil {
		return ""
	}
	return " of " + r.Schema.QualifiedName()
}

// Pending reports the records appended since the last Batch and their size.
func (e *Encoder) Pending() (records, bytes int) { return e.count, len(e.buf) }

// Batch returns the pending records (possibly none: a heartbeat) as a batch and
// starts the next one. The batch is valid until the next Append.
func (e *Encoder) Batch() *pb.Batch {
	b := &pb.Batch{Schemas: e.schemas, Count: uint32(e.count), Records: e.buf}
	e.buf, e.count, e.schemas, e.added = e.buf[:0], 0, nil, e.added[:0]
	return b
}

func (e *Encoder) appendRecord(r *record.Record) error {
	if r.Schema == nil {
		return errors.New("no schema")
	}
	if !r.Op.Valid() {
		return fmt.Errorf("invalid op %q", byte(r.Op))
	}
	if len(r.Pos) == 0 {
		return errors.New("empty position")
	}
	id, err := e.schemaID(r.Schema)
	if err != nil {
		return err
	}
	var flags byte
	if r.Before != nil {
		flags |= flagBefore
	}
	if r.After != nil {
		flags |= flagAfter
	}
	b := append(e.buf, byte(r.Op))
	b = binary.AppendUvarint(b, uint64(id))
	b = append(b, flags)
	b = appendBytes(b, r.Pos)
	b = binary.AppendVarint(b, r.CommitTS.UnixMicro())
	b = appendString(b, r.TxID)
	b = binary.AppendUvarint(b, uint64(len(r.Unchanged)))
	for _, u := range r.Unchanged {
		b = appendString(b, u)
	}
	cols := r.Schema.Columns
	if r.Before != nil {
		if b, err = appendRow(b, cols, r.Before); err != nil {
			e.buf = b
			return fmt.Errorf("before: %w", err)
		}
	}
	if r.After != nil {
		if b, err = appendRow(b, cols, r.After); err != nil {
			e.buf = b
			return fmt.Errorf("after: %w", err)
		}
	}
	e.buf = b
	e.count++
	return nil
}

func (e *Encoder) schemaID(s *record.Schema) (uint32, error) {
	if id, ok := e.ids[s]; ok {
		return id, nil
	}
	k := keyOf(s)
	if id, ok := e.byKey[k]; ok {
		e.ids[s] = id
		e.added = append(e.added, added{s: s})
		return id, nil
	}
	ps, err := SchemaToPB(s)
	if err != nil {
		return 0, err
	}
	id := e.next
	e.next++
	ps.Id = id
	e.schemas = append(e.schemas, ps)
	e.ids[s] = id
	e.byKey[k] = id
	e.added = append(e.added, added{s: s, newKey: true})
	return id, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendNulls appends the null bitmap of vals.
func appendNulls(b []byte, vals []record.Value) []byte {
	n := len(b)
	b = append(b, make([]byte, (len(vals)+7)/8)...)
	for i, v := range vals {
		if v == nil {
			b[n+i/8] |= 1 << (i % 8)
		}
	}
	return b
}

func appendRow(b []byte, cols []record.Column, vals []record.Value) ([]byte, error) {
	if len(vals) != len(cols) {
		return b, fmt.Errorf("%d values for %d columns", len(vals), len(cols))
	}
	b = appendNulls(b, vals)
	var err error
	for i, v := range vals {
		if v == nil {
			continue
		}
		if b, err = appendValue(b, cols[i].Type, v); err != nil {
			return b, fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
	}
	return b, nil
}

// appendValue appends one non-null value of type t.
func appendValue(b []byte, t record.Type, v record.Value) ([]byte, error) {
	bad := func() ([]byte, error) { return b, fmt.Errorf("%T is not a value of kind %s", v, t.Kind) }
	switch t.Kind {
	case record.KindBool:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		if x {
			return append(b, 1), nil
		}
		return append(b, 0), nil
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
		return binary.AppendVarint(b, x), nil
	case record.KindUint64:
		x, ok := v.(uint64)
		if !ok {
			return bad()
		}
		return binary.AppendUvarint(b, x), nil
	case record.KindFloat32:
		x, ok := v.(float32)
		if !ok {
			return bad()
		}
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)), nil
	case record.KindFloat64:
		x, ok := v.(float64)
		if !ok {
			return bad()
		}
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), nil
	case record.KindDecimal, record.KindDecimalText:
		x, ok := v.(record.Decimal)
		if !ok {
			return bad()
		}
		return appendString(b, string(x)), nil
	case record.KindString:
		x, ok := v.(string)
		if !ok {
			return bad()
		}
		return appendString(b, x), nil
	case record.KindBytes:
		x, ok := v.([]byte)
		if !ok {
			return bad()
		}
		return appendBytes(b, x), nil
	case record.KindDate:
		x, ok := v.(record.Date)
		if !ok {
			return bad()
		}
		return binary.AppendVarint(b, int64(x)), nil
	case record.KindTime:
		x, ok := v.(record.Time)
		if !ok {
			return bad()
		}
		return binary.AppendVarint(b, int64(x)), nil
	case record.KindTimestamp, record.KindTimestampTZ:
		x, ok := v.(record.Timestamp)
		if !ok {
			return bad()
		}
		return binary.LittleEndian.AppendUint64(b, uint64(x)), nil
	case record.KindUUID:
		x, ok := v.(record.UUID)
		if !ok {
			return bad()
		}
		return append(b, x[:]...), nil
	case record.KindJSON:
		x, ok := v.(record.JSON)
		if !ok {
			return bad()
		}
		return appendBytes(b, x), nil
	case record.KindList:
		x, ok := v.([]record.Value)
		if !ok {
			return bad()
		}
		if t.Elem == nil {
			return b, errors.New("list without element type")
		}
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = appendNulls(b, x)
		var err error
		for i, e := range x {
			if e == nil {
				continue
			}
			if b, err = appendValue(b, *t.Elem, e); err != nil {
				return b, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return b, nil
	}
	return b, fmt.Errorf("invalid kind %d", t.Kind)
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

// Decoder turns the batches of one stream back into records, checking everything:
// a plugin's mistakes must become errors, never panics or wrong values.
type Decoder struct {
	schemas    map[uint32]*record.Schema
	lastID     uint32 // the schema of the last record decoded
	lastSchema *record.Schema
}

// NewDecoder returns a decoder for a new stream.
func NewDecoder() *Decoder {
	return &Decoder{schemas: map[uint32]*record.Schema{}}
}

// minRecordBytes is the size of the smallest valid record (op, schema id, flags, a
// one-byte position, commit_ts, empty txid, no unchanged): a bound on Batch.count
// before anything is allocated for it.
const minRecordBytes = 8

// Decode converts one batch. The error says which record and column was malformed.
//
// The records share b.Records' memory (their strings and byte values are cut from
// it, without a copy), so the caller must not modify b.Records afterwards: gRPC
// hands each received message a buffer of its own.
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
	data, count := b.GetRecords(), int(b.GetCount())
	if count == 0 {
		if len(data) != 0 {
			return nil, fmt.Errorf("%d bytes of records in a batch of 0 records", len(data))
		}
		return nil, nil
	}
	if count > len(data)/minRecordBytes {
		return nil, fmt.Errorf("%d records cannot fit in %d bytes", count, len(data))
	}
	r := reader{data: data, text: unsafe.String(unsafe.SliceData(data), len(data)), sl: slabs{chunk: count}, vals: record.ValueSlab{Rows: count}}
	recs := make([]record.Record, count)
	for i := range recs {
		if err := d.decodeRecord(&r, &recs[i]); err != nil {
			rec := &recs[i]
			switch {
			case rec.Schema != nil && len(rec.Pos) > 0:
				return nil, fmt.Errorf("record %d (pos %s) of %s: %w", i, rec.Pos, rec.Schema.QualifiedName(), err)
			case len(rec.Pos) > 0:
				return nil, fmt.Errorf("record %d (pos %s): %w", i, rec.Pos, err)
			}
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	if r.off != len(data) {
		return nil, fmt.Errorf("%d bytes after the last of %d records", len(data)-r.off, count)
	}
	return recs, nil
}

func (d *Decoder) decodeRecord(r *reader, rec *record.Record) error {
	op, err := r.byte("op")
	if err != nil {
		return err
	}
	rec.Op = record.Op(op)
	if !rec.Op.Valid() {
		return fmt.Errorf("invalid op %d", op)
	}
	id, err := r.uvarint("schema id")
	if err != nil {
		return err
	}
	// Runs of records of one table are the rule: skip the map for them.
	s := d.lastSchema
	if id != uint64(d.lastID) || s == nil {
		var ok bool
		if s, ok = d.schemas[uint32(id)]; !ok || id > math.MaxUint32 {
			return fmt.Errorf("unknown schema id %d", id)
		}
		d.lastID, d.lastSchema = uint32(id), s
	}
	flags, err := r.byte("flags")
	if err != nil {
		return err
	}
	if flags&^(flagBefore|flagAfter) != 0 {
		return fmt.Errorf("invalid flags %#x", flags)
	}
	pos, err := r.bytes("position")
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("empty position")
	}
	rec.Pos = record.Position(pos)
	rec.Schema = s
	ts, err := r.varint("commit_ts")
	if err != nil {
		return err
	}
	rec.CommitTS = time.UnixMicro(ts).UTC()
	if rec.TxID, err = r.string("txid"); err != nil {
		return err
	}
	nu, err := r.uvarint("unchanged")
	if err != nil {
		return err
	}
	if nu > uint64(r.left()) {
		return fmt.Errorf("%d unchanged columns cannot fit in %d bytes", nu, r.left())
	}
	if nu > 0 {
		rec.Unchanged = make([]string, nu)
		for j := range rec.Unchanged {
			if rec.Unchanged[j], err = r.string("unchanged column"); err != nil {
				return err
			}
		}
	}
	cols := s.Columns
	if flags&flagBefore != 0 {
		if rec.Before, err = r.row(cols); err != nil {
			return fmt.Errorf("before: %w", err)
		}
	}
	if flags&flagAfter != 0 {
		if rec.After, err = r.row(cols); err != nil {
			return fmt.Errorf("after: %w", err)
		}
	}
	switch {
	case (rec.Op == record.OpRead || rec.Op == record.OpCreate || rec.Op == record.OpUpdate) && rec.After == nil:
		return fmt.Errorf("op %s without an after image", rec.Op)
	case rec.Op == record.OpDelete && rec.Before == nil:
		return errors.New("delete without a before image")
	}
	return nil
}

// reader walks the packed records. Strings are cut from text, which is data seen
// as a string: the batch's bytes are never modified after Decode (a []byte value
// is a part of them no string shares, with no capacity past its end).
type reader struct {
	data []byte
	text string
	off  int
	vals record.ValueSlab // where rows are cut from
	sl   slabs            // where the values are boxed
}

var errTruncated = errors.New("truncated")

func (r *reader) left() int { return len(r.data) - r.off }

func (r *reader) byte(what string) (byte, error) {
	if r.off >= len(r.data) {
		return 0, fmt.Errorf("%s: %w", what, errTruncated)
	}
	c := r.data[r.off]
	r.off++
	return c, nil
}

func (r *reader) uvarint(what string) (uint64, error) {
	x, n := binary.Uvarint(r.data[r.off:])
	if n <= 0 {
		return 0, fmt.Errorf("%s: bad or truncated uvarint", what)
	}
	r.off += n
	return x, nil
}

func (r *reader) varint(what string) (int64, error) {
	x, n := binary.Varint(r.data[r.off:])
	if n <= 0 {
		return 0, fmt.Errorf("%s: bad or truncated varint", what)
	}
	r.off += n
	return x, nil
}

func (r *reader) fixed(what string, n int) ([]byte, error) {
	if r.left() < n {
		return nil, fmt.Errorf("%s: %w", what, errTruncated)
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b, nil
}

// span reads a length and returns the offsets of the bytes it announces.
func (r *reader) span(what string) (int, int, error) {
	n, err := r.uvarint(what)
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(r.left()) {
		return 0, 0, fmt.Errorf("%s: length %d, but %d bytes left", what, n, r.left())
	}
	start := r.off
	r.off += int(n)
	return start, r.off, nil
}

// bytes returns a length-prefixed byte string; its capacity ends with it, so that
// appending to it cannot overwrite what follows.
func (r *reader) bytes(what string) ([]byte, error) {
	i, j, err := r.span(what)
	if err != nil {
		return nil, err
	}
	return r.data[i:j:j], nil
}

func (r *reader) string(what string) (string, error) {
	i, j, err := r.span(what)
	if err != nil {
		return "", err
	}
	return r.text[i:j], nil
}

// nulls reads a null bitmap of n bits.
func (r *reader) nulls(n int) ([]byte, error) {
	m, err := r.fixed("null bitmap", (n+7)/8)
	if err != nil {
		return nil, err
	}
	if n%8 != 0 && m[len(m)-1]>>(n%8) != 0 {
		return nil, errors.New("null bitmap: padding bits set")
	}
	return m, nil
}

func (r *reader) row(cols []record.Column) ([]record.Value, error) {
	m, err := r.nulls(len(cols))
	if err != nil {
		return nil, err
	}
	out := r.vals.Take(len(cols))
	for i := range cols {
		if m[i/8]&(1<<(i%8)) != 0 {
			continue
		}
		if out[i], err = r.value(cols[i].Type); err != nil {
			return nil, fmt.Errorf("column %s: %w", cols[i].Name, err)
		}
	}
	return out, nil
}

// maxTime is 24:00:00, which Postgres allows as a time of day.
const maxTime = 24 * 3600 * 1000000

// value reads one non-null value of type t.
func (r *reader) value(t record.Type) (record.Value, error) {
	k := t.Kind
	switch k {
	case record.KindBool:
		c, err := r.byte("bool")
		if err != nil {
			return nil, err
		}
		if c > 1 {
			return nil, fmt.Errorf("bool byte %d, want 0 or 1", c)
		}
		return c == 1, nil
	case record.KindInt16, record.KindInt32, record.KindInt64:
		x, err := r.varint(k.String())
		if err != nil {
			return nil, err
		}
		switch {
		case k == record.KindInt64:
			return r.sl.int64(typeInt64, x), nil
		case k == record.KindInt32 && x >= math.MinInt32 && x <= math.MaxInt32:
			return r.sl.int32(typeInt32, int32(x)), nil
		case k == record.KindInt16 && x >= math.MinInt16 && x <= math.MaxInt16:
			return r.sl.int16(int16(x)), nil
		}
		return nil, fmt.Errorf("%d out of range for %s", x, k)
	case record.KindUint64:
		x, err := r.uvarint("uint64")
		if err != nil {
			return nil, err
		}
		return r.sl.uint64(x), nil
	case record.KindFloat32:
		b, err := r.fixed("float32", 4)
		if err != nil {
			return nil, err
		}
		return r.sl.float32(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
	case record.KindFloat64:
		b, err := r.fixed("float64", 8)
		if err != nil {
			return nil, err
		}
		return r.sl.float64(math.Float64frombits(binary.LittleEndian.Uint64(b))), nil
	case record.KindDecimal, record.KindDecimalText:
		s, err := r.string("decimal")
		if err != nil {
			return nil, err
		}
		if err := checkDecimal(s, t); err != nil {
			return nil, err
		}
		return r.sl.string(typeDecimal, s), nil
	case record.KindString:
		s, err := r.string("string")
		if err != nil {
			return nil, err
		}
		return r.sl.string(typeString, s), nil
	case record.KindBytes:
		b, err := r.bytes("bytes")
		if err != nil {
			return nil, err
		}
		return r.sl.bytes(typeBytes, b), nil
	case record.KindDate:
		x, err := r.varint("date")
		if err != nil {
			return nil, err
		}
		if x < math.MinInt32 || x > math.MaxInt32 {
			return nil, fmt.Errorf("date %d out of range", x)
		}
		return r.sl.int32(typeDate, int32(x)), nil
	case record.KindTime:
		x, err := r.varint("time")
		if err != nil {
			return nil, err
		}
		if x < 0 || x > maxTime {
			return nil, fmt.Errorf("time %d µs is outside 00:00-24:00", x)
		}
		return r.sl.int64(typeTime, x), nil
	case record.KindTimestamp, record.KindTimestampTZ:
		b, err := r.fixed("timestamp", 8)
		if err != nil {
			return nil, err
		}
		return r.sl.int64(typeTimestamp, int64(binary.LittleEndian.Uint64(b))), nil
	case record.KindUUID:
		b, err := r.fixed("uuid", 16)
		if err != nil {
			return nil, err
		}
		return r.sl.uuid(record.UUID(b)), nil
	case record.KindJSON:
		b, err := r.bytes("json")
		if err != nil {
			return nil, err
		}
		if !json.Valid(b) {
			return nil, errors.New("invalid JSON document")
		}
		return r.sl.bytes(typeJSON, b), nil
	case record.KindList:
		n, err := r.uvarint("list length")
		if err != nil {
			return nil, err
		}
		// Every element takes at least its bit in the bitmap.
		if n > 8*uint64(r.left()) {
			return nil, fmt.Errorf("list of %d elements cannot fit in %d bytes", n, r.left())
		}
		m, err := r.nulls(int(n))
		if err != nil {
			return nil, err
		}
		out := make([]record.Value, n)
		for i := range out {
			if m[i/8]&(1<<(i%8)) != 0 {
				continue
			}
			if out[i], err = r.value(*t.Elem); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("invalid kind %d", k)
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
