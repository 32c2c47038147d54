package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
	"github.com/connectd/connectd/record"
	"google.golang.org/protobuf/proto"
)

func allKindsSchema() *record.Schema {
	i32 := record.Type{Kind: record.KindInt32}
	return record.NewSchema("public", "every", []record.Column{
		{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
		{Name: "b", Type: record.Type{Kind: record.KindBool}, Nullable: true},
		{Name: "i16", Type: record.Type{Kind: record.KindInt16}, Nullable: true},
		{Name: "i32", Type: i32, Nullable: true},
		{Name: "u64", Type: record.Type{Kind: record.KindUint64}, Nullable: true},
		{Name: "f32", Type: record.Type{Kind: record.KindFloat32}, Nullable: true},
		{Name: "f64", Type: record.Type{Kind: record.KindFloat64}, Nullable: true},
		{Name: "dec", Type: record.Type{Kind: record.KindDecimal, Precision: 38, Scale: 10}, Nullable: true},
		{Name: "dect", Type: record.Type{Kind: record.KindDecimalText, Scale: -1}, Nullable: true},
		{Name: "s", Type: record.Type{Kind: record.KindString}, Nullable: true},
		{Name: "by", Type: record.Type{Kind: record.KindBytes}, Nullable: true},
		{Name: "d", Type: record.Type{Kind: record.KindDate}, Nullable: true},
		{Name: "t", Type: record.Type{Kind: record.KindTime}, Nullable: true},
		{Name: "ts", Type: record.Type{Kind: record.KindTimestamp}, Nullable: true},
		{Name: "tstz", Type: record.Type{Kind: record.KindTimestampTZ}, Nullable: true},
		{Name: "u", Type: record.Type{Kind: record.KindUUID}, Nullable: true},
		{Name: "j", Type: record.Type{Kind: record.KindJSON}, Nullable: true},
		{Name: "l", Type: record.Type{Kind: record.KindList, Elem: &i32}, Nullable: true},
	})
}

// everyKindRowValues is a row of allKindsSchema with an extreme value of every kind.
func everyKindRowValues() []record.Value {
	uuid, _ := record.ParseUUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	return []record.Value{
		int64(math.MinInt64), true, int16(-32768), int32(math.MaxInt32), uint64(math.MaxUint64),
		float32(math.Inf(-1)), math.NaN(), record.Decimal("-1234567890123456789012345678.0123456789"),
		record.Decimal("NaN"), "zażółć \x00 gęślą", []byte{0, 1, 255}, record.Date(-719162),
		record.Time(86400000000), record.TimestampNegInfinity, record.TimestampInfinity, uuid,
		record.JSON(`{"a":[1,2.5e300]}`), []record.Value{int32(1), nil, int32(-3)},
	}
}

// everyKindRecords are records of every op over allKindsSchema.
func everyKindRecords(s *record.Schema) []record.Record {
	nulls := make([]record.Value, len(s.Columns))
	nulls[0] = int64(7)
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC)
	return []record.Record{
		{Op: record.OpCreate, Schema: s, After: everyKindRowValues(), Pos: record.Position{1}, CommitTS: ts, TxID: "77"},
		{Op: record.OpUpdate, Schema: s, Before: nulls, After: nulls, Unchanged: []string{"s"}, Pos: record.Position{2}, CommitTS: ts},
		{Op: record.OpDelete, Schema: s, Before: nulls, Pos: record.Position{3}, CommitTS: ts},
		{Op: record.OpTruncate, Schema: s, Pos: record.Position{4}, CommitTS: ts},
	}
}

func TestEncodeDecodeKeepsEveryValueExact(t *testing.T) {
	s := allKindsSchema()
	row := everyKindRowValues()
	in := everyKindRecords(s)
	enc, dec := NewEncoder(), NewDecoder()
	b, size, err := enc.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if size <= 0 || len(b.Schemas) != 1 {
		t.Fatalf("size %d, %d schemas", size, len(b.Schemas))
	}
	// Through the real wire format, as gRPC would send it.
	raw, err := proto.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got pb.Batch
	if err := proto.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	out, err := dec.Decode(&got)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d records, want %d", len(out), len(in))
	}
	for i := range in {
		o, w := out[i], in[i]
		if o.Op != w.Op || !o.CommitTS.Equal(w.CommitTS) || o.TxID != w.TxID || o.Pos.Compare(w.Pos) != 0 ||
			!reflect.DeepEqual(o.Unchanged, w.Unchanged) || (o.After == nil) != (w.After == nil) || (o.Before == nil) != (w.Before == nil) {
			t.Fatalf("record %d: got %+v want %+v", i, o, w)
		}
		if o.Schema.Fingerprint() != s.Fingerprint() || o.Schema.QualifiedName() != s.QualifiedName() {
			t.Fatalf("schema %v", o.Schema)
		}
	}
	for i, v := range out[0].After {
		want := row[i]
		if f, ok := want.(float64); ok && math.IsNaN(f) {
			if g, ok := v.(float64); !ok || math.Float64bits(g) != math.Float64bits(f) {
				t.Fatalf("column %d: got %v", i, v)
			}
			continue
		}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("column %s: got %#v (%T), want %#v (%T)", s.Columns[i].Name, v, v, want, want)
		}
	}
	// The schema is sent once per stream.
	b2, _, err := enc.Encode(in[:1])
	if err != nil || len(b2.Schemas) != 0 {
		t.Fatalf("second batch: %v, %d schemas", err, len(b2.Schemas))
	}
	if _, err := dec.Decode(b2); err != nil {
		t.Fatal(err)
	}
	// Values that alias the batch cannot overwrite each other when appended to.
	by := out[0].After[10].([]byte)
	if cap(by) != len(by) {
		t.Fatalf("bytes value has capacity %d beyond its %d bytes", cap(by), len(by))
	}
}

func TestEncodeRejectsWrongGoType(t *testing.T) {
	s := record.NewSchema("n", "t", []record.Column{{Name: "a", Type: record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}}})
	_, _, err := NewEncoder().Encode([]record.Record{{Op: record.OpCreate, Schema: s, After: []record.Value{1.5}, Pos: record.Position{1}}})
	if err == nil || !strings.Contains(err.Error(), "record 0 (pos 01) of n.t: after: column a: float64 is not a value of kind decimal") {
		t.Fatalf("err = %v", err)
	}
}

// A failed Append leaves the pending batch as it was, schemas included: a schema
// first used by the rejected records is sent with the next records that use it.
func TestAppendUndoesARejectedCall(t *testing.T) {
	good := record.NewSchema("n", "good", []record.Column{{Name: "a", Type: record.Type{Kind: record.KindInt64}}})
	other := record.NewSchema("n", "other", []record.Column{{Name: "a", Type: record.Type{Kind: record.KindString}}})
	enc, dec := NewEncoder(), NewDecoder()
	if _, err := enc.Append([]record.Record{{Op: record.OpCreate, Schema: good, After: []record.Value{int64(1)}, Pos: record.Position{1}}}); err != nil {
		t.Fatal(err)
	}
	_, err := enc.Append([]record.Record{
		{Op: record.OpCreate, Schema: other, After: []record.Value{"ok"}, Pos: record.Position{2}},
		{Op: record.OpCreate, Schema: other, After: []record.Value{int64(5)}, Pos: record.Position{3}},
	})
	if err == nil || !strings.Contains(err.Error(), "record 1 (pos 03) of n.other: after: column a: int64 is not a value of kind string") {
		t.Fatalf("err = %v", err)
	}
	if n, _ := enc.Pending(); n != 1 {
		t.Fatalf("%d records pending, want 1", n)
	}
	if _, err := enc.Append([]record.Record{{Op: record.OpCreate, Schema: other, After: []record.Value{"x"}, Pos: record.Position{4}}}); err != nil {
		t.Fatal(err)
	}
	b := enc.Batch()
	if len(b.Schemas) != 2 || b.Count != 2 {
		t.Fatalf("%d schemas, %d records", len(b.Schemas), b.Count)
	}
	recs, err := dec.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].After[0] != int64(1) || recs[1].After[0] != "x" || recs[1].Schema.Table != "other" {
		t.Fatalf("decoded %+v", recs)
	}
	if n, size := enc.Pending(); n != 0 || size != 0 {
		t.Fatalf("after Batch: %d records, %d bytes pending", n, size)
	}
}

// packed builds the packed form of one record of schema 1 at position 01 with the
// given op and flags, followed by rest (its rows).
func packed(op byte, flags byte, rest ...byte) []byte {
	b := []byte{op, 1, flags}
	b = appendBytes(b, []byte{1})
	b = binary.AppendVarint(b, 0)
	b = appendString(b, "")
	b = binary.AppendUvarint(b, 0)
	return append(b, rest...)
}

func TestDecodeRejectsMalformedBatches(t *testing.T) {
	col := func(k pb.Kind) *pb.Column { return &pb.Column{Name: "a", Type: &pb.Type{Kind: k}} }
	schema := func(c *pb.Column) []*pb.Schema {
		return []*pb.Schema{{Id: 1, Namespace: "n", Table: "t", Columns: []*pb.Column{c}}}
	}
	one := func(k pb.Kind, value ...byte) *pb.Batch {
		return &pb.Batch{Schemas: schema(col(k)), Count: 1, Records: packed('c', flagAfter, append([]byte{0}, value...)...)}
	}
	cases := []struct {
		name string
		b    *pb.Batch
		want string
	}{
		{"unknown schema", &pb.Batch{Count: 1, Records: packed('t', 0)}, "record 0: unknown schema id 1"},
		{"bad decimal", one(pb.Kind_KIND_DECIMAL_TEXT, appendString(nil, "1e5")...), `record 0 (pos 01) of n.t: after: column a: decimal "1e5" is not exact decimal text`},
		{"int16 range", one(pb.Kind_KIND_INT16, binary.AppendVarint(nil, 40000)...), "column a: 40000 out of range for int16"},
		{"int32 range", one(pb.Kind_KIND_INT32, binary.AppendVarint(nil, math.MinInt32-1)...), "out of range for int32"},
		{"bool byte", one(pb.Kind_KIND_BOOL, 2), "bool byte 2"},
		{"short uuid", one(pb.Kind_KIND_UUID, 1), "column a: uuid: truncated"},
		{"bad json", one(pb.Kind_KIND_JSON, appendString(nil, "{")...), "invalid JSON"},
		{"string past the end", one(pb.Kind_KIND_STRING, 5, 'a'), "string: length 5, but 1 bytes left"},
		{"bad varint", one(pb.Kind_KIND_INT64, 0xff, 0xff), "int64: bad or truncated varint"},
		{"short timestamp", one(pb.Kind_KIND_TIMESTAMPTZ, 1, 2, 3), "timestamp: truncated"},
		{"time range", one(pb.Kind_KIND_TIME, binary.AppendVarint(nil, -1)...), "outside 00:00-24:00"},
		{"no row", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('c', flagAfter)}, "after: null bitmap: truncated"},
		{"padding bits", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('c', flagAfter, 0x03)}, "padding bits set"},
		{"no op", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('x', 0)}, "invalid op"},
		{"bad flags", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('t', 4)}, "invalid flags"},
		{"no pos", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: []byte{'t', 1, 0, 0, 0, 0, 0, 0}}, "empty position"},
		{"insert without after", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('c', 0)}, "without an after image"},
		{"delete without before", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('d', flagAfter, 1)}, "delete without a before image"},
		{"trailing bytes", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1, Records: packed('t', 0, 9)}, "1 bytes after the last of 1 records"},
		{"count too large", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_BOOL)), Count: 1000, Records: packed('t', 0)}, "1000 records cannot fit"},
		{"records without count", &pb.Batch{Records: packed('t', 0)}, "in a batch of 0 records"},
		{"bad kind", &pb.Batch{Schemas: schema(col(pb.Kind(99)))}, "invalid kind 99"},
		{"list without elem", &pb.Batch{Schemas: schema(col(pb.Kind_KIND_LIST))}, "list element: no type"},
		{"bad decimal type", &pb.Batch{Schemas: schema(&pb.Column{Name: "a", Type: &pb.Type{Kind: pb.Kind_KIND_DECIMAL, Precision: 40}})}, "precision must be 1..38"},
		{"no column type", &pb.Batch{Schemas: schema(&pb.Column{Name: "a"})}, "no type"},
		{"schema id 0", &pb.Batch{Schemas: []*pb.Schema{{Table: "t"}}}, "id 0 is reserved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewDecoder().Decode(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestDecodeRejectsReusedSchemaID(t *testing.T) {
	d := NewDecoder()
	b := &pb.Batch{Schemas: []*pb.Schema{{Id: 1, Table: "t"}}}
	if _, err := d.Decode(b); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Decode(b); err == nil || !strings.Contains(err.Error(), "sent twice") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzDecode feeds arbitrary packed records, under the schema of every kind, to the
// decoder: it must never panic, and what it accepts must survive a round trip.
func FuzzDecode(f *testing.F) {
	s := allKindsSchema()
	ps, err := SchemaToPB(s)
	if err != nil {
		f.Fatal(err)
	}
	ps.Id = 1
	enc := NewEncoder()
	for _, r := range everyKindRecords(s) {
		b, _, err := enc.Encode([]record.Record{r})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint32(1), append([]byte(nil), b.Records...))
	}
	f.Fuzz(func(t *testing.T, count uint32, raw []byte) {
		raw = append([]byte(nil), raw...) // Decode keeps it
		recs, err := NewDecoder().Decode(&pb.Batch{Schemas: []*pb.Schema{ps}, Count: count, Records: raw})
		if err != nil {
			return
		}
		// Accepted records encode, and their encoding decodes to the same encoding.
		once, _, err := NewEncoder().Encode(recs)
		if err != nil {
			t.Fatalf("decoded records do not encode: %v", err)
		}
		first := append([]byte(nil), once.Records...)
		again, err := NewDecoder().Decode(&pb.Batch{Schemas: once.Schemas, Count: once.Count, Records: first})
		if err != nil {
			t.Fatalf("re-encoded records do not decode: %v", err)
		}
		twice, _, err := NewEncoder().Encode(again)
		if err != nil || !bytes.Equal(twice.Records, first) {
			t.Fatalf("round trip changed the records: %v", err)
		}
	})
}

// Values the decoder boxes by hand (box.go) behave as values boxed by the compiler:
// same dynamic type, equal under ==, type switches and reflect, and independent of
// one another.
func TestBoxedValuesBehaveAsValues(t *testing.T) {
	var sl slabs
	uuid, _ := record.ParseUUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	cases := []struct{ got, want record.Value }{
		{sl.int64(typeInt64, math.MinInt64), int64(math.MinInt64)},
		{sl.int64(typeTime, 86400000000), record.Time(86400000000)},
		{sl.int64(typeTimestamp, int64(record.TimestampInfinity)), record.TimestampInfinity},
		{sl.int32(typeInt32, -7), int32(-7)},
		{sl.int32(typeDate, -719162), record.Date(-719162)},
		{sl.int16(-32768), int16(-32768)},
		{sl.uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{sl.float32(1.5), float32(1.5)},
		{sl.float64(-2.25), -2.25},
		{sl.string(typeString, "zażółć"), "zażółć"},
		{sl.string(typeDecimal, "-1.50"), record.Decimal("-1.50")},
		{sl.uuid(uuid), uuid},
	}
	for i, c := range cases {
		if c.got != c.want || !reflect.DeepEqual(c.got, c.want) || fmt.Sprintf("%T %v", c.got, c.got) != fmt.Sprintf("%T %v", c.want, c.want) {
			t.Fatalf("case %d: got %T %v, want %T %v", i, c.got, c.got, c.want, c.want)
		}
	}
	if d, ok := cases[10].got.(record.Decimal); !ok || d != "-1.50" {
		t.Fatalf("type switch on a boxed decimal: %v %v", d, ok)
	}
	if _, ok := cases[10].got.(string); ok {
		t.Fatal("a boxed decimal asserts as a string")
	}
	b := sl.bytes(typeJSON, []byte(`{"a":1}`))
	if j, ok := b.(record.JSON); !ok || string(j) != `{"a":1}` {
		t.Fatalf("boxed json: %T %v", b, b)
	}
	// Neighbours in one slab keep their own values.
	var vs []record.Value
	for i := range 1000 {
		vs = append(vs, sl.int64(typeInt64, int64(i)))
	}
	for i, v := range vs {
		if v != int64(i) {
			t.Fatalf("value %d reads %v", i, v)
		}
	}
}
