package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/record"
)

func ordersSchema() *record.Schema {
	return record.NewSchema("public", "orders", []record.Column{
		{Name: "id", Type: record.Type{Kind: record.KindInt64}, Key: true},
		{Name: "name", Type: record.Type{Kind: record.KindString}, Nullable: true},
		{Name: "amount", Type: record.Type{Kind: record.KindDecimal, Precision: 10, Scale: 2}, Nullable: true},
		{Name: "doc", Type: record.Type{Kind: record.KindJSON}, Nullable: true},
	})
}

func orderRow(id int) []record.Value {
	return []record.Value{int64(id), fmt.Sprintf("name %d", id), record.Decimal(fmt.Sprintf("%d.50", id)), record.JSON(fmt.Sprintf(`{"a": %d, "b": [1, 2]}`, id))}
}

// lakeRow is orderRow as a destination might hand it back: other widths and spellings
// of the same values.
func lakeRow(id int) []record.Value {
	return []record.Value{int64(id), fmt.Sprintf("name %d", id), record.Decimal(fmt.Sprintf("%d.5", id)), record.JSON(fmt.Sprintf(`{"b":[1,2],"a":%d}`, id))}
}

// fixture is n source rows with the lake holding each as a snapshot read, positions
// 1..n, boundary far above.
func fixture(n int) (*fakeSnap, *fakeLake) {
	s := &fakeSnap{schema: ordersSchema(), estimate: int64(n), boundary: posOf(1 << 40)}
	l := &fakeLake{}
	for i := 1; i <= n; i++ {
		s.rows = append(s.rows, orderRow(i))
		l.add(record.OpRead, uint64(i), lakeRow(i))
	}
	return s, l
}

// runTable compares by moving rows, then again through server digests, and fails
// when the two methods report differently; it returns the rows method's report.
func runTable(t *testing.T, s *fakeSnap, l *fakeLake, opt Options) *TableReport {
	t.Helper()
	opt.TempDir = t.TempDir()
	rep, err := Table(context.Background(), s, l, s.schema, s.boundary, opt)
	if err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, opt.TempDir)
	if rep.Method != MethodRows {
		t.Fatalf("method %q, want %q", rep.Method, MethodRows)
	}
	ds := &digestSnap{fakeSnap: s}
	dopt := opt
	dopt.Method = MethodDigest
	drep, err := Table(context.Background(), ds, l, s.schema, s.boundary, dopt)
	if err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, opt.TempDir)
	want := MethodDigest
	if opt.ReadLimit > 0 || len(s.schema.KeyIndexes()) == 0 {
		want = MethodRows
	}
	if drep.Method != want {
		t.Fatalf("digest snapshot: method %q (%s), want %q", drep.Method, drep.MethodNote, want)
	}
	if opt.Sample > 0 && opt.Sample < 100 {
		// The methods sample by different key hashes: each must be consistent on its
		// own, which the caller checks on the report returned: the digest method's
		// when asked for.
		if opt.Method == MethodDigest {
			*rep = *drep
		}
		return rep
	}
	sameFindings(t, rep, drep)
	if want == MethodDigest && (drep.RangesDiffering == 0) != (ds.scans == 0) {
		t.Fatalf("%d ranges differ but %d bucket scans", drep.RangesDiffering, ds.scans)
	}
	return rep
}

// sameFindings fails unless both reports found the same differences.
func sameFindings(t *testing.T, a, b *TableReport) {
	t.Helper()
	ca := counts{a.SourceRows, a.DestRows, a.Missing, a.Extra, a.Differing, a.DuplicatePositions, a.Unresolved}
	cb := counts{b.SourceRows, b.DestRows, b.Missing, b.Extra, b.Differing, b.DuplicatePositions, b.Unresolved}
	ea, eb := exampleTexts(a), exampleTexts(b)
	if ca != cb || !slices.Equal(ea, eb) {
		t.Fatalf("methods disagree:\n%s: %+v\n%s\n%s: %+v\n%s", a.Method, ca, reportText(a), b.Method, cb, reportText(b))
	}
}

func exampleTexts(r *TableReport) []string {
	var out []string
	for _, e := range r.Examples {
		var b strings.Builder
		writeExample(&b, &e)
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("temp dir not cleaned: %d entries, first %s", len(ents), ents[0].Name())
	}
}

type counts struct{ src, dst, missing, extra, differing, dups, unresolved int64 }

func checkCounts(t *testing.T, r *TableReport, want counts) {
	t.Helper()
	got := counts{r.SourceRows, r.DestRows, r.Missing, r.Extra, r.Differing, r.DuplicatePositions, r.Unresolved}
	if got != want {
		t.Fatalf("counts: got %+v, want %+v\n%s", got, want, reportText(r))
	}
	if r.Equal() != (want.missing+want.extra+want.differing+want.dups+want.unresolved == 0) {
		t.Fatalf("Equal() = %v with counts %+v", r.Equal(), got)
	}
}

func reportText(r *TableReport) string {
	var b bytes.Buffer
	_ = (&Report{Tables: []*TableReport{r}}).WriteText(&b)
	return b.String()
}

func TestTableEqualWhenLakeHoldsSameValuesInOtherSpellings(t *testing.T) {
	s, l := fixture(100)
	r := runTable(t, s, l, Options{})
	checkCounts(t, r, counts{src: 100, dst: 100})
	if r.RangesDiffering != 0 || r.Ranges < 16 {
		t.Fatalf("ranges %d, differing %d", r.Ranges, r.RangesDiffering)
	}
}

func TestTableNamesMissingExtraAndDifferingKeys(t *testing.T) {
	s, l := fixture(100)
	l.changes = append(l.changes[:4], l.changes[5:]...) // id 5 lost
	l.add(record.OpCreate, 500, lakeRow(500))           // never in the source
	edited := lakeRow(7)
	edited[1] = "edited"
	l.add(record.OpUpdate, 501, edited)
	r := runTable(t, s, l, Options{})
	checkCounts(t, r, counts{src: 100, dst: 100, missing: 1, extra: 1, differing: 1})
	kinds := map[string]KeyDiff{}
	for _, e := range r.Examples {
		kinds[e.Kind] = e
	}
	if e := kinds[DiffMissing]; len(e.Key) != 1 || e.Key[0] != (ColumnValue{"id", "5"}) {
		t.Errorf("missing example %+v", e)
	}
	if e := kinds[DiffExtra]; len(e.Key) != 1 || e.Key[0].Value != "500" || e.Where == "" {
		t.Errorf("extra example %+v", e)
	}
	e := kinds[DiffDiffers]
	if len(e.Columns) != 1 || e.Columns[0] != (ColumnDiff{"name", `"name 7"`, `"edited"`}) {
		t.Errorf("differs example %+v", e)
	}
	if r.RangesDiffering == 0 || r.RangesDiffering > 3 {
		t.Errorf("ranges differing %d", r.RangesDiffering)
	}
}

func TestTableAppliesDeletesAndTheLastTruncate(t *testing.T) {
	s, l := fixture(10)
	l.add(record.OpDelete, 100, []record.Value{int64(3), nil, nil, nil})
	s.rows = append(s.rows[:2], s.rows[3:]...)
	checkCounts(t, runTable(t, s, l, Options{}), counts{src: 9, dst: 9})

	// A truncate drops all before it; rows after it stand.
	l.add(record.OpTruncate, 200, make([]record.Value, 4))
	l.add(record.OpCreate, 201, lakeRow(42))
	s.rows = [][]record.Value{orderRow(42)}
	checkCounts(t, runTable(t, s, l, Options{}), counts{src: 1, dst: 1})

	// A delete then an insert of the same key: the insert stands.
	l.add(record.OpDelete, 202, []record.Value{int64(42), nil, nil, nil})
	l.add(record.OpCreate, 203, lakeRow(42))
	checkCounts(t, runTable(t, s, l, Options{}), counts{src: 1, dst: 1})
}

func TestTableResolvesUnchangedColumnsFromEarlierRecords(t *testing.T) {
	s, l := fixture(3)
	// id 1: an update that did not send doc (unchanged TOAST), with a new amount.
	l.add(record.OpUpdate, 10, []record.Value{int64(1), "name 1", record.Decimal("9"), nil}, 3)
	s.rows[0][2] = record.Decimal("9.00")
	// id 9: inserted with doc unchanged and nothing earlier to take it from.
	l.add(record.OpCreate, 11, []record.Value{int64(9), "name 9", record.Decimal("9.5"), nil}, 3)
	s.rows = append(s.rows, orderRow(9))
	r := runTable(t, s, l, Options{})
	checkCounts(t, r, counts{src: 4, dst: 4, unresolved: 1})
	if len(r.Examples) != 1 || r.Examples[0].Kind != DiffUnresolved || r.Examples[0].Key[0].Value != "9" ||
		len(r.Examples[0].Columns) != 1 || r.Examples[0].Columns[0].Column != "doc" {
		t.Fatalf("examples %+v", r.Examples)
	}
}

func TestTableCountsDuplicatePositions(t *testing.T) {
	s, l := fixture(10)
	l.add(record.OpRead, 4, lakeRow(4))   // same key, same position: a copy
	l.add(record.OpUpdate, 6, lakeRow(8)) // another key at id 6's position: a corrupt lake
	r := runTable(t, s, l, Options{})
	checkCounts(t, r, counts{src: 10, dst: 10, dups: 4})
	pos := map[string]int{}
	for _, e := range r.Examples {
		if e.Kind == DiffDuplicatePosition {
			pos[e.Position]++
		}
	}
	if pos[posOf(4).String()] != 2 || pos[posOf(6).String()] != 2 {
		t.Fatalf("examples %+v", r.Examples)
	}
}

func TestTableIgnoresRecordsAtAndAboveTheBoundary(t *testing.T) {
	s, l := fixture(10)
	s.boundary = posOf(1000)
	l.add(record.OpDelete, 1000, []record.Value{int64(1), nil, nil, nil})
	l.add(record.OpCreate, 1001, lakeRow(77))
	l.add(record.OpTruncate, 1002, make([]record.Value, 4))
	l.add(record.OpUpdate, 999, lakeRow(2))
	checkCounts(t, runTable(t, s, l, Options{}), counts{src: 10, dst: 10})
}

func TestTableSplitsRangesAndCountsExactly(t *testing.T) {
	const n = 20000
	s, l := fixture(n)
	s.estimate = 0 // a planner without statistics: only the split bounds the ranges
	// 37 lost, 11 extra, 13 edited.
	drop := map[int]bool{}
	for i := 0; i < 37; i++ {
		drop[100+i*53] = true
	}
	kept := l.changes[:0]
	for _, c := range l.changes {
		if !drop[int(c.Row[0].(int64))] {
			kept = append(kept, c)
		}
	}
	l.changes = kept
	for i := 0; i < 11; i++ {
		l.add(record.OpCreate, uint64(n+1+i), lakeRow(n+1+i))
	}
	for i := 0; i < 13; i++ {
		r := lakeRow(1 + i*97)
		r[3] = record.JSON(`{"edited":true}`)
		l.add(record.OpUpdate, uint64(2*n+i), r)
	}
	r := runTable(t, s, l, Options{RangeRows: 50, MaxExamples: 5})
	checkCounts(t, r, counts{src: n, dst: n - 37 + 11, missing: 37, extra: 11, differing: 13})
	if r.Ranges < n/(4*50) {
		t.Fatalf("%d ranges: the split did not bound them", r.Ranges)
	}
	if len(r.Examples) != 5 {
		t.Fatalf("%d examples, want 5", len(r.Examples))
	}
}

func TestTableSampleSelectsTheSameKeysOnBothSides(t *testing.T) {
	const n = 10000
	s, l := fixture(n)
	for i := range l.changes {
		l.changes[i].Row[1] = "all edited"
	}
	r := runTable(t, s, l, Options{Sample: 10})
	checkSample(t, r, n)
	checkSample(t, runTable(t, s, l, Options{Sample: 10, Method: MethodDigest}), n)
}

func checkSample(t *testing.T, r *TableReport, n int64) {
	t.Helper()
	if r.SourceRows < n/20 || r.SourceRows > n/5 {
		t.Fatalf("sampled %d of %d rows", r.SourceRows, n)
	}
	// Every sampled source key is found in the lake (none missing, none extra), and
	// each differs: the sides chose the same keys.
	checkCounts(t, r, counts{src: r.SourceRows, dst: r.SourceRows, differing: r.SourceRows})
	if r.Sample != 10 {
		t.Fatalf("sample %v", r.Sample)
	}
}

func TestTableWithoutKeyComparesRowMultisets(t *testing.T) {
	schema := record.NewSchema("public", "log", []record.Column{
		{Name: "msg", Type: record.Type{Kind: record.KindString}},
		{Name: "n", Type: record.Type{Kind: record.KindInt32}},
	})
	s := &fakeSnap{schema: schema, boundary: posOf(1000), rows: [][]record.Value{
		{"a", int32(1)}, {"a", int32(1)}, {"b", int32(2)}, {"c", int32(3)},
	}}
	l := &fakeLake{}
	l.add(record.OpRead, 1, []record.Value{"a", int64(1)})
	l.add(record.OpRead, 2, []record.Value{"b", int16(2)})
	l.add(record.OpRead, 3, []record.Value{"b", int16(2)})
	l.add(record.OpCreate, 4, []record.Value{"d", int32(4)})
	l.add(record.OpDelete, 5, []record.Value{"d", int32(4)})
	l.add(record.OpCreate, 6, []record.Value{"e", int32(5)})
	r := runTable(t, s, l, Options{})
	// a: one copy short; b: one copy too many; c missing; e extra.
	checkCounts(t, r, counts{src: 4, dst: 4, missing: 2, extra: 2})
}

func TestTableCancelReturnsAndCleansUp(t *testing.T) {
	schema := ordersSchema()
	ctx, cancel := context.WithCancel(context.Background())
	s := &fakeSnap{schema: schema, boundary: posOf(10), gen: func(i int, row []record.Value) {
		if i == 5000 {
			cancel()
		}
		copy(row, orderRow(i))
	}}
	dir := t.TempDir()
	_, err := Table(ctx, s, &fakeLake{}, schema, s.boundary, Options{TempDir: dir})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertEmptyDir(t, dir)
}

func TestReportTextSaysWhatDiffers(t *testing.T) {
	s, l := fixture(5)
	l.changes = l.changes[1:]
	rep := &Report{Connector: "orders", Position: "02aa", Boundary: "0/16B3748", Tables: []*TableReport{runTable(t, s, l, Options{})}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"public.orders: DIFFERS", "missing 1", "    missing", "id=1", "NOT EQUAL: 1 of 1 tables differ"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if rep.Equal() {
		t.Error("Equal() with a missing key")
	}
	b.Reset()
	if err := rep.WriteJSON(&b); err != nil || !strings.Contains(b.String(), `"missing": 1`) || !strings.Contains(b.String(), `"elapsed_seconds"`) {
		t.Errorf("json: %v\n%s", err, b.String())
	}
	s, l = fixture(5)
	rep.Tables = []*TableReport{runTable(t, s, l, Options{})}
	b.Reset()
	_ = rep.WriteText(&b)
	if !strings.HasSuffix(b.String(), "equal (1 tables)\n") {
		t.Errorf("equal report:\n%s", b.String())
	}
}

func TestTableColumnMissingInOldFilesIsNull(t *testing.T) {
	s, l := fixture(3)
	// The lake's files predate doc: the reader lists it missing and hands NULL.
	for i := range l.changes {
		l.changes[i].Row[3] = nil
		l.changes[i].Missing = []int{3}
	}
	s.rows[1][3] = nil // the source's doc is NULL for id 2 only
	r := runTable(t, s, l, Options{})
	checkCounts(t, r, counts{src: 3, dst: 3, differing: 2})
	for _, e := range r.Examples {
		if e.Kind != DiffDiffers || len(e.Columns) != 1 || e.Columns[0].Column != "doc" || e.Columns[0].Destination != "NULL" {
			t.Fatalf("example %+v", e)
		}
	}
}

func TestTableWithReadLimitComparesTheSame(t *testing.T) {
	s, l := fixture(500)
	l.changes = l.changes[1:]
	checkCounts(t, runTable(t, s, l, Options{ReadLimit: 1e6}), counts{src: 500, dst: 499, missing: 1})
}

// A server that renders a column unlike the form verify was given makes every bucket
// differ: they are all read and compared key by key, and nothing is reported.
func TestDigestFormUnlikeTheServerCostsReadsNotFalseReports(t *testing.T) {
	s, l := fixture(3000)
	ds := &digestSnap{fakeSnap: s, skew: true}
	rep, err := Table(context.Background(), ds, l, s.schema, s.boundary, Options{TempDir: t.TempDir(), RangeRows: 100, Method: MethodDigest})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep, counts{src: 3000, dst: 3000})
	if rep.Method != MethodDigest || rep.RangesDiffering != rep.Ranges || rep.Ranges < 16 || ds.scans != 1 {
		t.Fatalf("method %s, %d of %d ranges differing, %d bucket scans; want every range read in one scan", rep.Method, rep.RangesDiffering, rep.Ranges, ds.scans)
	}
	// A real difference is still found among them.
	l.changes[7].Row[1] = "tampered"
	rep, err = Table(context.Background(), ds, l, s.schema, s.boundary, Options{TempDir: t.TempDir(), RangeRows: 100, Method: MethodDigest})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, rep, counts{src: 3000, dst: 3000, differing: 1})
}
