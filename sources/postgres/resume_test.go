package postgres

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// memState is a connector.StateStore in memory, shared by the runs of one test.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memState) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.m[key]...), nil
}

func (s *memState) Save(_ context.Context, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), data...)
	return nil
}

// crashRun reads until batch number crashAt (1-based) is emitted, then blocks that
// emit until the context ends, as a killed process would never return. onBatch runs
// inside each earlier emit. It returns the records of the batches before crashAt.
func crashRun(t *testing.T, src *Source, start record.Position, crashAt int, onBatch func(n int)) []record.Record {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []record.Record
	crashed := make(chan struct{})
	done := make(chan error, 1)
	n := 0
	go func() {
		done <- src.Read(ctx, start, func(ctx context.Context, recs []record.Record) error {
			n++
			if n == crashAt {
				close(crashed)
				<-ctx.Done()
				return ctx.Err()
			}
			got = append(got, recs...)
			if onBatch != nil {
				onBatch(n)
			}
			return nil
		})
	}()
	select {
	case <-crashed:
	case err := <-done:
		t.Fatalf("Read ended before the crash: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("the crash point was not reached")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Read did not return after the crash")
	}
	src.Close(context.Background())
	return got
}

// rowKey is a record's key as text, prefixed with its table.
func rowKey(r record.Record) string {
	row := r.After
	if r.Op == record.OpDelete {
		row = r.Before
	}
	var parts []string
	for _, i := range r.Schema.KeyIndexes() {
		parts = append(parts, fmt.Sprint(row[i]))
	}
	return r.Table() + ":" + strings.Join(parts, ",")
}

// rebuild applies records in position order: the latest per key, deletes applied,
// as a reader of the lake would. Values are rendered with fmt.
func rebuild(recs []record.Record) map[string]string {
	sorted := append([]record.Record(nil), recs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Pos.Compare(sorted[j].Pos) < 0 })
	out := map[string]string{}
	for _, r := range sorted {
		if r.Op == record.OpDelete {
			delete(out, rowKey(r))
			continue
		}
		out[rowKey(r)] = fmt.Sprint(r.After)
	}
	return out
}

// TestSnapshotResumesInsideTheInterruptedChunk crashes a snapshot in the middle of a
// chunk with writes going on, restarts it from the committed position, and checks
// that it continues inside that chunk, no position repeats or goes back, and the
// committed records plus the new run rebuild exactly the source's tables
// (docs/design.md, "Exactly once").
func TestSnapshotResumesInsideTheInterruptedChunk(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	other := dbConn(t, pgServer(t).DSN)
	exec(t, conn,
		`CREATE TABLE rz_a (id int PRIMARY KEY, v text NOT NULL)`,
		`INSERT INTO rz_a SELECT i, 'a' || i FROM generate_series(1, 5000) i`,
		// A composite key whose index order is not the column order, with text
		// values that need quoting.
		`CREATE TABLE rz_b (k1 text, k2 int, v int, PRIMARY KEY (k2, k1))`,
		`INSERT INTO rz_b SELECT CASE WHEN i % 3 = 0 THEN 'it''s \' || i ELSE 'b' || i END, i % 7, i FROM generate_series(1, 3000) i`,
		// Known row counts make the split known: rz_a in two chunks, ids 1-2500
		// and the rest.
		`ANALYZE rz_a, rz_b`)
	state := &memState{}
	p := params(t, "resume", pgServer(t).DSN, []string{"public.rz_*"}, config.SnapshotInitial, connector.ModeStream)
	p.Config.Config.(*Config).SnapshotChunk = 2500
	p.State = state

	// Run 1: writes after the consistent point while the snapshot is read; the
	// pipeline commits after batch 1 (inside the first chunk); the process dies
	// during batch 2.
	src := openSource(t, p)
	first := crashRun(t, src, nil, 2, func(n int) {
		if n == 1 {
			exec(t, other,
				`UPDATE rz_a SET v = 'changed early' WHERE id IN (10, 3000)`,
				`DELETE FROM rz_a WHERE id IN (20, 4000)`,
				`INSERT INTO rz_a VALUES (6000, 'new early')`,
				`UPDATE rz_b SET v = -1 WHERE k2 = 3`)
		}
	})
	if len(first) != snapshotBatch {
		t.Fatalf("run 1 emitted %d records before the crash", len(first))
	}
	committed := first[len(first)-1].Pos
	if err := src.Ack(testCtx(t), committed); err != nil {
		t.Fatal(err)
	}
	sp, ok := parseSnapshotPos(committed)
	if !ok || sp.table != 0 || sp.chunk != 0 || sp.row != snapshotBatch || sp.key == nil {
		t.Fatalf("committed position %s, want table 0 chunk 0 row %d with its key", src.DescribePosition(committed), snapshotBatch)
	}

	// Between the runs: deletes before the committed row inside its chunk (the
	// rows after it shift), inserts before and after it, an update after it.
	exec(t, other,
		`DELETE FROM rz_a WHERE id IN (2010, 2040)`,
		`INSERT INTO rz_a VALUES (2040, 'back'), (0, 'zero'), (7000, 'late')`,
		`UPDATE rz_a SET v = 'changed between' WHERE id IN (2049, 2300)`,
		`DELETE FROM rz_b WHERE k2 = 5`)

	// Run 2 from the committed position, with a write once streaming.
	src2 := openSource(t, p)
	r := startRead(t, src2, committed)
	r.waitPhase(t, "streaming")
	exec(t, other, `INSERT INTO rz_a VALUES (8000, 'streamed')`, `UPDATE rz_b SET v = -2 WHERE k2 = 1`)
	var second []record.Record
	deadline := time.Now().Add(60 * time.Second)
	for {
		second = r.snapshot()
		if n := len(second); n > 0 && second[n-1].Op == record.OpUpdate && values(second[n-1])["v"] == int32(-2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the streamed writes did not arrive (%d records)", len(second))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	second = r.snapshot()
	r.stop()

	// Positions: strictly increasing across the commit, never repeated.
	prev := committed
	for i, rec := range second {
		if rec.Pos.Compare(prev) <= 0 {
			t.Fatalf("run 2 record %d at %s does not follow %s", i, src2.DescribePosition(rec.Pos), src2.DescribePosition(prev))
		}
		prev = rec.Pos
	}
	// 2049, the row after the committed key, changed between the runs: the stream
	// delivers it, the resumed read leaves it out (its number 2049 is used up).
	if sp2, _ := parseSnapshotPos(second[0].Pos); sp2.table != 0 || sp2.chunk != 0 || sp2.row != snapshotBatch+2 {
		t.Errorf("run 2 began at %s, want chunk 0 row %d of the first table", src2.DescribePosition(second[0].Pos), snapshotBatch+2)
	}
	if v := values(second[0]); v["id"] != int32(2050) {
		t.Errorf("run 2 began with row %v, want id 2050 (2049 changed after the consistent point)", v)
	}
	// Exactly once: a row changed after the consistent point (during run 1 or
	// between the runs) is not read again by run 2, whose snapshot is later; the
	// stream delivers its changes.
	for _, rec := range second {
		if rec.Op != record.OpRead {
			continue
		}
		v := values(rec)
		switch {
		case rec.Table() == "rz_a" && (v["id"] == int32(2049) || v["id"] == int32(2300) || v["id"] == int32(2040) || v["id"] == int32(7000) || v["id"] == int32(6000)):
			t.Errorf("run 2 read %s although the stream delivers its change", rowKey(rec))
		case rec.Table() == "rz_b" && v["k2"] == int32(3):
			t.Errorf("run 2 read %s although the stream delivers its update", rowKey(rec))
		}
	}

	// Each row of the snapshot read once, and the rebuild equals the source.
	all := append(append([]record.Record(nil), first...), second...)
	reads := map[string]int{}
	for _, rec := range all {
		if rec.Op == record.OpRead {
			if reads[rowKey(rec)]++; reads[rowKey(rec)] == 2 {
				t.Errorf("row %s read twice by the snapshot", rowKey(rec))
			}
		}
	}
	got := rebuild(all)
	want := map[string]string{}
	rows, err := conn.Query(testCtx(t), `SELECT id, v FROM rz_a`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int32
		var v string
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("rz_a:%d", id)] = fmt.Sprint([]record.Value{id, v})
	}
	rows.Close()
	rows, err = conn.Query(testCtx(t), `SELECT k1, k2, v FROM rz_b`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k1 string
		var k2, v int32
		if err := rows.Scan(&k1, &k2, &v); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("rz_b:%s,%d", k1, k2)] = fmt.Sprint([]record.Value{k1, k2, v})
	}
	rows.Close()
	if len(got) != len(want) {
		t.Errorf("rebuilt %d rows, the source has %d", len(got), len(want))
	}
	bad := 0
	for k, v := range want {
		if got[k] != v && bad < 10 {
			bad++
			t.Errorf("row %s: rebuilt %q, source %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && bad < 10 {
			bad++
			t.Errorf("row %s rebuilt but not in the source", k)
		}
	}
}

// TestSnapshotResumeOfATableWithoutKeyContinuesAfterItsLastCtid crashes inside a
// table without a key (REPLICA IDENTITY FULL, no primary key), split by ctid: the
// resume continues after the last ctid committed, so every row is read once and
// positions only go forward.
func TestSnapshotResumeOfATableWithoutKeyContinuesAfterItsLastCtid(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn,
		`CREATE TABLE rk_full (a int, b text)`, `ALTER TABLE rk_full REPLICA IDENTITY FULL`,
		`INSERT INTO rk_full SELECT i, 'x' || i FROM generate_series(1, 5000) i`, `ANALYZE rk_full`)
	p := params(t, "resumefull", pgServer(t).DSN, []string{"public.rk_full"}, config.SnapshotInitialOnly, connector.ModeStream)
	p.Config.Config.(*Config).SnapshotChunk = 2500
	p.State = &memState{}
	src := openSource(t, p)
	first := crashRun(t, src, nil, 2, nil)
	committed := first[len(first)-1].Pos
	if sp, _ := parseSnapshotPos(committed); len(sp.key) != 1 || !strings.HasPrefix(sp.key[0], "(") || sp.chunk != 0 || sp.row != snapshotBatch {
		t.Fatalf("committed %s: want chunk 0 row %d with its ctid", src.DescribePosition(committed), snapshotBatch)
	}
	r := startRead(t, openSource(t, p), committed)
	if err := r.result(t); err != nil {
		t.Fatal(err)
	}
	second := r.snapshot()
	prev := committed
	for i, rec := range second {
		if rec.Pos.Compare(prev) <= 0 {
			t.Fatalf("record %d at %s does not follow %s", i, describePosition(rec.Pos, nil), describePosition(prev, nil))
		}
		prev = rec.Pos
	}
	if sp, _ := parseSnapshotPos(second[0].Pos); sp.chunk != 0 || sp.row != snapshotBatch+1 {
		t.Errorf("run 2 began at %s, want chunk 0 row %d", describePosition(second[0].Pos, nil), snapshotBatch+1)
	}
	if sp, _ := parseSnapshotPos(prev); !sp.done {
		t.Errorf("run 2 ended at %s without the completion marker", describePosition(prev, nil))
	}
	seen := map[int32]int{}
	for _, rec := range append(first, second...) {
		seen[values(rec)["a"].(int32)]++
	}
	for i := int32(1); i <= 5000; i++ {
		if seen[i] != 1 {
			t.Errorf("row a=%d read %d times, want once", i, seen[i])
		}
	}
	if len(seen) != 5000 {
		t.Errorf("read %d distinct rows, the table has 5000", len(seen))
	}
}
