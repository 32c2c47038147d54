package parquet

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/parquet-go/parquet-go"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/record"
)

// stored is one StoredChange copied out of the reused one Changes hands over.
type stored struct {
	op        record.Op
	pos       record.Position
	row       []record.Value
	unchanged []int
	missing   []int
	where     string
}

func readerParams(url string, s3cfg S3) connector.DestinationParams {
	return connector.DestinationParams{Name: "verify",
		Config: config.Destination{Type: "parquet", Config: &Config{URL: url, S3: s3cfg}}}
}

func openReader(t *testing.T, url string, s3cfg S3) *Reader {
	t.Helper()
	r, err := Kind{}.OpenReader(context.Background(), readerParams(url, s3cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r.(*Reader)
}

func readAll(t *testing.T, r *Reader, s *record.Schema) []stored {
	t.Helper()
	out, err := collect(r, s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func collect(r *Reader, s *record.Schema) ([]stored, error) {
	var out []stored
	err := r.Changes(context.Background(), s, func(c *connector.StoredChange) error {
		if len(c.Row) != len(s.Columns) {
			panic("row not aligned with the schema")
		}
		out = append(out, stored{op: c.Op, pos: slices.Clone(c.Pos), row: slices.Clone(c.Row),
			unchanged: slices.Clone(c.Unchanged), missing: slices.Clone(c.Missing), where: c.Where})
		return nil
	})
	return out, err
}

// sameValue is reflect.DeepEqual with NaN equal to NaN, inside lists too.
func sameValue(a, b record.Value) bool {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok && math.IsNaN(x) && math.IsNaN(y) {
			return true
		}
	case float32:
		if y, ok := b.(float32); ok && math.IsNaN(float64(x)) && math.IsNaN(float64(y)) {
			return true
		}
	case []record.Value:
		y, ok := b.([]record.Value)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// readerCase is a column of the round trip: what is written and what must come back.
type readerCase struct {
	name  string
	typ   record.Type
	write [4]record.Value
	read  [4]record.Value
}

// readerCases are the type cases of types_test.go, with what the lake gives back
// where it differs from what was written: a decimal at the column's scale (DuckDB's
// text of it, which is independent of the reader) and NaN/±Infinity in a DECIMAL as
// NULL, as the writer stores them; and a few more extremes.
func readerCases() []readerCase {
	var cs []readerCase
	for _, tc := range typeCases {
		c := readerCase{name: tc.name, typ: tc.typ, write: tc.vals, read: tc.vals}
		if tc.typ.Kind == record.KindDecimal {
			for i, w := range tc.want {
				if w == "NULL" {
					c.read[i] = nil
				} else {
					c.read[i] = record.Decimal(w)
				}
			}
		}
		if tc.name == "ld" {
			c.read = [4]record.Value{[]record.Value{record.Decimal("1.50"), record.Decimal("-12345678.99")}, []record.Value{nil}, nil, []record.Value{}}
		}
		cs = append(cs, c)
	}
	d := func(s string) record.Value { return record.Decimal(s) }
	return append(cs,
		readerCase{name: "d9", typ: dec(9, 3),
			write: [4]record.Value{d("-999999.999"), d("999999.999"), d("0.001"), d("-0.010")},
			read:  [4]record.Value{d("-999999.999"), d("999999.999"), d("0.001"), d("-0.010")}},
		readerCase{name: "d18", typ: dec(18, 4),
			write: [4]record.Value{d("-99999999999999.9999"), d("99999999999999.9999"), d("12.34"), d("0")},
			read:  [4]record.Value{d("-99999999999999.9999"), d("99999999999999.9999"), d("12.3400"), d("0.0000")}},
		readerCase{name: "d38n", typ: dec(38, 38),
			write: [4]record.Value{d("-0.99999999999999999999999999999999999999"), d("0.5"), nil, d("-0.00000000000000000000000000000000000001")},
			read:  [4]record.Value{d("-0.99999999999999999999999999999999999999"), d("0.50000000000000000000000000000000000000"), nil, d("-0.00000000000000000000000000000000000001")}},
		// Outside Parquet's DECIMAL range, so written as text (a fallback column).
		readerCase{name: "dwide", typ: dec(2, 5),
			write: [4]record.Value{d("0.00012"), nil, d("-0.00099"), d("NaN")},
			read:  [4]record.Value{d("0.00012"), nil, d("-0.00099"), d("NaN")}},
		readerCase{name: "dinf", typ: typ(record.KindDate),
			write: [4]record.Value{record.Date(math.MinInt32), record.Date(math.MaxInt32), record.Date(-719528), nil},
			read:  [4]record.Value{record.Date(math.MinInt32), record.Date(math.MaxInt32), record.Date(-719528), nil}},
		readerCase{name: "u64b", typ: typ(record.KindUint64),
			write: [4]record.Value{uint64(math.MaxUint64), uint64(1), nil, uint64(math.MaxUint64 - 1)},
			read:  [4]record.Value{uint64(math.MaxUint64), uint64(1), nil, uint64(math.MaxUint64 - 1)}},
	)
}

// roundTripRecords writes four inserts of every kind, an update with unchanged
// columns, a delete with a key-only before image and a truncate.
func roundTripRecords(cs []readerCase) (*record.Schema, []record.Record, []stored) {
	cols := make([]record.Column, len(cs))
	for i, c := range cs {
		cols[i] = record.Column{Name: c.name, Type: c.typ, Nullable: true, Key: c.name == "i64"}
	}
	s := record.NewSchema("public", "All Types", cols)
	key := slices.IndexFunc(cs, func(c readerCase) bool { return c.name == "i64" })
	jcol := slices.IndexFunc(cs, func(c readerCase) bool { return c.name == "j" })
	bycol := slices.IndexFunc(cs, func(c readerCase) bool { return c.name == "by" })
	var recs []record.Record
	var want []stored
	for r := 0; r < 4; r++ {
		w := make([]record.Value, len(cs))
		g := make([]record.Value, len(cs))
		for i, c := range cs {
			w[i], g[i] = c.write[r], c.read[r]
		}
		recs = append(recs, record.Record{Op: record.OpCreate, Schema: s, After: w, Pos: pos8(uint64(r + 1)), CommitTS: day1, TxID: "tx1"})
		want = append(want, stored{op: record.OpCreate, pos: pos8(uint64(r + 1)), row: g, unchanged: []int{}, missing: []int{}})
	}
	upd := slices.Clone(recs[0].After)
	upd[jcol], upd[bycol] = nil, nil
	recs = append(recs, record.Record{Op: record.OpUpdate, Schema: s, After: upd, Unchanged: []string{"j", "by"}, Pos: pos8(5), CommitTS: day1})
	updWant := slices.Clone(want[0].row)
	updWant[jcol], updWant[bycol] = nil, nil
	want = append(want, stored{op: record.OpUpdate, pos: pos8(5), row: updWant, unchanged: []int{jcol, bycol}, missing: []int{}})

	before := make([]record.Value, len(cs))
	before[key] = cs[key].write[1]
	recs = append(recs, record.Record{Op: record.OpDelete, Schema: s, Before: before, Pos: pos8(6), CommitTS: day1})
	delWant := make([]record.Value, len(cs))
	delWant[key] = cs[key].read[1]
	want = append(want, stored{op: record.OpDelete, pos: pos8(6), row: delWant, unchanged: []int{}, missing: []int{}})

	recs = append(recs, record.Record{Op: record.OpTruncate, Schema: s, Pos: append(pos8(7), 0xab, 0), CommitTS: day1.AddDate(0, 0, 1)})
	want = append(want, stored{op: record.OpTruncate, pos: append(pos8(7), 0xab, 0), row: make([]record.Value, len(cs)), unchanged: []int{}, missing: []int{}})
	return s, recs, want
}

func checkStored(t *testing.T, s *record.Schema, got, want []stored) {
	t.Helper()
	slices.SortFunc(got, func(a, b stored) int { return a.pos.Compare(b.pos) })
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.op != w.op || !bytes.Equal(g.pos, w.pos) {
			t.Errorf("record %d: op %c pos %s, want %c %s", i, g.op, g.pos, w.op, w.pos)
		}
		if !slices.Equal(g.unchanged, w.unchanged) || !slices.Equal(g.missing, w.missing) {
			t.Errorf("record %d: unchanged %v missing %v, want %v %v", i, g.unchanged, g.missing, w.unchanged, w.missing)
		}
		for c := range s.Columns {
			if !sameValue(g.row[c], w.row[c]) {
				t.Errorf("record %d column %s (%s): read %#v, want %#v", i, s.Columns[c].Name, s.Columns[c].Type, g.row[c], w.row[c])
			}
		}
	}
}

func TestReaderRoundTripsEveryKindLocal(t *testing.T) {
	dir := t.TempDir()
	s, recs, want := roundTripRecords(readerCases())
	writeFlush(t, openLocal(t, dir, "rt"), recs)

	r := openReader(t, "file://"+dir, S3{})
	got := readAll(t, r, s)
	checkStored(t, s, got, want)
	for _, g := range got {
		if !strings.HasPrefix(g.where, filepath.Join(dir, "public", "All%20Types")+"/date=") || !strings.HasSuffix(g.where, ".parquet") {
			t.Errorf("where = %q", g.where)
		}
	}
	if d := r.Describe(s); d != "file://"+dir+"/public/All%20Types/" {
		t.Errorf("Describe = %q", d)
	}

	// A file left in staging and an unfinished file are not the lake's.
	tmp := filepath.Join(dir, "public", "All%20Types", "date=2026-03-04", "x.parquet.tmp")
	if err := os.WriteFile(tmp, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	checkStored(t, s, readAll(t, r, s), want)

	// A table never written yields nothing.
	other := record.NewSchema("public", "never", s.Columns)
	if got := readAll(t, r, other); len(got) != 0 {
		t.Errorf("never-written table: %d records", len(got))
	}
}

func TestReaderRoundTripsEveryKindS3(t *testing.T) {
	srv := startS3(t)
	bucket := makeBucket(t, srv)
	url := "s3://" + bucket + "/raw/cdc"
	s, recs, want := roundTripRecords(readerCases())
	writeFlush(t, openURL(t, url, "rt", s3Config(srv)), recs)

	// Unfinished objects beside the files are not the lake's.
	ctx := context.Background()
	for i := range 3 {
		key := "raw/cdc/public/All%20Types/date=2026-03-04/zz" + string(rune('a'+i)) + ".parquet.tmp"
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}

	r := openReader(t, url, s3Config(srv))
	r.tempDir = t.TempDir()
	got := readAll(t, r, s)
	checkStored(t, s, got, want)
	for _, g := range got {
		if !strings.HasPrefix(g.where, "s3://"+bucket+"/raw/cdc/public/All%20Types/date=") {
			t.Errorf("where = %q", g.where)
		}
	}
	if left, _ := os.ReadDir(r.tempDir); len(left) != 0 {
		t.Errorf("downloads left behind: %v", left)
	}
	if got := readAll(t, r, record.NewSchema("public", "never", s.Columns)); len(got) != 0 {
		t.Errorf("never-written table: %d records", len(got))
	}
	if keys := listKeys(t, srv, bucket); slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "staging") }) {
		t.Errorf("the reader left objects: %v", keys)
	}
}

func TestReaderS3ListsEveryPage(t *testing.T) {
	srv := startS3(t)
	bucket := makeBucket(t, srv)
	url := "s3://" + bucket
	s := record.NewSchema("db", "t", []record.Column{{Name: "id", Type: typ(record.KindInt64), Key: true}})
	d := openURL(t, url, "pages", s3Config(srv))
	// Each flush makes one object; 1003 objects need more than one listing page.
	const files = 1003
	ctx := context.Background()
	for i := range files {
		if err := d.Write(ctx, []record.Record{{Op: record.OpCreate, Schema: s, After: []record.Value{int64(i)}, Pos: pos8(uint64(i + 1)), CommitTS: day1}}); err != nil {
			t.Fatal(err)
		}
		if err := d.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, openReader(t, url, s3Config(srv)), s)
	if len(got) != files {
		t.Fatalf("read %d records, want %d", len(got), files)
	}
	seen := map[int64]bool{}
	for _, g := range got {
		seen[g.row[0].(int64)] = true
	}
	if len(seen) != files {
		t.Errorf("read %d distinct ids, want %d", len(seen), files)
	}
}

func TestReaderMissingLakeIsAnError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := Kind{}.OpenReader(context.Background(), readerParams("file://"+dir, S3{}))
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("missing directory: err = %v, want one naming %s", err, dir)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("OpenReader created %s", dir)
	}
}

func TestReaderS3MissingBucketIsAnError(t *testing.T) {
	srv := startS3(t)
	_, err := Kind{}.OpenReader(context.Background(), readerParams("s3://no-such-bucket-here/x", s3Config(srv)))
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket-here" does not exist`) {
		t.Errorf("missing bucket: err = %v, want one naming the bucket", err)
	}
	out, lerr := srv.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if lerr != nil {
		t.Fatal(lerr)
	}
	for _, b := range out.Buckets {
		if aws.ToString(b.Name) == "no-such-bucket-here" {
			t.Error("OpenReader created the bucket")
		}
	}
}

func TestReaderCorruptFileIsNamed(t *testing.T) {
	dir := t.TempDir()
	s := record.NewSchema("db", "t", []record.Column{{Name: "id", Type: typ(record.KindInt64), Key: true}})
	writeFlush(t, openLocal(t, dir, "c"), []record.Record{{Op: record.OpCreate, Schema: s, After: []record.Value{int64(1)}, Pos: pos8(1), CommitTS: day1}})
	bad := filepath.Join(dir, "db", "t", "date=2026-03-04", "0000000000000002.parquet")
	if err := os.WriteFile(bad, []byte("PAR1 this is not a parquet file PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := collect(openReader(t, "file://"+dir, S3{}), s)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("err = %v, want one naming %s", err, bad)
	}
}

// TestReaderConvertsWidenedColumns reads files of two schema versions with the
// newer one: a column added later is missing from the older file's rows, widened
// columns convert exactly, and a narrowing is refused naming file, column and types.
func TestReaderConvertsWidenedColumns(t *testing.T) {
	dir := t.TempDir()
	d := openLocal(t, dir, "w")
	v1 := record.NewSchema("db", "t", []record.Column{
		{Name: "id", Type: typ(record.KindInt32), Key: true},
		{Name: "f", Type: typ(record.KindFloat32)},
		{Name: "m", Type: dec(10, 2)},
		{Name: "gone", Type: typ(record.KindString)},
	})
	v2 := record.NewSchema("db", "t", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "f", Type: typ(record.KindFloat64)},
		{Name: "m", Type: dec(12, 4)},
		{Name: "added", Type: typ(record.KindString)},
	})
	writeFlush(t, d, []record.Record{
		{Op: record.OpCreate, Schema: v1, After: []record.Value{int32(math.MaxInt32), float32(0.1), record.Decimal("-12345678.91"), "x"}, Pos: pos8(1), CommitTS: day1},
		{Op: record.OpCreate, Schema: v1, After: []record.Value{int32(-2), float32(math.NaN()), nil, nil}, Pos: pos8(2), CommitTS: day1},
	})
	d = openLocal(t, dir, "w")
	writeFlush(t, d, []record.Record{
		{Op: record.OpUpdate, Schema: v2, After: []record.Value{int64(1) << 40, 0.1, record.Decimal("12345678.9123"), "new"}, Pos: pos8(3), CommitTS: day1},
	})
	r := openReader(t, "file://"+dir, S3{})
	got := readAll(t, r, v2)
	want := []stored{
		{op: record.OpCreate, pos: pos8(1), row: []record.Value{int64(math.MaxInt32), float64(float32(0.1)), record.Decimal("-12345678.9100"), nil}, unchanged: []int{}, missing: []int{3}},
		{op: record.OpCreate, pos: pos8(2), row: []record.Value{int64(-2), math.NaN(), nil, nil}, unchanged: []int{}, missing: []int{3}},
		{op: record.OpUpdate, pos: pos8(3), row: []record.Value{int64(1) << 40, 0.1, record.Decimal("12345678.9123"), "new"}, unchanged: []int{}, missing: []int{}},
	}
	checkStored(t, v2, got, want)

	narrow := record.NewSchema("db", "t", []record.Column{{Name: "id", Type: typ(record.KindInt16), Key: true}})
	_, err := collect(r, narrow)
	if err == nil {
		t.Fatal("reading int32/int64 files as int16: no error")
	}
	for _, s := range []string{dir, `"id"`, "int16", "int32"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %v, want it to name %s", err, s)
		}
	}
	// A decimal that lost digits at the new scale is refused, value by value.
	tight := record.NewSchema("db", "t", []record.Column{{Name: "m", Type: dec(12, 1)}})
	if _, err := collect(r, tight); err == nil || !strings.Contains(err.Error(), "-12345678.91") {
		t.Errorf("decimal(10,2) read as decimal(12,1): err = %v, want one naming the value", err)
	}
}

func writeFlush(t *testing.T, d *Destination, recs []record.Record) {
	t.Helper()
	ctx := context.Background()
	if err := d.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReaderStreamsRowGroups writes a file of many small row groups (as the
// destination's encoder does, with a smaller bound) and checks that the rows of
// each group reach fn before the next group is opened.
func TestReaderStreamsRowGroups(t *testing.T) {
	dir := t.TempDir()
	s := record.NewSchema("db", "big", []record.Column{
		{Name: "id", Type: typ(record.KindInt64), Key: true},
		{Name: "s", Type: typ(record.KindString)},
	})
	fs, err := buildSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "db", "big", "date=2026-03-04", "0000000000000001.parquet")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const groups, perGroup = 20, 50
	w := parquet.NewWriter(f, fs.parquet, parquet.PageBufferSize(1024))
	for g := range groups {
		b := newRowBatch(fs.leaves, nil)
		for i := range perGroup {
			n := g*perGroup + i
			rec := record.Record{Op: record.OpCreate, Schema: s, After: []record.Value{int64(n), strings.Repeat("v", n%17)}, Pos: pos8(uint64(n + 1)), CommitTS: day1}
			if err := b.appendRecord(fs, &rec); err != nil {
				t.Fatal(err)
			}
		}
		for i, cw := range w.ColumnWriters() {
			if _, err := cw.WriteRowValues(b.cols[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	r := openReader(t, "file://"+dir, S3{})
	opened, rows := 0, 0
	r.onRowGroup = func(file string, g int) {
		if file != path || g != opened {
			t.Errorf("row group %d of %s opened, want %d of %s", g, file, opened, path)
		}
		// Every row of the previous groups has been handed over, none of this one.
		if rows != g*perGroup {
			t.Errorf("row group %d opened after %d rows, want %d", g, rows, g*perGroup)
		}
		opened++
	}
	err = r.Changes(context.Background(), s, func(c *connector.StoredChange) error {
		if want := int64(rows); c.Row[0] != want || c.Row[1] != strings.Repeat("v", rows%17) {
			t.Fatalf("row %d: %v", rows, c.Row)
		}
		if rows >= opened*perGroup {
			t.Fatalf("row %d handed over while only %d row groups were opened", rows, opened)
		}
		rows++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if opened != groups || rows != groups*perGroup {
		t.Errorf("opened %d row groups and read %d rows, want %d and %d", opened, rows, groups, groups*perGroup)
	}
}

// TestReaderAgreesWithDuckDB compares values of one file as the reader and DuckDB
// read them, DuckDB's text against the reader's values rendered alike.
func TestReaderAgreesWithDuckDB(t *testing.T) {
	dir := t.TempDir()
	s, recs, _ := roundTripRecords(readerCases())
	writeFlush(t, openLocal(t, dir, "duck"), recs[:4])
	got := readAll(t, openReader(t, "file://"+dir, S3{}), s)
	slices.SortFunc(got, func(a, b stored) int { return a.pos.Compare(b.pos) })

	db := lakedb.DuckDB(t)
	if _, err := db.Exec("SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		return slices.IndexFunc(s.Columns, func(c record.Column) bool { return c.Name == name })
	}
	rows := queryStrings(t, db, `SELECT _pos, CAST(i64 AS VARCHAR), CAST(d38 AS VARCHAR), CAST(u64 AS VARCHAR), CAST(s AS VARCHAR), CAST(u AS VARCHAR), CAST(d9 AS VARCHAR) FROM `+lakedb.ParquetTree(dir)+` ORDER BY _pos`)
	if len(rows) != len(got) {
		t.Fatalf("DuckDB read %d rows, the reader %d", len(rows), len(got))
	}
	text := func(v record.Value) string {
		switch x := v.(type) {
		case nil:
			return "NULL"
		case record.Decimal:
			return string(x)
		case record.UUID:
			return x.String()
		case int64:
			return strconv.FormatInt(x, 10)
		case uint64:
			return strconv.FormatUint(x, 10)
		case string:
			return x
		}
		t.Fatalf("unexpected %T", v)
		return ""
	}
	for i, row := range rows {
		if row[0] != got[i].pos.String() {
			t.Errorf("row %d: _pos %s, reader %s", i, row[0], got[i].pos)
		}
		for j, name := range []string{"i64", "d38", "u64", "s", "u", "d9"} {
			if r := text(got[i].row[col(name)]); r != row[j+1] {
				t.Errorf("row %d column %s: reader %q, DuckDB %q", i, name, r, row[j+1])
			}
		}
	}
}

// TestReaderConversions covers the stored-type to table-type conversions value by
// value, without a file: what converts exactly, and what is refused.
func TestReaderConversions(t *testing.T) {
	u64 := parquet.Decimal(0, 20, parquet.FixedLenByteArrayType(9))
	flba := func(b ...byte) parquet.Value { return parquet.FixedLenByteArrayValue(b) }
	cases := []struct {
		node      parquet.Node
		want      record.Type
		in        parquet.Value
		out       record.Value
		typeError string // the converter is refused
		valError  string // the value is refused
	}{
		{node: parquet.Int(16), want: typ(record.KindInt32), in: parquet.Int32Value(-5), out: int32(-5)},
		{node: parquet.Int(16), want: typ(record.KindInt64), in: parquet.Int32Value(-5), out: int64(-5)},
		{node: parquet.Leaf(parquet.Int32Type), want: typ(record.KindFloat64), in: parquet.Int32Value(7), out: float64(7)},
		{node: parquet.Leaf(parquet.Int32Type), want: dec(10, 2), in: parquet.Int32Value(-7), out: record.Decimal("-7.00")},
		{node: parquet.Leaf(parquet.Int64Type), want: dec(5, 0), in: parquet.Int64Value(123456), valError: "does not fit"},
		{node: parquet.Leaf(parquet.Int64Type), want: typ(record.KindUint64), in: parquet.Int64Value(-1), valError: "not a uint64"},
		{node: u64, want: typ(record.KindUint64), in: flba(0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), out: uint64(math.MaxUint64)},
		{node: u64, want: typ(record.KindUint64), in: flba(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), valError: "not a uint64"},
		{node: u64, want: dec(20, 0), in: flba(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe), out: record.Decimal("-2")},
		{node: parquet.Decimal(2, 9, parquet.Int32Type), want: dec(12, 4), in: parquet.Int32Value(-5), out: record.Decimal("-0.0500")},
		{node: parquet.Decimal(2, 9, parquet.Int32Type), want: dec(12, 0), in: parquet.Int32Value(150), valError: "rounded"},
		{node: parquet.Decimal(2, 9, parquet.Int32Type), want: dec(12, 0), in: parquet.Int32Value(-300), out: record.Decimal("-3")},
		{node: parquet.Decimal(2, 9, parquet.Int32Type), want: record.Type{Kind: record.KindDecimalText, Scale: -1}, in: parquet.Int32Value(-5), out: record.Decimal("-0.05")},
		{node: parquet.String(), want: dec(2, 5), in: parquet.ByteArrayValue([]byte("0.00012")), out: record.Decimal("0.00012")},
		{node: parquet.JSON(), want: typ(record.KindString), in: parquet.ByteArrayValue([]byte(`{"a":1}`)), out: `{"a":1}`},
		{node: parquet.Leaf(parquet.FloatType), want: typ(record.KindFloat64), in: parquet.FloatValue(float32(math.Inf(-1))), out: math.Inf(-1)},
		{node: parquet.Leaf(parquet.Int64Type), want: typ(record.KindInt32), typeError: "stored as int64, the table has int32"},
		{node: parquet.Leaf(parquet.DoubleType), want: typ(record.KindFloat32), typeError: "stored as float64, the table has float32"},
		{node: parquet.String(), want: dec(10, 2), typeError: "stored as string, the table has decimal(10,2)"},
		{node: parquet.TimestampAdjusted(parquet.Microsecond, false), want: typ(record.KindTimestampTZ), typeError: "stored as timestamp, the table has timestamptz"},
		{node: parquet.Leaf(parquet.ByteArrayType), want: typ(record.KindString), typeError: "stored as bytes, the table has string"},
	}
	for _, c := range cases {
		have, err := storedType(c.node)
		if err != nil {
			t.Errorf("%v: %v", c.node, err)
			continue
		}
		conv, err := converter(c.node, have, c.want)
		if c.typeError != "" {
			if err == nil || !strings.Contains(err.Error(), c.typeError) {
				t.Errorf("%s -> %s: err = %v, want %q", have, c.want, err, c.typeError)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s -> %s: %v", have, c.want, err)
			continue
		}
		got, err := conv(c.in)
		if c.valError != "" {
			if err == nil || !strings.Contains(err.Error(), c.valError) {
				t.Errorf("%s -> %s of %v: err = %v, want %q", have, c.want, c.in, err, c.valError)
			}
			continue
		}
		if err != nil || !sameValue(got, c.out) {
			t.Errorf("%s -> %s of %v: %#v, %v, want %#v", have, c.want, c.in, got, err, c.out)
		}
	}
}
