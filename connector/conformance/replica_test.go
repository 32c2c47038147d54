package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/record"
)

// The replica checks are run against an in-memory target that keeps a replica the
// way the warehouse destinations do (the position committed with the rows, records
// at or before it skipped, a row's _pos compared before it is overwritten); the
// correct one must pass, each broken one fail the check about what it breaks.

// replicaFlaw is one way the in-memory replica gets merge wrong.
type replicaFlaw int

const (
	replicaCorrect replicaFlaw = iota
	// unchangedFromBatchOnly keeps an unchanged value only from an earlier record
	// of the key in the same flush, and writes NULL when the value is in the target.
	unchangedFromBatchOnly
	// olderOverwrites neither skips what was committed nor compares _pos: a replay
	// turns rows back to older values.
	olderOverwrites
	// ignoresDeletes applies no delete.
	ignoresDeletes
	// keepsEveryNull treats every NULL of an update as unchanged.
	keepsEveryNull
	// softRemoves removes a deleted row although it should mark it.
	softRemoves
)

// memReplicaTarget is the target database: one table and the connector's committed
// position, changed together by a flush.
type memReplicaTarget struct {
	mu        sync.Mutex
	rows      map[int64]*memReplicaRow
	committed record.Position
	open      int // destinations open, which ReadReplica must never see
}

type memReplicaRow struct {
	vals    []record.Value // aligned with conformance.ReplicaSchema
	pos     record.Position
	deleted bool
}

type memReplicaDriver struct {
	flaw replicaFlaw
	soft bool
}

func (d memReplicaDriver) Setup(context.Context, testing.TB) (conformance.ReplicaFixture, error) {
	return &memReplicaFixture{flaw: d.flaw, soft: d.soft, target: &memReplicaTarget{rows: map[int64]*memReplicaRow{}}}, nil
}

type memReplicaFixture struct {
	flaw   replicaFlaw
	soft   bool
	target *memReplicaTarget
}

func (f *memReplicaFixture) Open(context.Context) (connector.Destination, error) {
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	f.target.open++
	return &memReplica{flaw: f.flaw, soft: f.soft, target: f.target, committed: f.target.committed}, nil
}

func (f *memReplicaFixture) SoftDelete() bool { return f.soft }

func (f *memReplicaFixture) ReadReplica(context.Context) ([]conformance.ReplicaRow, error) {
	f.target.mu.Lock()
	defer f.target.mu.Unlock()
	if f.target.open > 0 {
		return nil, fmt.Errorf("ReadReplica called while %d destinations are open", f.target.open)
	}
	var out []conformance.ReplicaRow
	for id, r := range f.target.rows {
		out = append(out, conformance.ReplicaRow{ID: id, Body: text(r.vals[1]), Amount: text(r.vals[2]), Qty: text(r.vals[3]), Deleted: r.deleted})
	}
	return out, nil
}

// text is what a target's cast to text gives.
func text(v record.Value) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case record.Decimal:
		s = string(x)
	case int32:
		s = strconv.Itoa(int(x))
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// memReplica stages the records written since the last flush and applies them to
// the target, in order, when it flushes.
type memReplica struct {
	flaw      replicaFlaw
	soft      bool
	target    *memReplicaTarget
	committed record.Position // read from the target at open, as a database destination does
	buf       []record.Record
	closed    bool
}

func (d *memReplica) Write(_ context.Context, recs []record.Record) error {
	for _, r := range recs {
		if d.flaw != olderOverwrites && r.Pos.Compare(d.committed) <= 0 {
			continue // the target has it
		}
		d.buf = append(d.buf, r)
	}
	return nil
}

func (d *memReplica) Buffered() (int64, int64) { return int64(len(d.buf)), int64(64 * len(d.buf)) }

func (d *memReplica) Flush(context.Context) error {
	if len(d.buf) == 0 {
		return nil
	}
	t := d.target
	t.mu.Lock()
	defer t.mu.Unlock()
	inFlush := map[int64]bool{} // keys this flush wrote, for unchangedFromBatchOnly
	for i := range d.buf {
		if err := d.apply(&d.buf[i], inFlush); err != nil {
			return err
		}
	}
	d.committed = d.buf[len(d.buf)-1].Pos
	t.committed = d.committed
	d.buf = nil
	return nil
}

// older reports whether a record at pos must not overwrite row r.
func (d *memReplica) older(r *memReplicaRow, pos record.Position) bool {
	return d.flaw != olderOverwrites && r.pos.Compare(pos) >= 0
}

func (d *memReplica) apply(r *record.Record, inFlush map[int64]bool) error {
	t := d.target
	if r.Op == record.OpTruncate {
		for id, row := range t.rows {
			switch {
			case d.older(row, r.Pos):
			case d.soft && !row.deleted:
				row.deleted, row.pos = true, r.Pos
			case !d.soft:
				delete(t.rows, id)
			}
		}
		return nil
	}
	img := r.Row()
	id := img[0].(int64)
	row := t.rows[id]
	if row != nil && d.older(row, r.Pos) {
		return nil
	}
	if r.Op == record.OpDelete {
		switch {
		case d.flaw == ignoresDeletes:
		case d.soft && d.flaw != softRemoves && row != nil:
			row.deleted, row.pos = true, r.Pos
		case d.soft && d.flaw != softRemoves:
			t.rows[id] = &memReplicaRow{vals: slices.Clone(img), pos: r.Pos, deleted: true}
		default:
			delete(t.rows, id)
		}
		inFlush[id] = true
		return nil
	}
	vals := slices.Clone(img)
	for i, c := range conformance.ReplicaSchema.Columns {
		keep := slices.Contains(r.Unchanged, c.Name)
		if d.flaw == keepsEveryNull && !c.Key && vals[i] == nil && row != nil {
			keep = true
		}
		if !keep {
			continue
		}
		switch {
		case d.flaw == unchangedFromBatchOnly && !inFlush[id]:
			vals[i] = nil
		case row == nil:
			return fmt.Errorf("mem replica: an update of key %d leaves %s unchanged, and the target has no row of it", id, c.Name)
		default:
			vals[i] = row.vals[i]
		}
	}
	t.rows[id] = &memReplicaRow{vals: vals, pos: r.Pos}
	inFlush[id] = true
	return nil
}

func (d *memReplica) Close(context.Context) error {
	if d.closed {
		return errors.New("mem replica: closed twice")
	}
	d.closed, d.buf = true, nil
	d.target.mu.Lock()
	d.target.open--
	d.target.mu.Unlock()
	return nil
}

func TestCorrectInMemoryReplicaPasses(t *testing.T) {
	t.Run("hard deletes", func(t *testing.T) { conformance.TestReplica(t, memReplicaDriver{flaw: replicaCorrect}) })
	t.Run("soft deletes", func(t *testing.T) { conformance.TestReplica(t, memReplicaDriver{flaw: replicaCorrect, soft: true}) })
}

func TestBrokenReplicasFailTheSuite(t *testing.T) {
	cases := []struct {
		name string
		flaw replicaFlaw
		soft bool
		want string // the check that must fail (others may too)
		says []string
	}{
		{"unchanged value taken from the batch only", unchangedFromBatchOnly, false, "SmallFlushesKeepUnchangedValues", []string{"column body is NULL, want"}},
		{"older record overwrites on replay (hard deletes)", olderOverwrites, false, "ReplayOfFlushedRecordsChangesNothing", []string{"records 60..129"}},
		{"older record overwrites on replay (soft deletes)", olderOverwrites, true, "ReplayOfFlushedRecordsChangesNothing", []string{"after the replay of records 60..129"}},
		{"deletes ignored (hard)", ignoresDeletes, false, "FlushOnceLeavesTheReplica", []string{"held, but the key was deleted"}},
		{"deletes ignored (soft)", ignoresDeletes, true, "FlushOnceLeavesTheReplica", []string{"_deleted is false, want true"}},
		{"NULL taken for unchanged", keepsEveryNull, false, "FlushOnceLeavesTheReplica", []string{", want NULL"}},
		{"soft delete removes the row", softRemoves, true, "FlushOnceLeavesTheReplica", []string{"missing: want a row marked deleted"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := failures[conformance.ReplicaDriver](t, memReplicaDriver{flaw: c.flaw, soft: c.soft}, conformance.ReplicaChecks())
			err, ok := got[c.want]
			if !ok {
				t.Fatalf("the suite did not report %s as failing %s", c.name, c.want)
			}
			for _, s := range append(c.says, "key ") {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s says %q, which lacks %q", c.want, err, s)
				}
			}
		})
	}
}

// failures runs every check and returns the errors of those that failed.
func failures[D any](t *testing.T, d D, checks []conformance.Check[D]) map[string]error {
	out := map[string]error{}
	for _, c := range checks {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := c.Run(ctx, t, d)
		cancel()
		if err != nil {
			out[c.Name] = err
			t.Logf("%s failed as it should: %v", c.Name, err)
		}
	}
	return out
}

func TestReplicaRecordsAreDeterministicAndCoverEveryCase(t *testing.T) {
	const n = 240
	for seed := uint64(1); seed <= 5; seed++ {
		recs := conformance.ReplicaRecords(seed, n)
		again := conformance.ReplicaRecords(seed, n)
		if len(recs) != n {
			t.Fatalf("seed %d: %d records, want %d", seed, len(recs), n)
		}
		counts := map[string]int{}
		live := map[int64][]record.Value{} // the source as the records leave it
		deleted := map[int64]bool{}        // keys deleted and not yet back
		for i, r := range recs {
			if fmt.Sprint(r) != fmt.Sprint(again[i]) {
				t.Fatalf("seed %d: record %d differs between two calls: %v and %v", seed, i, r, again[i])
			}
			if i > 0 && r.Pos.Compare(recs[i-1].Pos) <= 0 {
				t.Fatalf("seed %d: position of record %d (%s) is not after %s", seed, i, r.Pos, recs[i-1].Pos)
			}
			if r.Schema != conformance.ReplicaSchema {
				t.Fatalf("seed %d: record %d has another schema", seed, i)
			}
			switch r.Op {
			case record.OpTruncate:
				counts["truncate"]++
				for k := range live {
					deleted[k] = true
				}
				clear(live)
				continue
			case record.OpDelete:
				k := r.Before[0].(int64)
				if live[k] == nil {
					t.Fatalf("seed %d: record %d deletes key %d, which the source does not hold", seed, i, k)
				}
				if slices.ContainsFunc(r.Before[1:], func(v record.Value) bool { return v != nil }) || r.After != nil {
					t.Fatalf("seed %d: delete %d carries more than the key: %v / %v", seed, i, r.Before, r.After)
				}
				if i+1 < n && recs[i+1].Op == record.OpCreate && recs[i+1].TxID == r.TxID {
					counts["key change"]++
				} else {
					counts["delete"]++
				}
				delete(live, k)
				deleted[k] = true
				continue
			}
			k := r.After[0].(int64)
			switch {
			case r.Op == record.OpUpdate && live[k] == nil:
				t.Fatalf("seed %d: record %d updates key %d, which the source does not hold", seed, i, k)
			case r.Op != record.OpUpdate && live[k] != nil:
				t.Fatalf("seed %d: record %d inserts key %d, which the source holds", seed, i, k)
			case r.Op == record.OpUpdate && len(r.Unchanged) > 0:
				if !slices.Equal(r.Unchanged, []string{"body"}) || r.After[1] != nil || live[k][1] == nil {
					t.Fatalf("seed %d: record %d leaves %v unchanged with body %v, where the source's body is %v", seed, i, r.Unchanged, r.After[1], live[k][1])
				}
				counts["unchanged update"]++
			case r.Op == record.OpUpdate:
				counts["update"]++
			case deleted[k]:
				counts["re-insert"]++
			default:
				counts["insert "+r.Op.String()]++
			}
			row := slices.Clone(r.After)
			if len(r.Unchanged) > 0 {
				row[1] = live[k][1]
			}
			live[k], deleted[k] = row, false
			if row[2] == nil {
				t.Fatalf("seed %d: record %d has a NULL amount", seed, i)
			}
			if row[1] == nil {
				counts["body NULL"]++
			}
			if row[3] == nil {
				counts["qty NULL"]++
			}
		}
		for _, what := range []string{"insert r", "insert c", "update", "unchanged update", "delete", "key change", "re-insert", "truncate", "body NULL", "qty NULL"} {
			if counts[what] == 0 {
				t.Errorf("seed %d: no %s among %d records (%v)", seed, what, n, counts)
			}
		}
		t.Logf("seed %d: %v", seed, counts)
	}
}

func TestReplicaModel(t *testing.T) {
	s := conformance.ReplicaSchema
	at := 0
	rec := func(op record.Op, vals []record.Value, unchanged ...string) record.Record {
		at++
		r := record.Record{Op: op, Schema: s, Pos: record.Position{byte(at)}, Unchanged: unchanged}
		if op == record.OpDelete {
			r.Before = vals
		} else {
			r.After = vals
		}
		return r
	}
	str := func(s string) *string { return &s }
	ins := func(id int64, body any, amount string, qty any) record.Record {
		return rec(record.OpCreate, []record.Value{id, body, record.Decimal(amount), qty})
	}
	upd := func(id int64, body any, amount string, qty any, unchanged ...string) record.Record {
		return rec(record.OpUpdate, []record.Value{id, body, record.Decimal(amount), qty}, unchanged...)
	}
	del := func(id int64) record.Record { return rec(record.OpDelete, []record.Value{id, nil, nil, nil}) }
	trunc := func() record.Record { return rec(record.OpTruncate, make([]record.Value, 4)) }
	cases := []struct {
		name      string
		recs      []record.Record
		soft      bool
		rows      []conformance.ReplicaRow
		truncated []int64
	}{
		{"an update sets every column, NULL included", []record.Record{ins(1, "a", "1.5", int32(3)), upd(1, "b", "-2", nil)}, false,
			[]conformance.ReplicaRow{{ID: 1, Body: str("b"), Amount: str("-2.00")}}, nil},
		{"an unchanged column keeps its value", []record.Record{ins(1, "a", "1", int32(3)), upd(1, nil, "2", int32(4), "body")}, false,
			[]conformance.ReplicaRow{{ID: 1, Body: str("a"), Amount: str("2.00"), Qty: str("4")}}, nil},
		{"a hard delete removes the row", []record.Record{ins(1, "a", "1", nil), ins(2, "b", "2", nil), del(1)}, false,
			[]conformance.ReplicaRow{{ID: 2, Body: str("b"), Amount: str("2.00")}}, nil},
		{"a soft delete marks the row and keeps its values", []record.Record{ins(1, "a", "1", nil), del(1)}, true,
			[]conformance.ReplicaRow{{ID: 1, Body: str("a"), Amount: str("1.00"), Deleted: true}}, nil},
		{"a re-insert brings a soft-deleted row back", []record.Record{ins(1, "a", "1", nil), del(1), ins(1, "", "3", int32(0))}, true,
			[]conformance.ReplicaRow{{ID: 1, Body: str(""), Amount: str("3.00"), Qty: str("0")}}, nil},
		{"a hard truncate empties the table", []record.Record{ins(1, "a", "1", nil), ins(2, "b", "2", nil), trunc(), ins(2, "c", "3", nil)}, false,
			[]conformance.ReplicaRow{{ID: 2, Body: str("c"), Amount: str("3.00")}}, nil},
		{"a soft truncate leaves rows that may be held as deleted", []record.Record{ins(1, "a", "1", nil), ins(2, "b", "2", nil), del(2), trunc(), ins(3, "c", "3", nil)}, true,
			[]conformance.ReplicaRow{{ID: 3, Body: str("c"), Amount: str("3.00")}}, []int64{1, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := conformance.ReplicaModel(c.recs, c.soft)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int64]conformance.ReplicaRow{}
			for _, r := range c.rows {
				want[r.ID] = r
			}
			if fmt.Sprint(rowsText(m.Rows)) != fmt.Sprint(rowsText(want)) {
				t.Errorf("rows %v, want %v", rowsText(m.Rows), rowsText(want))
			}
			if got := slices.Sorted(maps.Keys(m.Truncated)); !slices.Equal(got, c.truncated) {
				t.Errorf("truncated keys %v, want %v", got, c.truncated)
			}
			if err := m.Match(c.rows); err != nil {
				t.Errorf("the model does not match its own rows: %v", err)
			}
		})
	}

	t.Run("an unchanged column of a key with no row is an error", func(t *testing.T) {
		if _, err := conformance.ReplicaModel([]record.Record{upd(9, nil, "1", nil, "body")}, false); err == nil {
			t.Error("no error")
		}
	})
}

func rowsText(rows map[int64]conformance.ReplicaRow) []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(rows)) {
		r := rows[id]
		out = append(out, fmt.Sprintf("%d:%s|%s|%s|%t", id, deref(r.Body), deref(r.Amount), deref(r.Qty), r.Deleted))
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

func TestReplicaMatchNamesKeyAndColumn(t *testing.T) {
	str := func(s string) *string { return &s }
	var recs []record.Record
	for i := range 10 {
		recs = append(recs, record.Record{Op: record.OpCreate, Schema: conformance.ReplicaSchema, Pos: record.Position{byte(i)},
			After: []record.Value{int64(i), fmt.Sprint("body ", i), record.Decimal(fmt.Sprintf("%d.5", i)), int32(i)}})
	}
	m, err := conformance.ReplicaModel(recs, false)
	if err != nil {
		t.Fatal(err)
	}
	var got []conformance.ReplicaRow
	for i := range 10 {
		// Another text form of the same numbers is the same value.
		got = append(got, conformance.ReplicaRow{ID: int64(i), Body: str(fmt.Sprint("body ", i)), Amount: str(fmt.Sprintf("%d.50", i)), Qty: str(strconv.Itoa(i))})
	}
	if err := m.Match(got); err != nil {
		t.Fatalf("equal rows reported: %v", err)
	}

	got[2].Amount = str("2.51")
	got[3].Qty = nil
	got[4].Deleted = true
	got = append(got[:5], got[6:]...) // key 5 missing
	got = append(got, conformance.ReplicaRow{ID: 11}, got[0], conformance.ReplicaRow{ID: 12})
	err = m.Match(got)
	if err == nil {
		t.Fatal("differences not reported")
	}
	for _, s := range []string{
		`key 0: held 2 times`, `key 2: column amount is "2.51", want "2.50"`, `key 3: column qty is NULL, want "3"`,
		`key 4: _deleted is true, want false`, `key 5: missing`, `and 2 keys more`,
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error lacks %q: %v", s, err)
		}
	}
	if strings.Contains(err.Error(), "key 11") {
		t.Errorf("the error lists more than the first few keys: %v", err)
	}
}
