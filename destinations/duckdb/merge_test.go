package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// The source table of the merge workload: a key of two columns, a list, two columns
// an update may leave unsent (Unchanged, as PostgreSQL does for TOAST values), and
// in the second half of the workload one column more.
var (
	mergeCols = []record.Column{
		{Name: "region", SourceType: "text", Type: kind(record.KindString), Key: true},
		{Name: "id", SourceType: "int", Type: kind(record.KindInt32), Key: true},
		{Name: "name", SourceType: "text", Type: kind(record.KindString), Nullable: true},
		{Name: "qty", SourceType: "bigint", Type: kind(record.KindInt64), Nullable: true},
		{Name: "amount", SourceType: "numeric(12,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
		{Name: "note", SourceType: "text", Type: kind(record.KindString), Nullable: true},
		{Name: "tags", SourceType: "text[]", Type: list(kind(record.KindString)), Nullable: true},
	}
	mergeV1 = record.NewSchema("shop", "orders", mergeCols)
	mergeV2 = record.NewSchema("shop", "orders", append(slices.Clone(mergeCols),
		record.Column{Name: "extra", SourceType: "timestamptz", Type: kind(record.KindTimestampTZ), Nullable: true}))
)

// modelRow is a row of the target table as the records say it must be.
type modelRow struct {
	vals      map[string]record.Value
	pos       record.Position
	ts        time.Time
	deleted   bool
	deletedAt record.Value // a Timestamp, or nil
}

// model applies records one at a time, as the source applied them: the table the
// destination must hold once it has loaded them, whatever the batches and flushes.
type model struct {
	soft bool
	rows map[string]*modelRow
}

func newModel(soft bool) *model { return &model{soft: soft, rows: map[string]*modelRow{}} }

func keyOf(region string, id int32) string { return fmt.Sprintf("%s/%d", region, id) }

func (m *model) live() []string {
	var out []string
	for k, r := range m.rows {
		if !r.deleted {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) apply(r *record.Record) {
	if r.Op == record.OpTruncate {
		for k, row := range m.rows {
			switch {
			case !m.soft:
				delete(m.rows, k)
			case !row.deleted:
				row.deleted, row.deletedAt, row.pos, row.ts = true, record.TimestampOf(r.CommitTS), r.Pos, r.CommitTS
			}
		}
		return
	}
	img := r.Row()
	k := keyOf(img[0].(string), img[1].(int32))
	old := m.rows[k]
	if r.Op == record.OpDelete {
		if !m.soft {
			delete(m.rows, k)
			return
		}
		old.deleted, old.deletedAt, old.pos, old.ts = true, record.TimestampOf(r.CommitTS), r.Pos, r.CommitTS
		return
	}
	row := &modelRow{vals: map[string]record.Value{}, pos: r.Pos, ts: r.CommitTS}
	if old != nil {
		// Columns the record does not carry keep the target's value.
		for c, v := range old.vals {
			row.vals[c] = v
		}
	}
	for i, c := range r.Schema.Columns {
		if !slices.Contains(r.Unchanged, c.Name) {
			row.vals[c.Name] = img[i]
		}
	}
	m.rows[k] = row
}

// workload generates n records of inserts, updates (some leaving note and tags
// unsent), deletes, key changes (a delete and an insert) and truncates, switching to
// the schema with one column more halfway.
func workload(rnd *rand.Rand, soft bool, n int) []record.Record {
	m := newModel(soft)
	var recs []record.Record
	seq := 0
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	next := func(op record.Op, schema *record.Schema) record.Record {
		seq += 1 + rnd.IntN(3)
		return record.Record{Op: op, Schema: schema, Pos: pos(seq), CommitTS: base.Add(time.Duration(seq) * 1001 * time.Microsecond)}
	}
	image := func(schema *record.Schema, region string, id int32) []record.Value {
		var tags record.Value
		if rnd.IntN(4) > 0 {
			l := make([]record.Value, rnd.IntN(4))
			for i := range l {
				l[i] = fmt.Sprintf("t%d", rnd.IntN(10))
			}
			tags = l
		}
		var qty record.Value
		if rnd.IntN(5) > 0 {
			qty = rnd.Int64N(1_000_000) - 500_000
		}
		img := []record.Value{region, id, fmt.Sprintf("name %d", rnd.IntN(1000)), qty,
			record.Decimal(fmt.Sprintf("%d.%02d", rnd.IntN(2_000_000)-1_000_000, rnd.IntN(100))),
			strings.Repeat(fmt.Sprintf("note %d ", rnd.IntN(100)), 1+rnd.IntN(20)), tags}
		if schema == mergeV2 {
			var extra record.Value
			if rnd.IntN(3) > 0 {
				extra = record.Timestamp(rnd.Int64N(4_000_000_000_000_000) - 1_000_000_000_000_000)
			}
			img = append(img, extra)
		}
		return img
	}
	keyImage := func(schema *record.Schema, k string) []record.Value {
		region, id, _ := strings.Cut(k, "/")
		var n int32
		fmt.Sscan(id, &n)
		img := make([]record.Value, len(schema.Columns))
		img[0], img[1] = region, n
		return img
	}
	newKey := func() (string, int32) {
		for {
			region, id := []string{"eu", "us", "ap"}[rnd.IntN(3)], int32(rnd.IntN(60)-10)
			if r, ok := m.rows[keyOf(region, id)]; !ok || r.deleted {
				return region, id
			}
		}
	}
	add := func(r record.Record) {
		m.apply(&r)
		recs = append(recs, r)
	}
	for len(recs) < n {
		schema := mergeV1
		if len(recs) >= n/2 {
			schema = mergeV2
		}
		live := m.live()
		op := rnd.IntN(100)
		if len(live) == 0 {
			op = 0
		}
		switch {
		case op < 30 || op >= 98:
			r := next(record.OpCreate, schema)
			region, id := newKey()
			r.After = image(schema, region, id)
			add(r)
		case op < 65:
			r := next(record.OpUpdate, schema)
			k := live[rnd.IntN(len(live))]
			img := keyImage(schema, k)
			r.After = image(schema, img[0].(string), img[1].(int32))
			if rnd.IntN(5) < 2 {
				for _, c := range []string{"note", "tags"} {
					if rnd.IntN(2) == 0 || len(r.Unchanged) == 0 && c == "tags" {
						r.Unchanged = append(r.Unchanged, c)
						r.After[schema.Index(c)] = nil
					}
				}
			}
			add(r)
		case op < 80:
			r := next(record.OpDelete, schema)
			r.Before = keyImage(schema, live[rnd.IntN(len(live))])
			add(r)
		case op < 97:
			// A key change: the old key deleted and the new one inserted, in one transaction.
			del := next(record.OpDelete, schema)
			del.Before = keyImage(schema, live[rnd.IntN(len(live))])
			ins := next(record.OpCreate, schema)
			region, id := newKey()
			ins.After = image(schema, region, id)
			ins.CommitTS = del.CommitTS
			add(del)
			add(ins)
		default: // 97: a truncate
			add(next(record.OpTruncate, schema))
		}
	}
	return recs
}

func modelOf(recs []record.Record, soft bool) *model {
	m := newModel(soft)
	for i := range recs {
		m.apply(&recs[i])
	}
	return m
}

// TestMergeKeepsAReplicaThroughRandomBatchesFlushesAndCrashes loads random workloads
// in random batches with random flushes and crashes (a close without a flush, a
// reopen, a replay from the committed position or from before it). At every crash
// the file must hold exactly the records up to the position it committed; at the end
// the table must equal the model row for row, and a replay of everything must change
// nothing.
func TestMergeKeepsAReplicaThroughRandomBatchesFlushesAndCrashes(t *testing.T) {
	for _, soft := range []bool{false, true} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("soft=%t/seed=%d", soft, seed), func(t *testing.T) {
				mergeWorkload(t, soft, seed)
			})
		}
	}
}

func mergeWorkload(t *testing.T, soft bool, seed uint64) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	recs := workload(rnd, soft, 700)
	path := newPath(t)
	cfg := &Config{Path: path, SoftDelete: soft}
	after := func(c record.Position) int {
		i := 0
		for i < len(recs) && c != nil && recs[i].Pos.Compare(c) <= 0 {
			i++
		}
		return i
	}

	dst := open(ctx, t, "merge", cfg)
	crashes, flushes := 0, 0
	for i := 0; i < len(recs); {
		switch x := rnd.IntN(100); {
		case x < 6:
			crashes++
			dst.Close(ctx)
			// The file alone: what it committed, and exactly that.
			committed := readCommitted(t, path, "merge")
			if got, want := readTable(t, path, soft), modelOf(recs[:after(committed)], soft); !sameTable(t, got, want) {
				t.Fatalf("after crash %d (committed %s): the table is not the model of the committed records", crashes, committed)
			}
			dst = open(ctx, t, "merge", cfg)
			c, err := dst.Committed(ctx)
			if err != nil || c.Compare(committed) != 0 {
				t.Fatalf("Committed = %s, %v; the offsets table holds %s", c, err, committed)
			}
			i = after(c)
			if rnd.IntN(3) == 0 {
				i = rnd.IntN(i + 1) // a replay from further back: already loaded, skipped
			}
		case x < 24:
			flushes++
			if err := dst.Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}
			c, _ := dst.Committed(ctx)
			if got, want := readTable(t, path, soft), modelOf(recs[:after(c)], soft); !sameTable(t, got, want) {
				t.Fatalf("after flush %d (committed %s): the table is not the model of the committed records", flushes, c)
			}
		default:
			n := min(i+1+rnd.IntN(25), len(recs))
			if err := dst.Write(ctx, recs[i:n]); err != nil {
				t.Fatalf("write records %d..%d: %v", i, n-1, err)
			}
			i = n
		}
	}
	if err := dst.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dst.Close(ctx)
	t.Logf("%d records, %d flushes, %d crashes", len(recs), flushes, crashes)
	final := readTable(t, path, soft)
	want := modelOf(recs, soft)
	if !sameTable(t, final, want) {
		t.Fatal("after the last flush the table is not the model")
	}
	if len(want.rows) == 0 {
		t.Fatal("the workload left an empty table: it proves little")
	}

	// A replay of everything, in other batches, changes nothing.
	dst = open(ctx, t, "merge", cfg)
	for i := 0; i < len(recs); {
		n := min(i+1+rnd.IntN(100), len(recs))
		if err := dst.Write(ctx, recs[i:n]); err != nil {
			t.Fatal(err)
		}
		i = n
	}
	if err := dst.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dst.Close(ctx)
	if again := readTable(t, path, soft); !slices.Equal(again, final) {
		t.Fatalf("a replay of flushed records changed the table:\nbefore %v\nafter  %v", final, again)
	}
}

// readCommitted reads the connector's position from the offsets table.
func readCommitted(t *testing.T, path, name string) record.Position {
	t.Helper()
	db := readDB(t, path)
	defer db.Close()
	var p string
	err := db.QueryRow("SELECT position FROM main."+warehouse.OffsetsTable+" WHERE connector = $1", name).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) || err != nil && strings.Contains(err.Error(), "does not exist") {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	c, err := record.ParsePosition(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readTable reads the target table, one line of text per row in key order (nil
// when the table does not exist yet).
func readTable(t *testing.T, path string, soft bool) []string {
	t.Helper()
	db := readDB(t, path)
	defer db.Close()
	var cols []string
	rows, err := db.Query("SELECT column_name FROM duckdb_columns() WHERE table_name = 'orders' ORDER BY column_index")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c string
		rows.Scan(&c)
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) == 0 {
		return nil
	}
	sel := []string{"_pos", "_commit_ts"}
	if soft {
		sel = append(sel, "_deleted", "_deleted_at")
	}
	for _, c := range mergeV2.Columns {
		if slices.Contains(cols, c.Name) {
			sel = append(sel, `"`+c.Name+`"`)
		} else {
			sel = append(sel, "NULL")
		}
	}
	res, err := db.Query("SELECT " + strings.Join(sel, ", ") + " FROM main.orders ORDER BY region, id")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var out []string
	for res.Next() {
		got := make([]any, len(sel))
		ptrs := make([]any, len(sel))
		for i := range got {
			ptrs[i] = &got[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		meta := len(sel) - len(mergeV2.Columns)
		row := &modelRow{vals: map[string]record.Value{}, ts: got[1].(time.Time)}
		var err error
		if row.pos, err = record.ParsePosition(got[0].(string)); err != nil {
			t.Fatal(err)
		}
		if soft {
			row.deleted = got[2].(bool)
			if row.deletedAt, err = fromDuck(kind(record.KindTimestampTZ), got[3]); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range mergeV2.Columns {
			if row.vals[c.Name], err = fromDuck(c.Type, got[meta+i]); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, rowText(row, soft))
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rowText renders a row for comparison: decimals as numbers (the target pads them
// to the column's scale), times as microseconds.
func rowText(r *modelRow, soft bool) string {
	var b strings.Builder
	for _, c := range mergeV2.Columns {
		v := r.vals[c.Name]
		if d, ok := v.(record.Decimal); ok {
			v = decimalText(string(d))
		}
		if rat, ok := v.(interface{ FloatString(int) string }); ok {
			v = decimalText(rat.FloatString(2))
		}
		fmt.Fprintf(&b, "%s=%v ", c.Name, v)
	}
	fmt.Fprintf(&b, "_pos=%s _commit_ts=%d", r.pos, r.ts.UnixMicro())
	if soft {
		fmt.Fprintf(&b, " _deleted=%t _deleted_at=%v", r.deleted, r.deletedAt)
	}
	return b.String()
}

// decimalText drops a decimal's trailing fractional zeros.
func decimalText(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// sameTable compares the rows read back with the model's, reporting the first
// differences.
func sameTable(t *testing.T, got []string, m *model) bool {
	t.Helper()
	keys := make([]string, 0, len(m.rows))
	for k := range m.rows {
		keys = append(keys, k)
	}
	// The table's order: region, then id as a number.
	slices.SortFunc(keys, func(a, b string) int {
		ra, ia, _ := strings.Cut(a, "/")
		rb, ib, _ := strings.Cut(b, "/")
		if ra != rb {
			return strings.Compare(ra, rb)
		}
		var x, y int
		fmt.Sscan(ia, &x)
		fmt.Sscan(ib, &y)
		return x - y
	})
	want := make([]string, len(keys))
	for i, k := range keys {
		want[i] = rowText(m.rows[k], m.soft)
	}
	if slices.Equal(got, want) {
		return true
	}
	t.Errorf("the table has %d rows, the model %d", len(got), len(want))
	shown := 0
	for i := 0; i < max(len(got), len(want)) && shown < 5; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("row %d:\n table %s\n model %s", i, g, w)
			shown++
		}
	}
	return false
}
