package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// offsetsGate keeps a pipe's offsets in a postgres:// store whose commits the test
// can hold back: close blocks every offset commit after the lake's flush (a crash
// between the two, once connectd is killed), open lets them through again after
// ending the sessions that waited, so that the killed process's last commit never
// lands.
type offsetsGate struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

func newOffsetsGate(t *testing.T, p *pipe) *offsetsGate {
	t.Helper()
	dsn, conn := newDatabase(t, "e2e_offsets")
	p.offsets = dsn
	return &offsetsGate{conn: conn}
}

func (g *offsetsGate) close(t *testing.T) {
	t.Helper()
	tx, err := g.conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), "LOCK TABLE connectd_offsets IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		t.Fatalf("lock the offsets table: %v", err)
	}
	g.tx = tx
}

func (g *offsetsGate) open(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, err := g.tx.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitSent waits until the walsender of slot has sent the WAL written so far, so
// that connectd has decoded everything committed before the call.
func waitSent(t *testing.T, conn *pgx.Conn, d *daemon, slot string) {
	t.Helper()
	var lsn string
	if err := conn.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, d, "the walsender to send "+lsn, func() (bool, string) {
		var sent bool
		err := conn.QueryRow(context.Background(), `SELECT coalesce(bool_or(r.sent_lsn >= $1::pg_lsn), false)
FROM pg_catalog.pg_stat_replication r JOIN pg_catalog.pg_replication_slots s ON s.active_pid = r.pid
WHERE s.slot_name = $2`, lsn, slot).Scan(&sent)
		if err != nil {
			return false, err.Error()
		}
		return sent, "not sent yet"
	})
}

// TestReplayAcrossDropNotNullWritesNoPositionTwice: a flush holds changes from before
// and after an ALTER TABLE ... DROP NOT NULL, connectd is killed before it commits
// the offset, and the restart replays them. pgoutput does not send nullability, so
// the first run describes the rows before the ALTER as NOT NULL (the catalog when it
// decoded them) and the replay as nullable (the catalog now). The lake's files are
// split by what changes the Parquet schema only, so the replay rewrites the same
// files and no _pos appears twice.
func TestReplayAcrossDropNotNullWritesNoPositionTwice(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_dropnotnull")
	mustExec(t, conn, `CREATE TABLE public.notes (id int PRIMARY KEY, note text NOT NULL);
INSERT INTO public.notes SELECT g, 'snap ' || g FROM generate_series(1, 10) g`)
	p := newPipe(t, "drop_not_null", dsn, false, "public.notes")
	gate := newOffsetsGate(t, p)
	// One flush for the 11 changes below: it starts when the 11th is written.
	p.flush = "{rows: 11, bytes: 16MiB, interval: 300s}"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	dir := lakeTable(p.lakeDir, "public", "notes")

	p.sync(t) // the snapshot, committed
	d := startRun(t, p.config)
	slot := "connectd_" + p.name
	waitFor(t, 30*time.Second, d, "the stream to start", func() (bool, string) {
		var active bool
		_ = conn.QueryRow(context.Background(), "SELECT coalesce(bool_or(active), false) FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&active)
		return active, "slot not active"
	})
	// The offsets were loaded: from now on the commit waits.
	gate.close(t)
	mustExec(t, conn, "INSERT INTO public.notes SELECT g, 'before ' || g FROM generate_series(11, 15) g")
	waitSent(t, conn, d, slot) // decoded with the catalog saying NOT NULL
	time.Sleep(300 * time.Millisecond)
	mustExec(t, conn, "ALTER TABLE public.notes ALTER COLUMN note DROP NOT NULL")
	mustExec(t, conn, "INSERT INTO public.notes SELECT g, CASE WHEN g % 2 = 0 THEN 'after ' || g END FROM generate_series(16, 20) g")
	mustExec(t, conn, "UPDATE public.notes SET note = NULL WHERE id = 3")
	waitFor(t, 30*time.Second, d, "the flush of the 11 changes", func() (bool, string) {
		n := lakeCount(t, db, dir)
		return n >= 21, fmt.Sprintf("%d rows in the lake", n)
	})
	r := d.stop(t, syscall.SIGKILL)
	gate.open(t)
	if r.code != -1 {
		t.Fatalf("SIGKILL should have killed connectd run, got %s", r)
	}
	if n := len(parquetFiles(t, dir)); n < 2 {
		t.Fatalf("%d files at the kill: the first run did not split the flush at the ALTER; the test proves nothing", n)
	}

	p.sync(t)
	rows := readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "note")
	checkPositions(t, rows)
	if len(rows) != 21 {
		t.Errorf("lake has %d records, want 21 (10 snapshot rows, 10 inserts, 1 update)", len(rows))
	}
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, note FROM public.notes"), "id", "note")
}

// slotConfirmedLSN reads the slot's confirmed_flush_lsn as text.
func slotConfirmedLSN(t *testing.T, conn *pgx.Conn, slot string) string {
	t.Helper()
	var lsn string
	if err := conn.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&lsn); err != nil {
		t.Fatalf("read slot %s: %v", slot, err)
	}
	return lsn
}

// syncFails runs `connectd sync`, which must fail with every one of wants in its
// output.
func (p *pipe) syncFails(t *testing.T, wants ...string) result {
	t.Helper()
	r := connectd(t, 90*time.Second, "sync", "-c", p.config)
	if r.code == 0 {
		t.Fatalf("connectd sync: want a failure, got %s", r)
	}
	for _, w := range wants {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("connectd sync output lacks %q: %s", w, r)
		}
	}
	return r
}

// TestSlotMovedPastTheCommittedPositionStopsTheConnector: a slot whose
// confirmed_flush_lsn is beyond what the committed offset covers has skipped WAL
// connectd never delivered. An operator's pg_replication_slot_advance, a slot
// dropped and created again, and offsets restored from an older backup each stop
// the sync with an error naming the gap and the reset; a connector that was only
// idle while other tables wrote (its slot followed the server) restarts without one.
func TestSlotMovedPastTheCommittedPositionStopsTheConnector(t *testing.T) {
	setup := func(t *testing.T, name string) (*pipe, *pgx.Conn, string) {
		dsn, conn := newDatabase(t, "e2e_"+name)
		mustExec(t, conn, `CREATE TABLE public.items (id int PRIMARY KEY, v text);
CREATE TABLE public.other (id serial PRIMARY KEY, pad text);
INSERT INTO public.items SELECT g, 'v' || g FROM generate_series(1, 20) g`)
		p := newPipe(t, name, dsn, false, "public.items")
		p.writeConfig(t)
		p.sync(t)
		return p, conn, "connectd_" + p.name
	}
	reconcile := func(t *testing.T, p *pipe, conn *pgx.Conn) {
		t.Helper()
		rows := readTable(t, lakedb.DuckDB(t), lakeTable(p.lakeDir, "public", "items"), "CAST(id AS VARCHAR) AS id", "v")
		checkPositions(t, rows)
		compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, v FROM public.items"), "id", "v")
	}

	t.Run("idle while other tables write", func(t *testing.T) {
		p, conn, slot := setup(t, "slot_idle")
		mustExec(t, conn, "INSERT INTO public.items VALUES (21, 'streamed')")
		p.sync(t)
		d := startRun(t, p.config)
		for i := 0; i < 5; i++ {
			mustExec(t, conn, "INSERT INTO public.other (pad) SELECT repeat('x', 100) FROM generate_series(1, 2000)")
		}
		var now string
		if err := conn.QueryRow(context.Background(), "SELECT pg_current_wal_lsn()::text").Scan(&now); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 60*time.Second, d, "the idle slot to confirm past the other table's WAL", func() (bool, string) {
			var past bool
			lsn := slotConfirmedLSN(t, conn, slot)
			if err := conn.QueryRow(context.Background(), "SELECT $1::pg_lsn >= $2::pg_lsn", lsn, now).Scan(&past); err != nil {
				return false, err.Error()
			}
			return past, "confirmed " + lsn + ", WAL at " + now
		})
		d.stopClean(t)
		show := connectd(t, 30*time.Second, "offsets", "show", "-c", p.config, p.name)
		if !strings.Contains(show.stdout, "everything before delivered") {
			t.Errorf("the idle connector's committed position is not a mark: %s", show)
		}
		mustExec(t, conn, "INSERT INTO public.items VALUES (22, 'after the idle time'); UPDATE public.items SET v = 'changed' WHERE id = 1")
		p.sync(t)
		p.sync(t)
		reconcile(t, p, conn)
	})

	t.Run("advanced by hand", func(t *testing.T) {
		p, conn, slot := setup(t, "slot_advanced")
		mustExec(t, conn, "INSERT INTO public.items VALUES (21, 'streamed')")
		p.sync(t)
		before := slotConfirmedLSN(t, conn, slot)
		mustExec(t, conn, "INSERT INTO public.items VALUES (22, 'skipped by the operator'); DELETE FROM public.items WHERE id = 2")
		mustExec(t, conn, "SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())", slot)
		after := slotConfirmedLSN(t, conn, slot)
		t.Logf("slot advanced from %s to %s", before, after)
		for i := 0; i < 2; i++ { // the error stays until the operator acts
			p.syncFails(t, "replication slot "+slot+" has confirmed WAL up to "+after, "bytes of WAL in between were never delivered",
				"connectd offsets reset "+p.name)
		}
		if r := connectd(t, 30*time.Second, "offsets", "reset", "-c", p.config, p.name); r.code != 0 {
			t.Fatalf("offsets reset: %s", r)
		}
		p.lakeDir = filepath.Join(t.TempDir(), "lake-after-reset")
		p.writeConfig(t)
		p.sync(t)
		reconcile(t, p, conn)
	})

	t.Run("dropped and created again after the snapshot", func(t *testing.T) {
		p, conn, slot := setup(t, "slot_recreated")
		mustExec(t, conn, "INSERT INTO public.items VALUES (21, 'lost with the old slot')")
		mustExec(t, conn, "SELECT pg_drop_replication_slot($1)", slot)
		mustExec(t, conn, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
		p.syncFails(t, "replication slot "+slot+" has confirmed WAL up to", "connectd offsets reset "+p.name)
	})

	t.Run("offsets restored from an older backup", func(t *testing.T) {
		p, conn, slot := setup(t, "slot_backup")
		backup := filepath.Join(t.TempDir(), "offsets-backup")
		if err := os.CopyFS(backup, os.DirFS(p.offsets)); err != nil {
			t.Fatal(err)
		}
		mustExec(t, conn, "INSERT INTO public.items VALUES (21, 'delivered after the backup')")
		p.sync(t)
		// A sync after the one above confirms its changes; then the old offsets return.
		p.sync(t)
		if err := os.RemoveAll(p.offsets); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(p.offsets, os.DirFS(backup)); err != nil {
			t.Fatal(err)
		}
		p.syncFails(t, "replication slot "+slot+" has confirmed WAL up to", "connectd offsets reset "+p.name)
	})
}

// killAfterObjects starts `connectd run`, waits until the S3 lake holds objects, and
// kills it with SIGKILL while the S3 server is paused, so that no upload in flight
// completes after the kill.
func killAfterObjects(t *testing.T, p *pipe, objects int) {
	t.Helper()
	d := startRun(t, p.config)
	waitForObjects(t, d, p.bucket, objects)
	if err := s3Server(t).Pause(); err != nil {
		t.Fatal(err)
	}
	r := d.stop(t, syscall.SIGKILL)
	if err := s3Server(t).Resume(); err != nil {
		t.Fatal(err)
	}
	if r.code != -1 {
		t.Fatalf("SIGKILL should have killed connectd run, got %s", r)
	}
}

// killMidSnapshot starts `connectd run` on p (an s3:// lake), kills it once the
// lake holds objects (flushes run one after the other, each after the commit of the
// one before, so an object of a second flush means the first was committed), and
// returns the committed position as `connectd offsets show` prints it.
func killMidSnapshot(t *testing.T, p *pipe, objects int) string {
	t.Helper()
	killAfterObjects(t, p, objects)
	show := connectd(t, 30*time.Second, "offsets", "show", "-c", p.config, p.name)
	if show.code != 0 {
		t.Fatalf("offsets show: %s", show)
	}
	return show.stdout
}

// TestResumedSnapshotWhoseRemainingTablesAreGoneFinishes: a snapshot killed inside
// its last table resumes after that table was removed from `tables`, or dropped in
// the source. There is nothing left to read; the resume must still end the snapshot
// (with a warning naming the table) and go on streaming, not fail on a completion
// marker that sorts before the committed position.
func TestResumedSnapshotWhoseRemainingTablesAreGoneFinishes(t *testing.T) {
	for _, tc := range []struct {
		name string
		gone func(t *testing.T, p *pipe, conn *pgx.Conn)
	}{
		{"removed from the config", func(t *testing.T, p *pipe, _ *pgx.Conn) {
			p.tables = []string{"public.a"}
			p.writeConfig(t)
		}},
		{"dropped in the source", func(t *testing.T, _ *pipe, conn *pgx.Conn) {
			mustExec(t, conn, "DROP TABLE public.big")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn, conn := newDatabase(t, "e2e_snapgone")
			mustExec(t, conn, `CREATE TABLE public.a (id int PRIMARY KEY, v text);
INSERT INTO public.a SELECT g, 'a' || g FROM generate_series(1, 10) g;
CREATE TABLE public.big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO public.big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 30000) g`)
			p := newPipe(t, "snapshot_gone", dsn, true, "public.*")
			p.extra = "      snapshot_chunk: 1000\n"
			p.flush = "{rows: 500, bytes: 16MiB, interval: 1s}"
			p.writeConfig(t)
			at := killMidSnapshot(t, p, 3) // a and big, then big again
			if !strings.Contains(at, "table #1") || strings.Contains(at, "snapshot complete") {
				t.Fatalf("committed position is not inside the second table: %s", at)
			}
			t.Logf("killed at %s", strings.TrimSpace(at))

			tc.gone(t, p, conn)
			mustExec(t, conn, "INSERT INTO public.a VALUES (11, 'written while stopped'); UPDATE public.a SET v = 'changed' WHERE id = 1")
			r := p.sync(t)
			if !strings.Contains(r.stderr, "no longer selected or no longer exists") || !strings.Contains(r.stderr, "public.big") {
				t.Errorf("the sync did not warn that public.big's remaining rows are not read: %s", r)
			}
			mustExec(t, conn, "INSERT INTO public.a VALUES (12, 'streamed'); DELETE FROM public.a WHERE id = 2")
			p.sync(t)
			db := lakedb.DuckDB(t)
			rows := readTable(t, db, p.tableDir(t, "public", "a"), "CAST(id AS VARCHAR) AS id", "v")
			checkPositions(t, rows)
			compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, v FROM public.a"), "id", "v")
			checkPositions(t, readTable(t, db, p.tableDir(t, "public", "big"), "CAST(id AS VARCHAR) AS id"))
		})
	}
}

// TestMultiDimensionalArraysKeepTheirDimensions: int[][] and text[][][] columns
// become nested Parquet lists, alike in the snapshot (COPY) and in the stream
// (pgoutput), and DuckDB reads back the source's arrays. A two-dimensional value in
// a column declared int[] is not flattened: the sync stops with the ALTER TABLE that
// declares the dimensions, and after it the value arrives with its shape.
func TestMultiDimensionalArraysKeepTheirDimensions(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_arrays")
	mustExec(t, conn, `CREATE TABLE public.grids (id int PRIMARY KEY, m int[][], words text[][][], flat int[]);
INSERT INTO public.grids VALUES
  (1, '{{1,2},{3,4}}', '{{{a,"b,c"}},{{NULL,"{d}"}}}', '{1,2}'),
  (2, '{}', '{}', '{}'),
  (3, '{{NULL,-5,6}}', NULL, NULL),
  (4, '[0:1][5:6]={{7,8},{9,10}}', '{{{x}}}', '{3}');
CREATE TABLE public.shapes (id int PRIMARY KEY, a int[]);
INSERT INTO public.shapes VALUES (1, '{1,2}')`)
	p := newPipe(t, "arrays", dsn, false, "public.grids", "public.shapes")
	p.writeConfig(t)
	p.sync(t)
	mustExec(t, conn, `INSERT INTO public.grids VALUES (5, '{{11,12},{13,14},{15,NULL}}', '{{{"q r",s},{t,u}}}', '{4,5}');
UPDATE public.grids SET m = '{{0,0},{0,1}}', words = '{{{changed}}}' WHERE id = 1`)
	p.sync(t)

	db := lakedb.DuckDB(t)
	rows := readTable(t, db, lakeTable(p.lakeDir, "public", "grids"), "CAST(id AS VARCHAR) AS id",
		"CAST(to_json(m) AS VARCHAR) AS m", "CAST(to_json(words) AS VARCHAR) AS words", "CAST(to_json(flat) AS VARCHAR) AS flat")
	checkPositions(t, rows)
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, `SELECT id::text AS id, array_to_json(m)::text AS m,
  array_to_json(words)::text AS words, array_to_json(flat)::text AS flat FROM public.grids`), "id", "m", "words", "flat")
	types := queryRows(t, db, "SELECT column_name, column_type FROM (DESCRIBE SELECT m, words FROM "+lakedb.ParquetTree(lakeTable(p.lakeDir, "public", "grids"))+")")
	for _, r := range types {
		want := map[string]string{"m": "INTEGER[][]", "words": "VARCHAR[][][]"}[r.val("column_name")]
		if r.val("column_type") != want {
			t.Errorf("lake column %s is %s, want %s", r.val("column_name"), r.val("column_type"), want)
		}
	}

	// A value with more dimensions than its column declares.
	mustExec(t, conn, "INSERT INTO public.shapes VALUES (2, '{{5,6},{7,8}}')")
	p.syncFails(t, "public.shapes column a", "the value has 2 dimensions, the column is declared with 1", "TYPE integer[][]")
	mustExec(t, conn, "ALTER TABLE public.shapes ALTER COLUMN a TYPE integer[][]")
	p.sync(t)
	found := false
	for _, f := range parquetFiles(t, lakeTable(p.lakeDir, "public", "shapes")) {
		for _, r := range queryRows(t, db, "SELECT CAST(id AS VARCHAR) AS id, CAST(to_json(a) AS VARCHAR) AS a FROM read_parquet('"+strings.ReplaceAll(f, "'", "''")+"')") {
			if r.val("id") == "2" {
				found = true
				if r.val("a") != "[[5,6],[7,8]]" {
					t.Errorf("shapes id 2 in the lake: %s, want [[5,6],[7,8]]", r.str("a"))
				}
			}
		}
	}
	if !found {
		t.Error("shapes id 2 is not in the lake after the ALTER")
	}
}

// TestResumedSnapshotDeliversEachChangeOnce kills a snapshot in its middle while a
// writer inserts, updates and deletes rows, lets the writer go on while connectd is
// down, and restarts it. The resumed snapshot reads in a later snapshot and leaves
// out every row changed since the first one's consistent point, whose changes the
// stream delivers: besides the reconcile, no key may have an `r` or `c` record
// followed by a `c` without a `d` between (a row read and then inserted again), and
// no `u` may repeat the row image before it (v counts the updates of each row, so a
// change delivered twice would show the same v twice).
func TestResumedSnapshotDeliversEachChangeOnce(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_resume_once")
	const total = 30000
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE public.accounts (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO public.accounts SELECT g, 0, 'seed' FROM generate_series(1, %d) g`, total))
	p := newPipe(t, "resume_once", dsn, true, "public.accounts")
	p.extra = "      snapshot_chunk: 1000\n"
	p.flush = "{rows: 500, bytes: 16MiB, interval: 1s}"
	p.writeConfig(t)

	w := &writer{conn: connect(t, dsn), rng: rand.New(rand.NewPCG(11, 12)), nextID: total + 1}
	for i := 1; i <= total; i++ {
		w.live = append(w.live, i)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	at := killMidSnapshot(t, p, 2)
	if strings.Contains(at, "snapshot complete") || !strings.Contains(at, "snapshot") {
		stop()
		<-done
		t.Fatalf("committed position is not inside the snapshot: %s", at)
	}
	time.Sleep(time.Second) // changes while connectd is down
	stop()
	<-done
	if err := w.failure(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed at %s; %d changes written", strings.TrimSpace(at), w.changes())
	r := p.sync(t)
	if !strings.Contains(r.stderr, "resuming the interrupted snapshot") {
		t.Errorf("the sync did not resume the snapshot: %s", r)
	}

	db := lakedb.DuckDB(t)
	rows := readTable(t, db, p.tableDir(t, "public", "accounts"), "CAST(id AS VARCHAR) AS id", "CAST(v AS VARCHAR) AS v", "note")
	checkPositions(t, rows)
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, v::text AS v, note FROM public.accounts"), "id", "v", "note")
	last := map[string]row{}
	bad := 0
	for _, r := range rows {
		id, op := r.val("id"), r.val("_op")
		prev, seen := last[id]
		switch {
		case op == "r" && seen:
			bad++
			t.Errorf("id %s read twice by the snapshot (%s after %s)", id, r.describe(), prev.describe())
		case op == "c" && seen && prev.val("_op") != "d":
			bad++
			t.Errorf("id %s inserted after %s without a delete between: delivered twice", id, prev.describe())
		case op == "u" && seen && prev.val("_op") != "d" && prev.val("v") == r.val("v"):
			bad++
			t.Errorf("id %s update %s repeats %s: delivered twice", id, r.describe(), prev.describe())
		}
		last[id] = r
		if bad > 10 {
			t.FailNow()
		}
	}
}
