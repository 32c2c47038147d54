package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// chunkLog keeps the "snapshot chunk read" lines of a source's log: which reader
// read which chunk of which table.
type chunkLog struct {
	slog.Handler
	mu    *sync.Mutex
	reads *[]chunkRead
}

type chunkRead struct {
	table         string
	chunk, reader int64
}

func (h chunkLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "snapshot chunk read" {
		var c chunkRead
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "table":
				c.table = a.Value.String()
			case "chunk":
				c.chunk = int64(a.Value.Uint64())
			case "reader":
				c.reader = a.Value.Int64()
			}
			return true
		})
		h.mu.Lock()
		*h.reads = append(*h.reads, c)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h chunkLog) WithAttrs(as []slog.Attr) slog.Handler {
	return chunkLog{Handler: h.Handler.WithAttrs(as), mu: h.mu, reads: h.reads}
}

func (h chunkLog) WithGroup(name string) slog.Handler {
	return chunkLog{Handler: h.Handler.WithGroup(name), mu: h.mu, reads: h.reads}
}

// TestParallelSnapshotEmitsEveryRowOnceInIncreasingPositions snapshots tables split
// by an integer key, by sampled text keys and by ctid with three readers, and checks
// that the chunks were shared among the readers, positions strictly increase across
// every batch, and the records are exactly the tables' rows.
func TestParallelSnapshotEmitsEveryRowOnceInIncreasingPositions(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn,
		`CREATE TABLE par_int (id bigint PRIMARY KEY, v text NOT NULL)`,
		// Keys bunched at both ends of the range: uneven chunks, all rows still.
		`INSERT INTO par_int SELECT CASE WHEN i % 2 = 0 THEN i ELSE 1000000000 + i END, 'v' || i FROM generate_series(1, 12000) i`,
		`CREATE TABLE par_text (k text PRIMARY KEY, n int NOT NULL)`,
		`INSERT INTO par_text SELECT md5(i::text), i FROM generate_series(1, 9000) i`,
		`CREATE TABLE par_nokey (a int, b text)`, `ALTER TABLE par_nokey REPLICA IDENTITY FULL`,
		`INSERT INTO par_nokey SELECT i, 'x' || i FROM generate_series(1, 7000) i`,
		`CREATE TABLE par_empty (id int PRIMARY KEY)`,
		`ANALYZE par_int, par_text, par_nokey`)
	p := params(t, "parallel", pgServer(t).DSN, []string{"public.par_*"}, config.SnapshotInitialOnly, connector.ModeStream)
	p.Config.Config.(*Config).SnapshotChunk = 1500
	p.Config.Config.(*Config).SnapshotParallel = 3
	var reads []chunkRead
	p.Logger = slog.New(chunkLog{Handler: p.Logger.Handler(), mu: &sync.Mutex{}, reads: &reads})
	p.State = &memState{}
	src := openSource(t, p)

	var batches [][]record.Record
	err := src.Read(testCtx(t), nil, func(_ context.Context, recs []record.Record) error {
		batches = append(batches, append([]record.Record(nil), recs...))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var prev record.Position
	got := map[string]int{}
	n := 0
	for bi, b := range batches {
		for i, rec := range b {
			if prev != nil && rec.Pos.Compare(prev) <= 0 {
				t.Fatalf("batch %d record %d at %s does not follow %s", bi, i, describePosition(rec.Pos, nil), describePosition(prev, nil))
			}
			prev = rec.Pos
			if rec.Op != record.OpRead {
				continue
			}
			n++
			got[rec.Table()+":"+fmt.Sprint(rec.After)]++
		}
	}
	if sp, ok := parseSnapshotPos(prev); !ok || !sp.done {
		t.Errorf("the last position %s is not the completion marker", describePosition(prev, nil))
	}
	want := map[string]int{}
	for _, q := range []struct{ table, sql string }{
		{"par_int", `SELECT id, v FROM par_int`},
		{"par_text", `SELECT k, n FROM par_text`},
		{"par_nokey", `SELECT a, b FROM par_nokey`},
	} {
		rows, err := conn.Query(testCtx(t), q.sql)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			want[q.table+":"+fmt.Sprint(vals)]++
		}
		rows.Close()
	}
	if n != 12000+9000+7000 {
		t.Errorf("read %d rows, the tables hold %d", n, 12000+9000+7000)
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("row %s read %d times, want %d", k, got[k], c)
			break
		}
	}
	for k := range got {
		if want[k] == 0 {
			t.Errorf("row %s read but not in the source", k)
			break
		}
	}

	chunks := map[string]int{}
	readers := map[int64]bool{}
	for _, r := range reads {
		chunks[r.table]++
		readers[r.reader] = true
	}
	for _, tb := range []string{"public.par_int", "public.par_text", "public.par_nokey"} {
		if chunks[tb] < 2 {
			t.Errorf("%s was read in %d chunks, want it split", tb, chunks[tb])
		}
	}
	if len(readers) < 2 {
		t.Errorf("chunks were read by %d readers, want them shared by several", len(readers))
	}
}
