package postgres

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
)

// BenchmarkSnapshotVsCopy reads one table with the snapshot path and with a plain
// COPY TO STDOUT into io.Discard, and reports both rates and their ratio.
func BenchmarkSnapshotVsCopy(b *testing.B) {
	const rows = 500000
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgServer(b).DSN)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint PRIMARY KEY, name text, amount numeric(12,2), at timestamptz, flag boolean, qty int)`); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO bench SELECT i, 'customer ' || i, (i % 100000) / 100.0, now() - i * interval '1 second', i % 2 = 0, i % 1000 FROM generate_series(1, $1::int) i`, rows); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE bench`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var copyDur, snapDur time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT id, name, amount, at, flag, qty FROM public.bench) TO STDOUT"); err != nil {
			b.Fatal(err)
		}
		copyDur += time.Since(start)

		p := connector.SourceParams{Name: "bench", Config: config.Source{Type: "postgres", Config: &Config{
			DSN: pgServer(b).DSN, Tables: []string{"public.bench"}, Snapshot: config.SnapshotInitialOnly}},
			Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
		src, err := Kind{}.Open(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		start = time.Now()
		err = src.Read(ctx, nil, func(_ context.Context, recs []record.Record) error { n += len(recs); return nil })
		snapDur += time.Since(start)
		src.Close(ctx)
		if err != nil || n != rows {
			b.Fatalf("snapshot: %d rows, %v", n, err)
		}
	}
	copyRate := float64(rows*b.N) / copyDur.Seconds()
	snapRate := float64(rows*b.N) / snapDur.Seconds()
	b.ReportMetric(copyRate, "copy-rows/s")
	b.ReportMetric(snapRate, "snapshot-rows/s")
	b.ReportMetric(snapRate/copyRate, "ratio")
}
