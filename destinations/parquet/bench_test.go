package parquet

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// benchRecords builds n snapshot-like rows of a 10-column table of mixed types.
func benchRecords(n int) []record.Record {
	s := record.NewSchema("public", "orders", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "customer_id", Type: typ(record.KindInt32)},
		{Name: "amount", Type: dec(12, 2)},
		{Name: "price", Type: typ(record.KindFloat64)},
		{Name: "name", Type: typ(record.KindString)},
		{Name: "created_at", Type: typ(record.KindTimestampTZ)},
		{Name: "ship_date", Type: typ(record.KindDate)},
		{Name: "paid", Type: typ(record.KindBool)},
		{Name: "ref", Type: typ(record.KindUUID)},
		{Name: "note", Type: typ(record.KindString), Nullable: true},
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
			Op: record.OpRead, Schema: s, Pos: pos8(uint64(i + 1)), CommitTS: ts,
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

// BenchmarkWrite measures snapshot-style throughput to file:// with zstd: Write in
// batches of 1000 and a Flush every 1M rows and at the end, as the runtime does.
func BenchmarkWrite(b *testing.B) {
	const pool, batch, flushEvery = 100_000, 1000, 1_000_000
	recs := benchRecords(pool)
	// Positions must keep increasing across passes over the pool for the file names.
	d := openLocal(b, b.TempDir(), "bench")
	defer d.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	written := 0
	for written < b.N {
		k := min(batch, b.N-written)
		off := written % pool
		k = min(k, pool-off)
		if err := d.Write(ctx, recs[off:off+k]); err != nil {
			b.Fatal(err)
		}
		written += k
		if written%flushEvery == 0 {
			if err := d.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := d.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
	// CPU time is what a loaded machine does not distort: rows per CPU-second of
	// this process (zstd and the writer run on the calling goroutine, so this is
	// close to single-core throughput).
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
