package duckdb

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// TestAValueThatDoesNotFitFailsTheLoadAndLeavesNoRow: a decimal with more digits than
// its column, in the second Arrow batch (after DuckDB stored the first), fails the
// load with the row and column, permanently, and the rolled-back transaction leaves
// the table empty and no view of the rows behind.
func TestAValueThatDoesNotFitFailsTheLoadAndLeavesNoRow(t *testing.T) {
	ctx := context.Background()
	path := newPath(t)
	c, err := openConn(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE main.t (id BIGINT PRIMARY KEY, price DECIMAL(5,2), note VARCHAR)`); err != nil {
		t.Fatal(err)
	}
	cols := []warehouse.LoadColumn{{Name: "id", Type: kind(record.KindInt64)},
		{Name: "price", Type: record.Type{Kind: record.KindDecimal, Precision: 5, Scale: 2}}, {Name: "note", Type: kind(record.KindString)}}
	bad := batchRows + 7
	rows := make([][]record.Value, batchRows+100)
	for i := range rows {
		rows[i] = []record.Value{int64(i), record.Decimal(fmt.Sprintf("%d.%02d", i%1000, i%100)), fmt.Sprintf("row %d", i)}
	}
	rows[bad-1][1] = record.Decimal("1000.5")
	if err := c.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	err = c.Load(ctx, "main", "t", cols, rows)
	want := fmt.Sprintf("row %d, column price: 1000.5 has more than 3 digits before the point of DECIMAL(5,2)", bad)
	if err == nil || !strings.Contains(err.Error(), want) || !connector.IsPermanent(err) {
		t.Fatalf("load: %v; want a permanent error saying %q", err, want)
	}
	if err := c.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// The same rows without the bad value load, and leave no view behind either.
	rows[bad-1][1] = nil
	if err := c.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(ctx, "main", "t", cols, rows); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db := readDB(t, path)
	var n, nulls, views int
	var sum string
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) - count(price), sum(price)::VARCHAR FROM main.t`).Scan(&n, &nulls, &sum); err != nil {
		t.Fatal(err)
	}
	wantSum := 0
	for i := range rows {
		if i != bad-1 {
			wantSum += (i%1000)*100 + i%100
		}
	}
	if n != len(rows) || nulls != 1 || sum != fmt.Sprintf("%d.%02d", wantSum/100, wantSum%100) {
		t.Errorf("read back %d rows, %d NULL prices, sum %s; want %d, 1, %d.%02d", n, nulls, sum, len(rows), wantSum/100, wantSum%100)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM duckdb_views() WHERE NOT internal`).Scan(&views); err != nil {
		t.Fatal(err)
	}
	if views != 0 {
		t.Errorf("%d views left in the file", views)
	}
}

// TestTwoConnectorsLoadOneFileAtOnce: two destinations on one file, each in its own
// schema, flushing at the same time, both keep all their rows: their loads must not
// touch a catalog entry in common, which DuckDB would refuse to commit.
func TestTwoConnectorsLoadOneFileAtOnce(t *testing.T) {
	ctx := context.Background()
	path := newPath(t)
	const flushes, rows = 8, 500
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	var dsts []*warehouse.Destination
	for _, schema := range []string{"a", "b"} {
		dst := open(ctx, t, "c_"+schema, &Config{Path: path, Schema: schema, Mode: "merge"})
		dsts = append(dsts, dst)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := record.NewSchema("src", "items", []record.Column{
				{Name: "id", Type: kind(record.KindInt64), Key: true}, {Name: "v", Type: kind(record.KindString), Nullable: true}})
			for f := range flushes {
				recs := make([]record.Record, rows)
				for i := range recs {
					recs[i] = record.Record{Op: record.OpCreate, Schema: s, Pos: pos(f*rows + i + 1), CommitTS: time.Unix(int64(f), 0).UTC(),
						After: []record.Value{int64(f*rows + i), schema}}
				}
				if err := dst.Write(ctx, recs); err != nil {
					errs <- fmt.Errorf("%s: write: %w", schema, err)
					return
				}
				if err := dst.Flush(ctx); err != nil {
					errs <- fmt.Errorf("%s: flush %d: %w", schema, f+1, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		for _, d := range dsts {
			d.Close(ctx)
		}
		return
	}
	for _, d := range dsts {
		d.Close(ctx)
	}
	db := readDB(t, path)
	for _, schema := range []string{"a", "b"} {
		var n, other int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE v <> '%s') FROM %s.items`, schema, schema)).Scan(&n, &other); err != nil {
			t.Fatal(err)
		}
		if n != flushes*rows || other != 0 {
			t.Errorf("schema %s: %d rows, %d of the other connector; want %d, 0", schema, n, other, flushes*rows)
		}
	}
}
