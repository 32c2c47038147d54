package verify

import (
	"context"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// genLake yields n snapshot records made on the fly, so the benchmark measures verify
// and not a slice of a million rows.
type genLake struct {
	n   int
	row func(i int, row []record.Value)
}

func (l *genLake) Describe(*record.Schema) string { return "gen://" }
func (l *genLake) Close(context.Context) error    { return nil }
func (l *genLake) Changes(ctx context.Context, s *record.Schema, fn func(c *connector.StoredChange) error) error {
	c := connector.StoredChange{Op: record.OpRead, Row: make([]record.Value, len(s.Columns)), Where: "gen://f"}
	for i := range l.n {
		l.row(i, c.Row)
		c.Pos = posOf(uint64(i + 1))
		if err := fn(&c); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkTable compares a table of 1M rows (four columns: int64 key, string,
// decimal, small JSON) that are equal on both sides; it reports ns and allocations per
// source row.
func BenchmarkTable(b *testing.B) {
	const n = 1_000_000
	schema := ordersSchema()
	// Values made once, so the generator costs only the key's boxing; the key differs on
	// every row.
	var vals [1024][]record.Value
	for i := range vals {
		vals[i] = orderRow(i)
	}
	fill := func(i int, row []record.Value) {
		copy(row, vals[i%len(vals)])
		row[0] = int64(i)
	}
	s := &fakeSnap{schema: schema, estimate: n, boundary: posOf(1 << 40), gen: nil}
	dir := b.TempDir()
	b.ReportAllocs()
	for b.Loop() {
		snap := &limitedSnap{fakeSnap: s, n: n, fill: fill}
		rep, err := Table(context.Background(), snap, &genLake{n: n, row: fill}, schema, s.boundary, Options{TempDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Equal() || rep.SourceRows != n {
			b.Fatalf("not equal: %+v", rep)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/row")
}

// limitedSnap scans n generated rows.
type limitedSnap struct {
	*fakeSnap
	n    int
	fill func(i int, row []record.Value)
}

func (s *limitedSnap) Scan(ctx context.Context, sc *record.Schema, fn func(row []record.Value) error) error {
	row := make([]record.Value, len(sc.Columns))
	for i := range s.n {
		s.fill(i, row)
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}
