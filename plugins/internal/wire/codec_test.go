package wire

import (
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

func TestEncodeDecodeKeepsEveryValueExact(t *testing.T) {
	s := allKindsSchema()
	uuid, _ := record.ParseUUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
	row := []record.Value{
		int64(math.MinInt64), true, int16(-32768), int32(math.MaxInt32), uint64(math.MaxUint64),
		float32(math.Inf(-1)), math.NaN(), record.Decimal("-1234567890123456789012345678.0123456789"),
		record.Decimal("NaN"), "zażółć \x00 gęślą", []byte{0, 1, 255}, record.Date(-719162),
		record.Time(86400000000), record.TimestampNegInfinity, record.TimestampInfinity, uuid,
		record.JSON(`{"a":[1,2.5e300]}`), []record.Value{int32(1), nil, int32(-3)},
	}
	nulls := make([]record.Value, len(s.Columns))
	nulls[0] = int64(7)
	ts := time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC)
	in := []record.Record{
		{Op: record.OpCreate, Schema: s, After: row, Pos: record.Position{1}, CommitTS: ts, TxID: "77"},
		{Op: record.OpUpdate, Schema: s, Before: nulls, After: nulls, Unchanged: []string{"s"}, Pos: record.Position{2}, CommitTS: ts},
		{Op: record.OpDelete, Schema: s, Before: nulls, Pos: record.Position{3}, CommitTS: ts},
		{Op: record.OpTruncate, Schema: s, Pos: record.Position{4}, CommitTS: ts},
	}
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
}

func TestEncodeRejectsWrongGoType(t *testing.T) {
	s := record.NewSchema("n", "t", []record.Column{{Name: "a", Type: record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}}})
	_, _, err := NewEncoder().Encode([]record.Record{{Op: record.OpCreate, Schema: s, After: []record.Value{1.5}, Pos: record.Position{1}}})
	if err == nil || !strings.Contains(err.Error(), "float64 is not a value of kind decimal") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecodeRejectsMalformedBatches(t *testing.T) {
	col := func(k pb.Kind) *pb.Column { return &pb.Column{Name: "a", Type: &pb.Type{Kind: k}} }
	schema := func(c *pb.Column) *pb.Schema {
		return &pb.Schema{Id: 1, Namespace: "n", Table: "t", Columns: []*pb.Column{c}}
	}
	rec := func(v *pb.Value) *pb.Record {
		return &pb.Record{Op: pb.Op_OP_CREATE, SchemaId: 1, Pos: []byte{1}, After: &pb.Row{Values: []*pb.Value{v}}}
	}
	cases := []struct {
		name string
		b    *pb.Batch
		want string
	}{
		{"unknown schema", &pb.Batch{Records: []*pb.Record{{Op: pb.Op_OP_CREATE, SchemaId: 9, Pos: []byte{1}}}}, "unknown schema id 9"},
		{"kind mismatch", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_DECIMAL_TEXT))}, Records: []*pb.Record{rec(&pb.Value{V: &pb.Value_Float64Value{Float64Value: 1}})}}, "not a value of kind decimal_text"},
		{"bad decimal", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_DECIMAL_TEXT))}, Records: []*pb.Record{rec(&pb.Value{V: &pb.Value_Decimal{Decimal: "1e5"}})}}, "not exact decimal text"},
		{"int16 range", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_INT16))}, Records: []*pb.Record{rec(&pb.Value{V: &pb.Value_IntValue{IntValue: 40000}})}}, "out of range for int16"},
		{"short uuid", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_UUID))}, Records: []*pb.Record{rec(&pb.Value{V: &pb.Value_Uuid{Uuid: []byte{1}}})}}, "uuid of 1 bytes"},
		{"bad json", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_JSON))}, Records: []*pb.Record{rec(&pb.Value{V: &pb.Value_Json{Json: []byte("{")}})}}, "invalid JSON"},
		{"row width", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_BOOL))}, Records: []*pb.Record{{Op: pb.Op_OP_CREATE, SchemaId: 1, Pos: []byte{1}, After: &pb.Row{}}}}, "0 values for 1 columns"},
		{"no op", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_BOOL))}, Records: []*pb.Record{{SchemaId: 1, Pos: []byte{1}}}}, "invalid op"},
		{"no pos", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_BOOL))}, Records: []*pb.Record{{Op: pb.Op_OP_TRUNCATE, SchemaId: 1}}}, "empty position"},
		{"insert without after", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_BOOL))}, Records: []*pb.Record{{Op: pb.Op_OP_CREATE, SchemaId: 1, Pos: []byte{1}}}}, "without an after image"},
		{"bad kind", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind(99)))}}, "invalid kind 99"},
		{"list without elem", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_LIST))}}, "list element: no type"},
		{"bad decimal type", &pb.Batch{Schemas: []*pb.Schema{schema(&pb.Column{Name: "a", Type: &pb.Type{Kind: pb.Kind_KIND_DECIMAL, Precision: 40}})}}, "precision must be 1..38"},
		{"no column type", &pb.Batch{Schemas: []*pb.Schema{schema(&pb.Column{Name: "a"})}}, "no type"},
		{"schema id 0", &pb.Batch{Schemas: []*pb.Schema{{Table: "t"}}}, "id 0 is reserved"},
		{"time range", &pb.Batch{Schemas: []*pb.Schema{schema(col(pb.Kind_KIND_TIME))}, Records: []*pb.Record{rec(&pb.Value{V: &pb.Value_Time{Time: -1}})}}, "outside 00:00-24:00"},
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

func FuzzDecode(f *testing.F) {
	s := allKindsSchema()
	b, _, err := NewEncoder().Encode([]record.Record{{Op: record.OpCreate, Schema: s, After: make([]record.Value, len(s.Columns)), Pos: record.Position{1}}})
	if err != nil {
		f.Fatal(err)
	}
	raw, _ := proto.Marshal(b)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var b pb.Batch
		if proto.Unmarshal(raw, &b) != nil {
			return
		}
		_, _ = NewDecoder().Decode(&b) // must not panic
	})
}
