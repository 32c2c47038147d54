package postgres

import (
	"context"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

var docs = record.NewSchema("app", "docs", []record.Column{
	{Name: "id", Type: record.Type{Kind: record.KindInt64}, Key: true},
	{Name: "title", Type: record.Type{Kind: record.KindString}, Nullable: true},
	{Name: "body", Type: record.Type{Kind: record.KindString}, Nullable: true},
})

// recs builds records at increasing positions from (op, id, title, body) tuples;
// body "~" is an unchanged value the source did not send.
type change struct {
	op          record.Op
	id          int64
	title, body any
}

type feed struct{ next uint64 }

func (f *feed) recs(s *record.Schema, cs ...change) []record.Record {
	out := make([]record.Record, len(cs))
	for i, c := range cs {
		f.next++
		pos := binary.BigEndian.AppendUint64(nil, f.next)
		r := record.Record{Op: c.op, Schema: s, Pos: pos, CommitTS: time.Unix(1_700_000_000+int64(f.next), 0).UTC()}
		row := []record.Value{c.id, c.title, c.body}
		if c.body == "~" {
			row[2] = nil
			r.Unchanged = []string{"body"}
		}
		switch c.op {
		case record.OpDelete:
			r.Before = []record.Value{c.id, nil, nil}
		case record.OpTruncate:
		default:
			r.After = row
		}
		out[i] = r
	}
	return out
}

func write(t *testing.T, d connector.Destination, recs []record.Record, flush bool) {
	t.Helper()
	ctx := testCtx(t)
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if flush {
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMergeKeepsUnchangedValuesAndAppliesOnce(t *testing.T) {
	tg := newTarget(t)
	cfg := tg.config("merge", false)
	d := tg.open(t, "m", cfg)
	f := &feed{}
	// One flush: an insert, an update that leaves body unsent (carried from the
	// insert in the same batch), a key change, a delete.
	write(t, d, f.recs(docs,
		change{record.OpCreate, 1, "a", "long body 1"},
		change{record.OpCreate, 2, "b", "long body 2"},
		change{record.OpUpdate, 1, "a2", "~"},
		change{record.OpCreate, 3, "c", "long body 3"},
		change{record.OpDelete, 3, nil, nil},
		change{record.OpDelete, 2, nil, nil},
		change{record.OpCreate, 4, "b", "long body 2"},
	), true)
	// Next flush: an update of a row loaded before, body unsent: the target keeps it.
	write(t, d, f.recs(docs, change{record.OpUpdate, 4, "b2", "~"}, change{record.OpUpdate, 1, "a3", "~"}), true)
	want := [][]string{{"1", "a3", "long body 1"}, {"4", "b2", "long body 2"}}
	got := tg.rows(t, "SELECT id, title, body FROM "+tg.schema+".docs ORDER BY id")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	// A restart replays what was committed: nothing changes, not even _pos.
	before := tg.rows(t, "SELECT id, title, body, _pos FROM "+tg.schema+".docs ORDER BY id")
	d.Close(testCtx(t))
	d = tg.open(t, "m", cfg)
	defer d.Close(testCtx(t))
	f.next = 0
	write(t, d, f.recs(docs,
		change{record.OpCreate, 1, "a", "long body 1"},
		change{record.OpCreate, 2, "b", "long body 2"},
	), true)
	if after := tg.rows(t, "SELECT id, title, body, _pos FROM "+tg.schema+".docs ORDER BY id"); !reflect.DeepEqual(after, before) {
		t.Fatalf("a replay changed the target: %v, was %v", after, before)
	}
}

func TestMergeSoftDeleteAndTruncate(t *testing.T) {
	tg := newTarget(t)
	d := tg.open(t, "s", tg.config("merge", true))
	defer d.Close(testCtx(t))
	f := &feed{}
	write(t, d, f.recs(docs,
		change{record.OpCreate, 1, "a", "x"},
		change{record.OpCreate, 2, "b", "y"},
		change{record.OpCreate, 3, "c", "z"},
	), true)
	write(t, d, f.recs(docs,
		change{record.OpDelete, 1, nil, nil},
		change{record.OpCreate, 5, "e", "v"},
		change{record.OpDelete, 5, nil, nil}, // inserted and deleted in one batch
		change{record.OpDelete, 3, nil, nil},
		change{record.OpCreate, 3, "c2", "z2"}, // deleted, then inserted again
	), true)
	got := tg.rows(t, "SELECT id, title, body, _deleted, _deleted_at IS NOT NULL FROM "+tg.schema+".docs ORDER BY id")
	want := [][]string{
		{"1", "a", "x", "true", "true"},
		{"2", "b", "y", "false", "false"},
		{"3", "c2", "z2", "false", "false"},
		{"5", "e", "v", "true", "true"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	write(t, d, f.recs(docs, change{op: record.OpTruncate}, change{record.OpCreate, 7, "g", "w"}), true)
	got = tg.rows(t, "SELECT id, _deleted FROM "+tg.schema+".docs ORDER BY id")
	want = [][]string{{"1", "true"}, {"2", "true"}, {"3", "true"}, {"5", "true"}, {"7", "false"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after a truncate: rows %v, want %v", got, want)
	}
}

func TestAppendKeepsEveryChange(t *testing.T) {
	tg := newTarget(t)
	d := tg.open(t, "a", tg.config("append", false))
	defer d.Close(testCtx(t))
	f := &feed{}
	write(t, d, f.recs(docs,
		change{record.OpCreate, 1, "a", "x"},
		change{record.OpUpdate, 1, "b", "~"},
		change{record.OpDelete, 1, nil, nil},
		change{op: record.OpTruncate},
	), true)
	got := tg.rows(t, "SELECT _op, id, title, body, _unchanged FROM "+tg.schema+".docs ORDER BY _pos")
	want := [][]string{{"c", "1", "a", "x", "NULL"}, {"u", "1", "b", "NULL", "[body]"}, {"d", "1", "NULL", "NULL", "NULL"}, {"t", "NULL", "NULL", "NULL", "NULL"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

func TestSchemaChanges(t *testing.T) {
	tg := newTarget(t)
	d := tg.open(t, "c", tg.config("merge", false))
	defer d.Close(testCtx(t))
	f := &feed{}
	v1 := record.NewSchema("app", "items", []record.Column{
		{Name: "id", Type: record.Type{Kind: record.KindInt32}, Key: true},
		{Name: "qty", Type: record.Type{Kind: record.KindInt16}},
		{Name: "price", Type: record.Type{Kind: record.KindDecimal, Precision: 8, Scale: 2}},
	})
	v2 := record.NewSchema("app", "items", append(append([]record.Column(nil), v1.Columns...),
		record.Column{Name: "note", Type: record.Type{Kind: record.KindString}, Nullable: true}))
	v2.Columns[1].Type.Kind = record.KindInt64                                          // widened
	v2.Columns[2].Type = record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 3} // widened
	ins := func(s *record.Schema, vals ...record.Value) record.Record {
		r := f.recs(docs, change{record.OpCreate, 0, nil, nil})[0]
		r.Schema, r.After = s, vals
		return r
	}
	// Both shapes in one batch: rows staged before the change get the new column too.
	write(t, d, []record.Record{
		ins(v1, int32(1), int16(5), record.Decimal("1.50")),
		ins(v2, int32(2), int64(1)<<40, record.Decimal("123456789.125"), "new"),
	}, true)
	got := tg.rows(t, "SELECT id, qty, price::text, coalesce(note, 'NULL') FROM "+tg.schema+".items ORDER BY id")
	want := [][]string{{"1", "5", "1.500", "NULL"}, {"2", "1099511627776", "123456789.125", "new"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	types := tg.rows(t, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum", tg.schema+".items")
	if strings.Join(flat(types), ",") != `integer,bigint,numeric(12,3),text COLLATE "C",timestamp with time zone,text` &&
		strings.Join(flat(types), ",") != "integer,bigint,numeric(12,3),text,timestamp with time zone,text" {
		t.Errorf("column types %v", types)
	}

	narrowed := record.NewSchema("app", "items", append([]record.Column(nil), v2.Columns...))
	narrowed.Columns[1].Type.Kind = record.KindInt32
	err := d.Write(testCtx(t), []record.Record{ins(narrowed, int32(3), int32(1), record.Decimal("1"), nil)})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "ALTER TABLE") {
		t.Errorf("narrowed type: %v, want a permanent error saying what to run", err)
	}
	rekeyed := record.NewSchema("app", "items", append([]record.Column(nil), v2.Columns...))
	rekeyed.Columns[0].Key, rekeyed.Columns[3].Key = false, true
	err = d.Write(testCtx(t), []record.Record{ins(rekeyed, int32(3), int64(1), record.Decimal("1"), "k")})
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "PRIMARY KEY") {
		t.Errorf("changed key: %v, want a permanent error saying what to run", err)
	}
}

func flat(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func TestTwoProcessesOnOneConnectorAreFenced(t *testing.T) {
	tg := newTarget(t)
	cfg := tg.config("merge", false)
	a := tg.open(t, "f", cfg)
	defer a.Close(testCtx(t))
	b := tg.open(t, "f", cfg)
	defer b.Close(testCtx(t))
	f := &feed{}
	recs := f.recs(docs, change{record.OpCreate, 1, "a", "x"}, change{record.OpCreate, 2, "b", "y"})
	write(t, a, recs[:1], true)
	err := b.Write(testCtx(t), recs)
	if err == nil {
		err = b.Flush(testCtx(t))
	}
	if err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("the second process flushed: %v", err)
	}
	var pos string
	if err := tg.db.QueryRow(context.Background(), "SELECT position FROM "+tg.schema+"._connectd_offsets WHERE connector = 'f'").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	if pos != recs[0].Pos.String() {
		t.Errorf("offsets row %s, want %s", pos, recs[0].Pos)
	}
}

// TestMergeInsertsOfKeysTheTargetHas: a batch of inserts only (a snapshot taken again,
// say) copies the new keys straight in and merges the ones the target has.
func TestMergeInsertsOfKeysTheTargetHas(t *testing.T) {
	tg := newTarget(t)
	d := tg.open(t, "i", tg.config("merge", false))
	defer d.Close(testCtx(t))
	f := &feed{}
	write(t, d, f.recs(docs, change{record.OpRead, 1, "a", "x"}, change{record.OpRead, 2, "b", "y"}), true)
	write(t, d, f.recs(docs, change{record.OpRead, 2, "b2", "y2"}, change{record.OpRead, 3, "c", "z"}, change{record.OpCreate, 1, "a2", "x2"}), true)
	got := tg.rows(t, "SELECT id, title, body FROM "+tg.schema+".docs ORDER BY id")
	want := [][]string{{"1", "a2", "x2"}, {"2", "b2", "y2"}, {"3", "c", "z"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

// TestMergeKeyChangeKeepsUnsentValues: a key change whose new row lacks an unchanged
// TOAST value takes it from the old key's row, in the target or staged in the same
// flush, also through two key changes in a row; with MERGE and without, hard and soft.
func TestMergeKeyChangeKeepsUnsentValues(t *testing.T) {
	for _, c := range []struct {
		name          string
		soft, noMerge bool
	}{{"merge", false, false}, {"merge-soft", true, false}, {"update", false, true}, {"update-soft", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			tg := newTarget(t)
			cfg := tg.config("merge", c.soft)
			cfg.noMerge = c.noMerge
			d := tg.open(t, "k", cfg)
			defer d.Close(testCtx(t))
			f := &feed{}
			write(t, d, f.recs(docs,
				change{record.OpCreate, 1, "a", "body one"},
				change{record.OpCreate, 2, "b", "body two"},
				change{record.OpCreate, 5, "e", "body five"},
			), true)
			write(t, d, f.recs(docs,
				// 1 -> 10: the value is in the target.
				change{record.OpDelete, 1, nil, nil}, change{record.OpCreate, 10, "a2", "~"},
				// 3 is new in this flush; 3 -> 30: the value is staged.
				change{record.OpCreate, 3, "c", "body three"},
				change{record.OpDelete, 3, nil, nil}, change{record.OpCreate, 30, "c2", "~"},
				// 2 -> 20 -> 21: the value is in the target's row of 2.
				change{record.OpDelete, 2, nil, nil}, change{record.OpCreate, 20, "b2", "~"},
				change{record.OpDelete, 20, nil, nil}, change{record.OpCreate, 21, "b3", "~"},
				// An update of 5 with the value unsent, then 5 -> 50.
				change{record.OpUpdate, 5, "e2", "~"},
				change{record.OpDelete, 5, nil, nil}, change{record.OpCreate, 50, "e3", "~"},
				// An update of 50, the value still unsent: the old key's row has it.
				change{record.OpUpdate, 50, "e4", "~"},
			), true)
			q := "SELECT id, title, body FROM " + tg.schema + ".docs"
			if c.soft {
				q += " WHERE NOT _deleted"
			}
			got := tg.rows(t, q+" ORDER BY id")
			want := [][]string{{"10", "a2", "body one"}, {"21", "b3", "body two"}, {"30", "c2", "body three"}, {"50", "e4", "body five"}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rows %v, want %v", got, want)
			}
			// A key change whose old row nobody has stops instead of writing NULL.
			err := d.Write(testCtx(t), f.recs(docs, change{record.OpDelete, 7, nil, nil}, change{record.OpCreate, 70, "g", "~"}))
			if err == nil {
				err = d.(connector.Transactional).FlushAt(testCtx(t), record.Position(binary.BigEndian.AppendUint64(nil, f.next)))
			}
			if err == nil || !strings.Contains(err.Error(), "unchanged TOAST") {
				t.Fatalf("a key change from a row the target lacks: %v, want the unsent values error", err)
			}
		})
	}
}
