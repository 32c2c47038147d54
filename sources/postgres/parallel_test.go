package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
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

// TestPlanSplitsByKeyByCtidOrInOnePieceWithAWarning plans tables of each kind and
// checks the split: integer key ranges, sampled text key bounds, ctid page ranges for
// a table without a key, one chunk for a small table, and one chunk with a warning for
// a partitioned table without a key (no heap of its own to split).
func TestPlanSplitsByKeyByCtidOrInOnePieceWithAWarning(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn,
		`CREATE TABLE plan_int (id int PRIMARY KEY, v text)`,
		`INSERT INTO plan_int SELECT i, 'v' FROM generate_series(101, 10100) i`,
		`CREATE TABLE plan_text (k text PRIMARY KEY)`,
		`INSERT INTO plan_text SELECT md5(i::text) FROM generate_series(1, 10000) i`,
		`CREATE TABLE plan_heap (a int, b text)`, `ALTER TABLE plan_heap REPLICA IDENTITY FULL`,
		`INSERT INTO plan_heap SELECT i, repeat('x', 50) FROM generate_series(1, 10000) i`,
		`CREATE TABLE plan_small (id int PRIMARY KEY)`, `INSERT INTO plan_small VALUES (1), (2)`,
		`CREATE TABLE plan_parts (a int, b text) PARTITION BY RANGE (a)`,
		`CREATE TABLE plan_parts_1 PARTITION OF plan_parts FOR VALUES FROM (0) TO (5000)`,
		`CREATE TABLE plan_parts_2 PARTITION OF plan_parts FOR VALUES FROM (5000) TO (20000)`,
		`ALTER TABLE plan_parts REPLICA IDENTITY FULL`, `ALTER TABLE plan_parts_1 REPLICA IDENTITY FULL`, `ALTER TABLE plan_parts_2 REPLICA IDENTITY FULL`,
		`INSERT INTO plan_parts SELECT i, 'p' FROM generate_series(1, 10000) i`,
		`ANALYZE plan_int, plan_text, plan_heap, plan_small, plan_parts`)
	p := params(t, "plan", pgServer(t).DSN, []string{"public.plan_*"}, config.SnapshotInitialOnly, connector.ModeStream)
	var warns []string
	var mu sync.Mutex
	p.Logger = slog.New(warnLog{Handler: p.Logger.Handler(), mu: &mu, msgs: &warns})
	src := openSource(t, p)
	ctx := testCtx(t)
	if err := src.open(ctx); err != nil {
		t.Fatal(err)
	}
	tables, err := src.selectTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(tables))
	for i, tb := range tables {
		names[i] = tb.qualified()
	}
	tbs, err := src.snapTables(ctx, names, tables)
	if err != nil {
		t.Fatal(err)
	}
	plans := map[string]tablePlan{}
	for i := range tbs {
		pl, err := src.planTable(ctx, &tbs[i], 2500)
		if err != nil {
			t.Fatal(err)
		}
		plans[tbs[i].t.name] = pl
	}
	if got, want := plans["plan_int"], (tablePlan{By: splitKey, Bounds: [][]string{{"2601"}, {"5101"}, {"7601"}}}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan_int: %+v, want %+v", got, want)
	}
	if pl := plans["plan_text"]; pl.By != splitKey || len(pl.Bounds) < 2 || len(pl.Bounds) > 3 {
		t.Errorf("plan_text: %+v, want about 4 chunks by sampled keys", pl)
	} else {
		for i := 1; i < len(pl.Bounds); i++ {
			if pl.Bounds[i][0] <= pl.Bounds[i-1][0] {
				t.Errorf("plan_text bounds not increasing: %v", pl.Bounds)
			}
		}
	}
	if pl := plans["plan_heap"]; pl.By != splitCtid || len(pl.Pages) != 3 || pl.Relfilenode == 0 {
		t.Errorf("plan_heap: %+v, want 4 chunks by ctid with the relfilenode", pl)
	}
	if pl := plans["plan_small"]; pl.chunks() != 1 || pl.By != splitKey {
		t.Errorf("plan_small: %+v, want one chunk in key order", pl)
	}
	if pl := plans["plan_parts"]; pl.chunks() != 1 || pl.By != splitWhole {
		t.Errorf("plan_parts: %+v, want one chunk read whole", pl)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warns) != 1 || !strings.Contains(warns[0], "read in one chunk") || !strings.Contains(warns[0], "public.plan_parts") {
		t.Errorf("warnings %q, want one saying public.plan_parts is read in one chunk", warns)
	}
}

// warnLog keeps the warnings of a source's log, with their table.
type warnLog struct {
	slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (h warnLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		m := r.Message
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "table" {
				m += " " + a.Value.String()
			}
			return true
		})
		h.mu.Lock()
		*h.msgs = append(*h.msgs, m)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnLog) WithAttrs(as []slog.Attr) slog.Handler {
	return warnLog{Handler: h.Handler.WithAttrs(as), mu: h.mu, msgs: h.msgs}
}

func (h warnLog) WithGroup(name string) slog.Handler {
	return warnLog{Handler: h.Handler.WithGroup(name), mu: h.mu, msgs: h.msgs}
}
