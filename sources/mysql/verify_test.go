package mysql

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// scanTable scans one table of snap in rebuild's form.
func scanTable(t *testing.T, snap connector.Snapshot, table string) []string {
	t.Helper()
	var sch *record.Schema
	for _, s := range snap.Tables() {
		if s.QualifiedName() == table {
			sch = s
		}
	}
	if sch == nil {
		t.Fatalf("table %s not in the snapshot", table)
	}
	var out []string
	err := snap.Scan(testCtx(t), sch, func(row []record.Value) error {
		var all []string
		for _, v := range row {
			if v == nil {
				all = append(all, "NULL")
			} else {
				all = append(all, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(all, "\t"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestVerifyBoundaryUnderLoad opens verify snapshots while a writer changes the table
// in many small transactions and the source streams them, and checks that the
// records below each snapshot's boundary rebuild exactly what the snapshot scanned.
func TestVerifyBoundaryUnderLoad(t *testing.T) {
	exec(t, "CREATE DATABASE vloaddb; CREATE TABLE vloaddb.a (id int PRIMARY KEY, v varchar(200) NOT NULL)")
	exec(t, "INSERT INTO vloaddb.a VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e')")
	h := newHarness(t, "vload", "vloaddb.a")
	p := h.params(connector.ModeStream)
	src, err := Kind{}.Open(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var recs []record.Record
	done := make(chan error, 1)
	go func() {
		done <- src.Read(ctx, nil, func(_ context.Context, batch []record.Record) error {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range batch {
				if r.Op != record.OpCheckpoint {
					recs = append(recs, r)
				}
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		<-done
		_ = src.Close(context.Background())
	}()

	db := openDB(t)
	wctx, wstop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		next := 6
		for wctx.Err() == nil {
			var stmts []string
			for n := 1 + rng.Intn(3); n > 0; n-- {
				switch rng.Intn(3) {
				case 0:
					stmts = append(stmts, fmt.Sprintf("INSERT INTO vloaddb.a VALUES (%d, 'new')", next))
					next++
				case 1:
					stmts = append(stmts, fmt.Sprintf("UPDATE vloaddb.a SET v = CONCAT(v, '+') WHERE id = %d", 1+rng.Intn(next)))
				default:
					stmts = append(stmts, fmt.Sprintf("DELETE FROM vloaddb.a WHERE id = %d", 1+rng.Intn(next)))
				}
			}
			if _, err := db.ExecContext(context.Background(), "BEGIN; "+strings.Join(stmts, "; ")+"; COMMIT"); err != nil {
				werr = err
				return
			}
		}
	}()

	type taken struct {
		boundary record.Position
		desc     string
		rows     []string
	}
	var snaps []taken
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		snap, err := Kind{}.OpenSnapshot(testCtx(t), p)
		if err != nil {
			t.Fatal(err)
		}
		rows := scanTable(t, snap, "vloaddb.a")
		snaps = append(snaps, taken{boundary: snap.Boundary(), desc: snap.DescribeBoundary(), rows: rows})
		t.Logf("snapshot %d at %s: %d rows", i, snap.DescribeBoundary(), len(rows))
		if err := snap.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := snap.Close(testCtx(t)); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	wstop()
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	// A last row tells when the stream has delivered everything before it.
	exec(t, "INSERT INTO vloaddb.a VALUES (-1, 'end')")
	deadline := time.Now().Add(60 * time.Second)
	var got []record.Record
	for found := false; !found; {
		if time.Now().After(deadline) {
			t.Fatal("the last row did not arrive")
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("Read ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		mu.Lock()
		got = append([]record.Record(nil), recs...)
		mu.Unlock()
		for _, r := range got {
			if r.Op == record.OpCreate && r.After[0] == int32(-1) {
				found = true
			}
		}
	}
	checkUniquePositions(t, got)

	for i, s := range snaps {
		var below []record.Record
		streamBelow, above := 0, 0
		for _, r := range got {
			if r.Pos.Compare(s.boundary) < 0 {
				below = append(below, r)
				if r.Pos[0] == posStream {
					streamBelow++
				}
			} else {
				above++
			}
		}
		if streamBelow == 0 || above == 0 {
			t.Fatalf("snapshot %d: %d streamed changes below the boundary, %d at or above: the load did not straddle it", i, streamBelow, above)
		}
		want := rebuild(below)["a"]
		if !reflect.DeepEqual(want, s.rows) {
			t.Errorf("snapshot %d at %s: %d rows below the boundary, %d scanned", i, s.desc, len(want), len(s.rows))
			diff(t, s.rows, want)
		}
	}
}

// TestVerifyScanValuesEqualTheSnapshots reads a table of every mapped type through
// the source's snapshot and through verify's Scan, and compares value by value.
func TestVerifyScanValuesEqualTheSnapshots(t *testing.T) {
	exec(t, "CREATE DATABASE vtypesdb; "+strings.Replace(typesTable, "typesdb.t", "vtypesdb.t", 1))
	exec(t, "SET sql_mode=''; INSERT INTO vtypesdb.t VALUES (1, "+typesValues+"); INSERT INTO vtypesdb.t (id) VALUES (2); INSERT INTO vtypesdb.t (id, c_float, c_text, c_blob, c_dec) VALUES (3, -0.1, '', '', -0.5)")
	exec(t, "CREATE TABLE vtypesdb.nokey (v int); INSERT INTO vtypesdb.nokey VALUES (1), (1)")
	h := newHarness(t, "vtypes", "vtypesdb.*")
	h.snapshot = "initial_only"
	recs := h.sync()
	byID := map[int32]record.Record{}
	for _, r := range recs {
		if r.Schema.Table == "t" {
			byID[r.After[0].(int32)] = r
		}
	}
	if len(byID) != 3 {
		t.Fatalf("snapshot gave %d rows of t, want 3", len(byID))
	}

	snap, err := Kind{}.OpenSnapshot(testCtx(t), h.params(connector.ModeStream))
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close(context.Background())
	var names []string
	for _, s := range snap.Tables() {
		names = append(names, s.QualifiedName()+fmt.Sprint(s.KeyIndexes()))
	}
	if got := strings.Join(names, " "); got != "vtypesdb.nokey[] vtypesdb.t[0]" {
		t.Fatalf("tables %q", got)
	}
	sch := snap.Tables()[1]
	if !reflect.DeepEqual(sch.Columns, byID[1].Schema.Columns) {
		t.Errorf("verify's columns differ from the snapshot's:\n%+v\n%+v", sch.Columns, byID[1].Schema.Columns)
	}
	n := 0
	err = snap.Scan(testCtx(t), sch, func(row []record.Value) error {
		n++
		want, ok := byID[row[0].(int32)]
		if !ok {
			t.Errorf("scan row %v not in the snapshot", row[0])
			return nil
		}
		for i, c := range sch.Columns {
			if !reflect.DeepEqual(row[i], want.After[i]) {
				t.Errorf("id %v column %s: scan %#v (%T), snapshot %#v (%T)", row[0], c.Name, row[i], row[i], want.After[i], want.After[i])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("scan gave %d rows, want 3", n)
	}
	if rows := scanTable(t, snap, "vtypesdb.nokey"); len(rows) != 2 {
		t.Errorf("nokey rows %v", rows)
	}
	if est, err := snap.EstimateRows(testCtx(t), sch); err != nil || est < 0 {
		t.Errorf("EstimateRows = %d, %v", est, err)
	}
	// An error from fn ends the scan and comes back as is; the snapshot stays usable.
	stop := errors.New("stop")
	if err := snap.Scan(testCtx(t), sch, func([]record.Value) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Scan returned %v, want fn's error", err)
	}
	if rows := scanTable(t, snap, "vtypesdb.nokey"); len(rows) != 2 {
		t.Errorf("after a failed scan, nokey rows %v", rows)
	}
}
