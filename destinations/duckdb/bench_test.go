package duckdb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// benchRecords builds n snapshot rows of a 10-column table of mixed types, from
// position first on.
func benchRecords(n, first int) []record.Record {
	s := record.NewSchema("public", "orders", []record.Column{
		{Name: "id", Type: kind(record.KindInt64), Key: true},
		{Name: "customer_id", Type: kind(record.KindInt32)},
		{Name: "amount", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}},
		{Name: "price", Type: kind(record.KindFloat64)},
		{Name: "name", Type: kind(record.KindString)},
		{Name: "created_at", Type: kind(record.KindTimestampTZ)},
		{Name: "ship_date", Type: kind(record.KindDate)},
		{Name: "paid", Type: kind(record.KindBool)},
		{Name: "ref", Type: kind(record.KindUUID)},
		{Name: "note", Type: kind(record.KindString), Nullable: true},
	})
	ts := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
	recs := make([]record.Record, n)
	for i := range recs {
		var u record.UUID
		u[0], u[15] = byte(i), byte(i>>8)
		var note record.Value
		if i%3 != 0 {
			note = fmt.Sprintf("delivered to door %d, signed", i%977)
		}
		recs[i] = record.Record{
			Op: record.OpRead, Schema: s, Pos: pos(first + i), CommitTS: ts,
			After: []record.Value{
				int64(i), int32(i % 10007), record.Decimal(fmt.Sprintf("%d.%02d", i%100000, i%100)),
				float64(i) * 0.25, fmt.Sprintf("customer-%06d", i%50000),
				record.Timestamp(1772582400000000 + int64(i)*1000), record.Date(20516 + i%30),
				i%2 == 0, u, note,
			},
		}
	}
	return recs
}

// BenchmarkFlush loads a snapshot of 100,000 rows per iteration, in batches of 1000
// and one flush, in each mode: merge inserts them once and updates them after (the
// same keys again), append adds them.
func BenchmarkFlush(b *testing.B) {
	const rows, batch = 100_000, 1000
	for _, mode := range []string{"merge", "append"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			dst := open(ctx, b, "bench", &Config{Path: newPath(b), Mode: mode})
			defer dst.Close(ctx)
			b.ResetTimer()
			t0 := time.Now()
			for n := 0; n < b.N; n++ {
				recs := benchRecords(rows, 1+n*rows)
				for i := 0; i < rows; i += batch {
					if err := dst.Write(ctx, recs[i:i+batch]); err != nil {
						b.Fatal(err)
					}
				}
				if err := dst.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*rows)/time.Since(t0).Seconds(), "rows/s")
		})
	}
}
