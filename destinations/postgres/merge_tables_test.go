package postgres

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// TestMergeFlushOfSeveralTablesCommitsThemAll: one flush that merges changes of two
// source tables (each through its staging table) loads both, with their position.
func TestMergeFlushOfSeveralTablesCommitsThemAll(t *testing.T) {
	tg := newTarget(t)
	ctx := testCtx(t)
	d := tg.open(t, "two_tables", tg.config("merge", false))
	defer d.Close(ctx)
	cols := []record.Column{
		{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
		{Name: "v", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
	}
	a, b := record.NewSchema("src", "a", cols), record.NewSchema("src", "b", cols)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var recs []record.Record
	for i := int64(1); i <= 3; i++ {
		for _, s := range []*record.Schema{a, b} {
			recs = append(recs, record.Record{Op: record.OpCreate, Schema: s, After: []record.Value{i, fmt.Sprintf("%s%d", s.Table, i)},
				Pos: record.Position{0x02, byte(len(recs))}, CommitTS: ts})
		}
	}
	recs = append(recs, record.Record{Op: record.OpUpdate, Schema: b, After: []record.Value{int64(2), "b2'"}, Pos: record.Position{0x02, 0x10}, CommitTS: ts},
		record.Record{Op: record.OpDelete, Schema: a, Before: []record.Value{int64(3), nil}, Pos: record.Position{0x02, 0x11}, CommitTS: ts})
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := d.(connector.Transactional).FlushAt(ctx, record.Position{0x02, 0x11}); err != nil {
		t.Fatalf("a flush of two tables: %v", err)
	}
	for table, want := range map[string]string{"a": "1 a1, 2 a2", "b": "1 b1, 2 b2', 3 b3"} {
		var got []string
		for _, r := range tg.rows(t, fmt.Sprintf("SELECT id, v FROM %s.%s ORDER BY id", tg.schema, table)) {
			got = append(got, strings.Join(r, " "))
		}
		if strings.Join(got, ", ") != want {
			t.Errorf("table %s: %q, want %q", table, strings.Join(got, ", "), want)
		}
	}
	if got := tg.rows(t, fmt.Sprintf("SELECT position FROM %s._connectd_offsets WHERE connector = 'two_tables'", tg.schema)); len(got) != 1 || got[0][0] != "0211" {
		t.Errorf("offsets row: %v, want position 0211", got)
	}
	// A flush of inserts only into both tables: each asks the target for its keys
	// through a staging table of its own.
	ins := []record.Record{
		{Op: record.OpCreate, Schema: a, After: []record.Value{int64(4), "a4"}, Pos: record.Position{0x02, 0x12}, CommitTS: ts},
		{Op: record.OpCreate, Schema: b, After: []record.Value{int64(4), "b4"}, Pos: record.Position{0x02, 0x13}, CommitTS: ts},
	}
	if err := d.Write(ctx, ins); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("a flush of inserts into two tables: %v", err)
	}
	for _, table := range []string{"a", "b"} {
		if got := tg.rows(t, fmt.Sprintf("SELECT v FROM %s.%s WHERE id = 4", tg.schema, table)); len(got) != 1 || got[0][0] != table+"4" {
			t.Errorf("table %s, key 4: %v", table, got)
		}
	}
}
