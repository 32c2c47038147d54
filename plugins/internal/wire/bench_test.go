package wire

import (
	"fmt"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
	"google.golang.org/protobuf/proto"

	pb "github.com/connectd/connectd/plugins/proto/connectd/v1"
)

// benchRows are rows like bench/plugin's: int64, decimal, text, timestamptz, bool.
func benchRows(n int) []record.Record {
	s := record.NewSchema("gen", "rows", []record.Column{
		{Name: "id", Type: record.Type{Kind: record.KindInt64}, Key: true},
		{Name: "amount", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
		{Name: "name", Type: record.Type{Kind: record.KindString}, Nullable: true},
		{Name: "at", Type: record.Type{Kind: record.KindTimestampTZ}, Nullable: true},
		{Name: "flag", Type: record.Type{Kind: record.KindBool}, Nullable: true},
	})
	out := make([]record.Record, n)
	for i := range out {
		ts := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		out[i] = record.Record{Op: record.OpCreate, Schema: s, Pos: record.Position(fmt.Sprintf("%08d", i+1)), CommitTS: ts,
			After: []record.Value{int64(i), record.Decimal(fmt.Sprintf("%d.%02d", i, i%100)), fmt.Sprintf("row-%d", i), record.TimestampOf(ts), i%2 == 0}}
	}
	return out
}

func BenchmarkEncode(b *testing.B) {
	recs := benchRows(8192)
	enc := NewEncoder()
	b.ReportAllocs()
	for b.Loop() {
		batch, _, err := enc.Encode(recs)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1024, 2048, 4096, 8192} {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchDecode(b, n) })
	}
}

func benchDecode(b *testing.B, n int) {
	recs := benchRows(n)
	batch, _, err := NewEncoder().Encode(recs)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := proto.Marshal(batch)
	b.ReportAllocs()
	for b.Loop() {
		var got pb.Batch
		if err := proto.Unmarshal(raw, &got); err != nil {
			b.Fatal(err)
		}
		dec := NewDecoder()
		if _, err := dec.Decode(&got); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
