package parquet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/record"
)

// changeStream is a deterministic stream of records over three tables, two of them
// changing schema once, spanning three UTC dates: what a source would emit again,
// position for position, when replaying.
func changeStream(n int) []record.Record {
	orders := record.NewSchema("public", "orders", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "amount", Type: dec(12, 2)},
	})
	orders2 := record.NewSchema("public", "orders", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "amount", Type: dec(12, 2)},
		{Name: "note", Type: typ(record.KindString), Nullable: true},
	})
	items := record.NewSchema("public", "items", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "tags", Type: list(typ(record.KindString))},
	})
	users := record.NewSchema("crm", "users", []record.Column{
		{Name: "id", Type: typ(record.KindUUID), Key: true},
		{Name: "name", Type: typ(record.KindString)},
	})
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 1, 31, 20, 0, 0, 0, time.UTC)
	recs := make([]record.Record, n)
	for i := range recs {
		ts := start.Add(time.Duration(i) * (60 * time.Hour / time.Duration(n)))
		r := record.Record{Op: record.OpCreate, Pos: pos8(uint64(1000 + i*3)), CommitTS: ts, TxID: fmt.Sprint(i / 4)}
		switch rng.IntN(3) {
		case 0:
			r.Schema = orders
			r.After = []record.Value{int64(i), record.Decimal(fmt.Sprintf("%d.%02d", i, i%100))}
			if i > n/2 {
				r.Schema = orders2
				r.After = append(r.After, "v2")
			}
		case 1:
			r.Schema = items
			r.After = []record.Value{int64(i), []record.Value{"a", fmt.Sprint(i)}}
			if i%7 == 0 {
				r.Op, r.Before, r.After = record.OpDelete, []record.Value{int64(i - 1), nil}, nil
			}
		default:
			var u record.UUID
			u[15] = byte(i)
			u[14] = byte(i >> 8)
			r.Schema = users
			r.After = []record.Value{u, strings.Repeat("x", i%5)}
		}
		recs[i] = r
	}
	return recs
}

// runOnce plays recs through a destination, flushing after each cut (cuts are
// record counts within recs), and returns the index after the last flushed record.
// It writes the records after the last cut too but never flushes them: the crash.
func runOnce(t *testing.T, dir string, recs []record.Record, cuts []int, writeChunk int) {
	t.Helper()
	ctx := context.Background()
	d := openLocal(t, dir, "replay")
	prev := 0
	write := func(from, to int) {
		for i := from; i < to; i += writeChunk {
			if err := d.Write(ctx, recs[i:min(i+writeChunk, to)]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range cuts {
		write(prev, c)
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		prev = c
	}
	write(prev, len(recs))
	if err := d.Close(ctx); err != nil { // crash: whatever was not flushed is lost
		t.Fatal(err)
	}
}

// randomCuts returns sorted flush points in (from, to].
func randomCuts(rng *rand.Rand, from, to, k int) []int {
	seen := map[int]bool{}
	var cuts []int
	for len(cuts) < k {
		c := from + 1 + rng.IntN(to-from)
		if !seen[c] {
			seen[c] = true
			cuts = append(cuts, c)
		}
	}
	for i := range cuts {
		for j := i + 1; j < len(cuts); j++ {
			if cuts[j] < cuts[i] {
				cuts[i], cuts[j] = cuts[j], cuts[i]
			}
		}
	}
	return cuts
}

// TestReplayAfterCrashRewritesSameFiles: records are written with some flush cut
// points, the process "crashes" (Close without Flush) with more written, and a new
// destination replays from the last committed position with different cut points.
// The committed position is either the last flush, or the one before it (the crash
// came after the files were durable but before the offset was committed). Across
// every file in the lake each position appears exactly once.
func TestReplayAfterCrashRewritesSameFiles(t *testing.T) {
	const n = 3000
	recs := changeStream(n)
	db := lakedb.DuckDB(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := 0; trial < 8; trial++ {
		dir := t.TempDir()
		cuts := randomCuts(rng, 0, n-1, 1+rng.IntN(5))
		runOnce(t, dir, recs, cuts, 1+rng.IntN(300))
		// The last committed position: the last flush, or one flush earlier.
		committed := cuts[len(cuts)-1]
		if trial%2 == 1 {
			committed = 0
			if len(cuts) > 1 {
				committed = cuts[len(cuts)-2]
			}
		}
		// Replay: a source resumes after the committed position; new cut points,
		// and the final flush of the catch-up.
		replay := recs[committed:]
		rcuts := append(randomCuts(rng, 0, len(replay)-1, 1+rng.IntN(4)), len(replay))
		runOnce(t, dir, replay, rcuts, 1+rng.IntN(300))

		got := queryStrings(t, db, "SELECT count(*), count(DISTINCT _pos), min(_pos), max(_pos) FROM "+lakedb.ParquetTree(dir))[0]
		want := []string{fmt.Sprint(n), fmt.Sprint(n), recs[0].Pos.String(), recs[n-1].Pos.String()}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("trial %d (cuts %v, committed %d, replay cuts %v): count, distinct, min, max = %v, want %v",
				trial, cuts, committed, rcuts, got, want)
		}
		// Every row is the record it claims to be: its partition is its commit date.
		bad := queryStrings(t, db, "SELECT count(*) FROM "+lakedb.ParquetTree(dir)+" WHERE CAST(_commit_ts AT TIME ZONE 'UTC' AS DATE) <> date")[0][0]
		if bad != "0" {
			t.Fatalf("trial %d: %s rows in the wrong date partition", trial, bad)
		}
	}
}

// TestSchemaChangeStartsNewFile: records of two schema versions of one table in one
// batch go to two files, each readable with its own columns.
func TestSchemaChangeStartsNewFile(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "ddl")
	v1 := record.NewSchema("public", "t", []record.Column{{Name: "id", Type: typ(record.KindInt32)}})
	v2 := record.NewSchema("public", "t", []record.Column{
		{Name: "id", Type: typ(record.KindInt64)}, // widened
		{Name: "label", Type: typ(record.KindString)},
	})
	ctx := context.Background()
	err := d.Write(ctx, []record.Record{
		{Op: record.OpCreate, Schema: v1, After: []record.Value{int32(1)}, Pos: pos8(1), CommitTS: day1},
		{Op: record.OpCreate, Schema: v1, After: []record.Value{int32(2)}, Pos: pos8(2), CommitTS: day1},
		{Op: record.OpCreate, Schema: v2, After: []record.Value{int64(3), "three"}, Pos: pos8(3), CommitTS: day1},
		{Op: record.OpUpdate, Schema: v2, After: []record.Value{int64(1), "one"}, Pos: pos8(4), CommitTS: day1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	files := parquetFiles(t, dir)
	want := "public/t/date=2026-03-04/0000000000000001.parquet public/t/date=2026-03-04/0000000000000003.parquet"
	if strings.Join(files, " ") != want {
		t.Fatalf("files = %v, want %s", files, want)
	}
	db := lakedb.DuckDB(t)
	got := queryStrings(t, db, "SELECT CAST(id AS VARCHAR), label, _pos FROM "+lakedb.ParquetTree(dir)+" ORDER BY _pos")
	wantRows := [][]string{
		{"1", "NULL", "0000000000000001"}, {"2", "NULL", "0000000000000002"},
		{"3", "three", "0000000000000003"}, {"1", "one", "0000000000000004"},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantRows) {
		t.Errorf("rows = %v, want %v", got, wantRows)
	}
	desc := queryStrings(t, db, "DESCRIBE SELECT * FROM read_parquet("+sqlString(dir+"/"+strings.Fields(want)[0])+")")
	if desc[0][0] != "id" || desc[0][1] != "INTEGER" || desc[1][0] != "_op" {
		t.Errorf("v1 file columns = %v, want id INTEGER then the metadata columns", desc)
	}
}

// TestStagedFilesAreInvisibleBeforeFlush: before Flush nothing matching *.parquet
// exists anywhere under the root (DuckDB's glob sees nothing), and Close leaves
// nothing behind.
func TestStagedFilesAreInvisibleBeforeFlush(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "staging")
	ctx := context.Background()
	recs := changeStream(500)
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if files := parquetFiles(t, dir); len(files) != 0 {
		t.Fatalf("before Flush, parquet files are visible: %v", files)
	}
	db := lakedb.DuckDB(t)
	globbed := queryStrings(t, db, "SELECT count(*) FROM glob("+sqlString(dir+"/**/*.parquet")+")")[0][0]
	if globbed != "0" {
		t.Fatalf("DuckDB's glob finds %s files before Flush", globbed)
	}
	staged := queryStrings(t, db, "SELECT count(*) FROM glob("+sqlString(dir+"/**")+") WHERE file LIKE '%.tmp'")[0][0]
	if staged == "0" {
		t.Fatalf("no staging file under %s: the test would prove nothing", dir)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if files := parquetFiles(t, dir); len(files) == 0 {
		t.Fatal("after Flush, no parquet files")
	}
	if err := d.Write(ctx, recs[:10]); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	left := queryStrings(t, db, "SELECT count(*) FROM glob("+sqlString(dir+"/**")+") WHERE file LIKE '%.tmp'")[0][0]
	if left != "0" {
		t.Errorf("%s staging files left after Close", left)
	}
}

// TestLargeFileHasBoundedRowGroups: a file bigger than one row group is written as
// several row groups of at most rowGroupRows rows, and reads back whole.
func TestLargeFileHasBoundedRowGroups(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "big")
	ctx := context.Background()
	const n = 300_000
	recs := benchRecords(n)
	for i := 0; i < n; i += 5000 {
		if err := d.Write(ctx, recs[i:i+5000]); err != nil {
			t.Fatal(err)
		}
	}
	rows, bytes := d.Buffered()
	if rows != n || bytes < 1<<20 {
		t.Errorf("Buffered() = %d rows, %d bytes; want %d rows and over 1 MiB", rows, bytes, n)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	files := parquetFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("files = %v, want one", files)
	}
	f, err := os.Open(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	groups := pf.RowGroups()
	if len(groups) < 3 {
		t.Errorf("%d row groups for %d rows, want at least 3", len(groups), n)
	}
	for i, g := range groups {
		if g.NumRows() > rowGroupRows {
			t.Errorf("row group %d has %d rows, over %d", i, g.NumRows(), rowGroupRows)
		}
	}
	db := lakedb.DuckDB(t)
	got := queryStrings(t, db, "SELECT count(*), count(DISTINCT _pos), CAST(sum(id) AS VARCHAR) FROM "+lakedb.ParquetTree(dir))[0]
	if want := fmt.Sprint([]any{n, n, n * (n - 1) / 2}); fmt.Sprint(got) != want {
		t.Errorf("count, distinct, sum = %v, want %v", got, want)
	}
}

// TestReplayWithOtherNullabilityWritesSameFiles: a source that describes replayed
// records with other nullability or key flags than the first time (the postgres
// source after an ALTER TABLE ... DROP NOT NULL, or a primary key changed, between
// the first run and the replay) still writes them to the same file names, so the
// replay replaces the first run's files instead of adding a second copy.
func TestReplayWithOtherNullabilityWritesSameFiles(t *testing.T) {
	strict := record.NewSchema("public", "t", []record.Column{
		{Name: "id", Type: typ(record.KindInt32), Key: true},
		{Name: "note", Type: typ(record.KindString)},
	})
	loose := record.NewSchema("public", "t", []record.Column{
		{Name: "id", Type: typ(record.KindInt32), Nullable: true},
		{Name: "note", Type: typ(record.KindString), Nullable: true, Key: true},
	})
	recs := func(first, rest *record.Schema) []record.Record {
		out := make([]record.Record, 6)
		for i := range out {
			s := first
			if i >= 3 {
				s = rest
			}
			out[i] = record.Record{Op: record.OpCreate, Schema: s, After: []record.Value{int32(i), nil}, Pos: pos8(uint64(i + 1)), CommitTS: day1}
		}
		return out
	}
	dir := t.TempDir()
	ctx := context.Background()
	for _, run := range [][]record.Record{recs(strict, loose), recs(loose, loose)} {
		d := openLocal(t, dir, "nullability")
		if err := d.Write(ctx, run); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if files := parquetFiles(t, dir); strings.Join(files, " ") != "public/t/date=2026-03-04/0000000000000001.parquet" {
		t.Fatalf("files = %v, want the one file both runs write", files)
	}
	db := lakedb.DuckDB(t)
	got := queryStrings(t, db, "SELECT count(*), count(DISTINCT _pos) FROM "+lakedb.ParquetTree(dir))[0]
	if strings.Join(got, " ") != "6 6" {
		t.Errorf("count, distinct _pos = %v, want 6 6", got)
	}
}
