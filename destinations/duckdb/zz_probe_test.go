package duckdb

import (
	"syscall"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

func TestZZProbe(t *testing.T) {
	ctx := context.Background()
	c, err := openConn(ctx, newPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	n := 300000
	cols := []warehouse.LoadColumn{{"id", kind(record.KindInt64)}, {"customer", kind(record.KindInt32)}, {"qty", kind(record.KindInt16)},
		{"price", record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}}, {"status", kind(record.KindString)}, {"note", kind(record.KindString)},
		{"created", kind(record.KindTimestampTZ)}, {"updated", kind(record.KindTimestampTZ)}, {"_pos", kind(record.KindString)}, {"_commit_ts", kind(record.KindTimestampTZ)}}
	rows := make([][]record.Value, n)
	for i := range rows {
		ts := record.Timestamp(1772582400000000 + int64(i)*1000)
		rows[i] = []record.Value{int64(i), int32(i % 50000), int16(i % 20), record.Decimal(fmt.Sprintf("%d.%02d", i%100000, i%100)), "paid",
			fmt.Sprintf("note %d for item %d, version %d", i%977, i, 0), ts, ts, fmt.Sprintf("%016x", i), ts}
	}
	ddl := `id BIGINT %s, customer INTEGER, qty SMALLINT, price DECIMAL(12,2), status VARCHAR, note VARCHAR, created TIMESTAMPTZ, updated TIMESTAMPTZ, _pos VARCHAR NOT NULL, _commit_ts TIMESTAMPTZ`
	for _, v := range []struct{ name, key string }{{"pk", "PRIMARY KEY"}, {"nokey", ""}, {"pk2", "PRIMARY KEY"}, {"nokey2", ""}, {"pk5", "PRIMARY KEY"}, {"nokey5", ""}} {
		if _, err := c.Exec(ctx, "CREATE TABLE main."+v.name+" ("+fmt.Sprintf(ddl, v.key)+")"); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		c0 := cpu()
		if err := c.Begin(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Load(ctx, "main", v.name, cols, rows); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: load %v commit %v cpu %v", v.name, t1.Sub(t0), time.Since(t1), cpu()-c0)
	}
	for _, q := range []string{"CREATE TABLE main.pk3 (" + fmt.Sprintf(ddl, "PRIMARY KEY") + ")", "INSERT INTO main.pk3 SELECT * FROM main.nokey", "CREATE TABLE main.nk3 AS SELECT * FROM main.nokey", "CREATE TABLE main.nk4 (" + fmt.Sprintf(ddl, "") + ")", "INSERT INTO main.nk4 SELECT * FROM main.nokey"} {
		t0 := time.Now()
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", q[:30], time.Since(t0))
	}
	t0 := time.Now()
	src, _ := newBatches(cols, rows)
	for src.Next() {
	}
	t.Logf("batches only: %v", time.Since(t0))
}

func BenchmarkZZBatches(b *testing.B) {
	n := 300000
	cols := []warehouse.LoadColumn{{"id", kind(record.KindInt64)}, {"customer", kind(record.KindInt32)}, {"qty", kind(record.KindInt16)},
		{"price", record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}}, {"status", kind(record.KindString)}, {"note", kind(record.KindString)},
		{"created", kind(record.KindTimestampTZ)}, {"updated", kind(record.KindTimestampTZ)}, {"_pos", kind(record.KindString)}, {"_commit_ts", kind(record.KindTimestampTZ)}}
	rows := make([][]record.Value, n)
	for i := range rows {
		ts := record.Timestamp(1772582400000000 + int64(i)*1000)
		rows[i] = []record.Value{int64(i), int32(i % 50000), int16(i % 20), record.Decimal(fmt.Sprintf("%d.%02d", i%100000, i%100)), "paid",
			fmt.Sprintf("note %d for item %d, version %d", i%977, i, 0), ts, ts, fmt.Sprintf("%016x", i), ts}
	}
	b.ResetTimer()
	for range b.N {
		src, _ := newBatches(cols, rows)
		for src.Next() {
		}
		src.Release()
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
