package duckdb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// schemas of one source table as it changes.
func itemsSchema(cols ...record.Column) *record.Schema {
	return record.NewSchema("shop", "items", append([]record.Column{
		{Name: "id", SourceType: "bigint", Type: kind(record.KindInt64), Key: true},
		{Name: "name", SourceType: "text", Type: kind(record.KindString), Nullable: true},
	}, cols...))
}

var (
	qty32 = record.Column{Name: "qty", SourceType: "int", Type: kind(record.KindInt32), Nullable: true}
	qty64 = record.Column{Name: "qty", SourceType: "bigint", Type: kind(record.KindInt64), Nullable: true}
	score = record.Column{Name: "score", SourceType: "numeric(10,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}, Nullable: true}
)

func create(s *record.Schema, n int, vals ...record.Value) record.Record {
	return record.Record{Op: record.OpCreate, Schema: s, After: vals, Pos: pos(n), CommitTS: time.Unix(int64(n), 0).UTC()}
}

// writeFlush opens the destination, writes recs, flushes and closes; it returns the
// first error.
func writeFlush(ctx context.Context, t *testing.T, cfg *Config, recs ...record.Record) error {
	t.Helper()
	dst := open(ctx, t, "items", cfg)
	defer dst.Close(ctx)
	if err := dst.Write(ctx, recs); err != nil {
		return err
	}
	return dst.Flush(ctx)
}

// query reads rows of text from the file.
func query(t *testing.T, path, q string) []string {
	t.Helper()
	db := readDB(t, path)
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestANewSourceColumnIsAddedAndAWiderTypeWidened: a second schema with one column
// more and a wider integer adds the column and widens the other, in both modes; the
// rows loaded before keep their values and read NULL in the new column.
func TestANewSourceColumnIsAddedAndAWiderTypeWidened(t *testing.T) {
	for _, mode := range []string{"merge", "append"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			cfg := &Config{Path: newPath(t), Mode: mode}
			v1, v2 := itemsSchema(qty32), itemsSchema(qty64, score)
			if err := writeFlush(ctx, t, cfg, create(v1, 1, int64(1), "one", int32(10)), create(v1, 2, int64(2), "two", int32(20))); err != nil {
				t.Fatal(err)
			}
			if err := writeFlush(ctx, t, cfg, create(v2, 3, int64(3), "three", int64(1)<<40, record.Decimal("-12.50"))); err != nil {
				t.Fatal(err)
			}
			types := query(t, cfg.Path, `SELECT column_name || ' ' || data_type FROM duckdb_columns() WHERE table_name = 'items' AND column_name IN ('qty', 'score') ORDER BY column_index`)
			if want := []string{"qty BIGINT", "score DECIMAL(10,2)"}; strings.Join(types, ",") != strings.Join(want, ",") {
				t.Errorf("columns %v, want %v", types, want)
			}
			got := query(t, cfg.Path, `SELECT concat_ws(' ', id, name, qty, coalesce(score::VARCHAR, 'NULL')) FROM main.items ORDER BY id`)
			if want := []string{"1 one 10 NULL", "2 two 20 NULL", "3 three 1099511627776 -12.50"}; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("rows %q, want %q", got, want)
			}
			// The table as the catalog reads it back holds v2: nothing more to alter.
			if err := writeFlush(ctx, t, cfg, create(v2, 4, int64(4), "four", nil, nil)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSoftDeleteTurnedOnLaterAddsItsColumns: a merge table made with hard deletes
// gets _deleted (false for the rows it had) and _deleted_at when the config asks for
// soft deletes.
func TestSoftDeleteTurnedOnLaterAddsItsColumns(t *testing.T) {
	ctx := context.Background()
	cfg := &Config{Path: newPath(t)}
	s := itemsSchema()
	if err := writeFlush(ctx, t, cfg, create(s, 1, int64(1), "one"), create(s, 2, int64(2), "two")); err != nil {
		t.Fatal(err)
	}
	cfg.SoftDelete = true
	del := record.Record{Op: record.OpDelete, Schema: s, Before: []record.Value{int64(2), nil}, Pos: pos(3), CommitTS: time.Unix(3, 0).UTC()}
	if err := writeFlush(ctx, t, cfg, del); err != nil {
		t.Fatal(err)
	}
	got := query(t, cfg.Path, `SELECT concat_ws(' ', id, name, _deleted, coalesce(epoch(_deleted_at)::VARCHAR, 'NULL')) FROM main.items ORDER BY id`)
	if want := []string{"1 one false NULL", "2 two true 3.0"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestANarrowedTypeOrAChangedKeyStopsWithWhatToRun: changes the target cannot follow
// without losing data are permanent errors that say what to run.
func TestANarrowedTypeOrAChangedKeyStopsWithWhatToRun(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		before *record.Schema
		after  *record.Schema
		row    []record.Value
		want   []string
	}{
		{"narrowed", itemsSchema(qty64), itemsSchema(qty32), []record.Value{int64(9), "x", int32(1)},
			[]string{`narrowed to int (INTEGER)`, `ALTER TABLE "main"."items" ALTER COLUMN "qty" SET DATA TYPE INTEGER`}},
		{"changed type", itemsSchema(score), itemsSchema(record.Column{Name: "score", SourceType: "text", Type: kind(record.KindString)}), []record.Value{int64(9), "x", "high"},
			[]string{`changed to text (VARCHAR)`, `ALTER TABLE "main"."items" ALTER COLUMN "score" SET DATA TYPE VARCHAR USING`, "connectd offsets reset"}},
		{"other key", itemsSchema(qty64), record.NewSchema("shop", "items", []record.Column{
			{Name: "id", SourceType: "bigint", Type: kind(record.KindInt64), Key: true},
			{Name: "name", SourceType: "text", Type: kind(record.KindString), Key: true},
			qty64}), []record.Value{int64(9), "x", int64(1)},
			[]string{`the key of source table shop.items is (id, name), but target table "main"."items" has primary key (id)`,
				`CREATE TABLE "main"."items_rekeyed" (<the columns of "main"."items">, PRIMARY KEY ("id", "name")); INSERT INTO "main"."items_rekeyed" SELECT * FROM "main"."items"; DROP TABLE "main"."items"; ALTER TABLE "main"."items_rekeyed" RENAME TO "items"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := &Config{Path: newPath(t)}
			first := append([]record.Value{int64(1), "one"}, make([]record.Value, len(c.before.Columns)-2)...)
			if err := writeFlush(ctx, t, cfg, create(c.before, 1, first...)); err != nil {
				t.Fatal(err)
			}
			err := writeFlush(ctx, t, cfg, create(c.after, 2, c.row...))
			if !connector.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
			// Nothing of the second schema reached the file.
			if n := query(t, cfg.Path, `SELECT count(*)::VARCHAR FROM main.items`); n[0] != "1" {
				t.Errorf("%s rows after the failed flush, want 1", n[0])
			}
		})
	}
}

// TestAWiderKeyColumnStopsWithWhatToRun: DuckDB cannot change the type of a primary
// key column, so a key widened at the source is a permanent error at the flush.
func TestAWiderKeyColumnStopsWithWhatToRun(t *testing.T) {
	ctx := context.Background()
	cfg := &Config{Path: newPath(t)}
	key := func(typ record.Kind) *record.Schema {
		return record.NewSchema("shop", "items", []record.Column{{Name: "id", SourceType: typ.String(), Type: kind(typ), Key: true}})
	}
	if err := writeFlush(ctx, t, cfg, create(key(record.KindInt32), 1, int32(1))); err != nil {
		t.Fatal(err)
	}
	err := writeFlush(ctx, t, cfg, create(key(record.KindInt64), 2, int64(1)<<40))
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "DuckDB cannot change the type of a primary key column") {
		t.Fatalf("got %v, want a permanent error saying DuckDB cannot change a key column's type", err)
	}
}
