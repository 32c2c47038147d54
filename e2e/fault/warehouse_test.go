package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/offsets"
)

// The warehouse destinations under faults: the workload's changes stream into a
// target of their own (a PostgreSQL cluster; a DuckDB file,
// warehouse_duckdb_test.go), through two connectors (merge and append), and connectd
// is killed at random moments, in the middle of a load, and right after the target
// committed; the target's own position must make every change land exactly once.

// whEnv is one warehouse fault test's world.
type whEnv struct {
	injector
	dsn     string    // the source database
	conn    *pgx.Conn // the test's own connection to it
	target  *testenv.Postgres
	tgtDSN  string
	tgt     *pgx.Conn // the test's own connection to the target database
	duck    string    // the DuckDB file the connectors load instead, when set
	m       *model
	w       *workload // nil until the workload starts
	merge   string    // the merge connector (target schema of the same name)
	appendC string    // the append connector (target schema of the same name)
	offsets string    // the offsets URL
	store   offsets.Store
	config  string
}

// startTarget starts the target cluster of one test: a server of its own, which a
// fault may crash. A commit the target acknowledged must survive that crash, as the
// source's do (synchronous_commit).
func startTarget(t *testing.T) *testenv.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WalLevel: "replica",
		ExtraConf: map[string]string{"synchronous_commit": "on"}})
	if err != nil {
		t.Fatalf("start the target cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	return pg
}

// newWhEnv creates the source database with the workload's tables (preload fills them),
// a target (kind postgres: a database of a cluster of the test's own; duckdb: a file),
// and the config of the two connectors; flush is its YAML flow.
func newWhEnv(t *testing.T, name, kind string, rng *rand.Rand, offsetsURL func(dir string) string, flush string, preload func(*whEnv)) *whEnv {
	t.Helper()
	ctx := context.Background()
	n := serial.Add(1)
	e := &whEnv{injector: newInjector(t, rng), m: newModel(pgSpecs)}
	dbName := fmt.Sprintf("%s_%d", name, n)
	var err error
	if e.dsn, err = pgServer.CreateDatabase(ctx, dbName); err != nil {
		t.Fatal(err)
	}
	if e.conn, err = pgx.Connect(ctx, e.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	if _, err := e.conn.Exec(ctx, schemaDDL); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dest := func() string { return fmt.Sprintf("      type: duckdb\n      path: %q\n", e.duck) }
	if kind == "duckdb" {
		e.duck = filepath.Join(dir, "warehouse.duckdb")
	} else {
		e.target = startTarget(t)
		if e.tgtDSN, err = e.target.CreateDatabase(ctx, dbName); err != nil {
			t.Fatal(err)
		}
		e.reconnectTarget()
		t.Cleanup(func() { e.tgt.Close(context.Background()) })
		dest = func() string { return fmt.Sprintf("      type: postgres\n      dsn: %q\n", e.tgtDSN) }
	}
	e.merge = fmt.Sprintf("%s_merge_%d_%d", name, os.Getpid(), n)
	e.appendC = fmt.Sprintf("%s_append_%d_%d", name, os.Getpid(), n)
	e.offsets = offsetsURL(dir)
	if e.store, err = offsets.Open(ctx, e.offsets); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.store.Close() })
	e.config = filepath.Join(dir, "connectd.yaml")
	listen := freeAddr(t)
	cfg := fmt.Sprintf("offsets: %q\nserver:\n  listen: %s\nconnectors:\n", e.offsets, listen)
	for _, c := range []struct{ name, mode string }{{e.merge, "merge"}, {e.appendC, "append"}} {
		cfg += fmt.Sprintf("  %s:\n    source:\n      type: postgres\n      dsn: %q\n      tables: [\"fault.*\"]\n", c.name, e.dsn)
		cfg += "    destination:\n" + dest() + fmt.Sprintf("      schema: %s\n      mode: %s\n      flush: %s\n", c.name, c.mode, flush)
	}
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("connectd-fault-%s-%d.log", name, os.Getpid()))
	_ = os.Remove(logPath)
	e.d = newDaemon(t, e.config, listen, logPath)
	if e.duck != "" {
		e.d.bin = duckdbBin.Get(t)
	}
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("FAULT_KEEP_LOG") == "" {
			os.Remove(logPath)
		} else {
			t.Logf("connectd's log (every run): %s", logPath)
		}
	})
	preload(e)
	return e
}

func (e *whEnv) reconnectTarget() {
	e.t.Helper()
	e.tgt = connectRetry(e.t, e.tgt, e.tgtDSN)
}

// waitSnapshot waits, with the daemon running, until both connectors committed the
// end of the initial snapshot.
func (e *whEnv) waitSnapshot(timeout time.Duration) {
	e.t.Helper()
	e.ensureRunning()
	deadline := time.Now().Add(timeout)
	for !snapshotDone(committed(e.t, e.store, e.merge)) || !snapshotDone(committed(e.t, e.store, e.appendC)) {
		if !e.d.running() {
			e.t.Fatalf("connectd run exited during the snapshot: %v; log tail:\n%s", e.d.err(), e.d.logTail(80))
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the snapshot was not committed within %s; log tail:\n%s", timeout, e.d.logTail(60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// targetPosition is what the target's offsets table holds for a connector ("" for
// no row).
func (e *whEnv) targetPosition(conn string) string {
	e.t.Helper()
	var pos string
	err := e.tgt.QueryRow(context.Background(), fmt.Sprintf("SELECT position FROM %s._connectd_offsets WHERE connector = $1",
		pgx.Identifier{conn}.Sanitize()), conn).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	if err != nil {
		e.t.Fatalf("read the target's position of %s: %v", conn, err)
	}
	return pos
}

// --- faults ---

// killAfter SIGKILLs connectd after a random delay.
func (e *whEnv) killAfter(max time.Duration) {
	e.t.Helper()
	e.ensureRunning()
	e.sleep(0, max)
	e.d.kill(e.t)
	e.count("kill at a random moment")
}

// killDuringLoad SIGKILLs connectd while one of its flushes has a write transaction
// open on the target (COPY into a staging table, the set statements, the position).
func (e *whEnv) killDuringLoad() {
	e.t.Helper()
	e.ensureRunning()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && e.d.running() {
		var n int
		if err := e.tgt.QueryRow(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'connectd' AND backend_xid IS NOT NULL").Scan(&n); err != nil {
			e.t.Fatalf("watch the target's sessions: %v", err)
		}
		if n > 0 {
			e.d.kill(e.t)
			e.count("kill during a load (target transaction open)")
			return
		}
		time.Sleep(time.Duration(e.rng.Intn(3)) * time.Millisecond)
	}
	e.d.kill(e.t)
	e.count("kill at a random moment")
}

// indexPositions indexes _pos of every target table, so that the latest position a
// connector's data holds can be watched cheaply (a user may add indexes to the
// tables connectd loads).
func (e *whEnv) indexPositions() {
	e.t.Helper()
	for _, conn := range []string{e.merge, e.appendC} {
		for _, tm := range e.m.tables {
			if _, err := e.tgt.Exec(context.Background(), "CREATE INDEX ON "+whTable(conn, tm.spec.name)+" (_pos)"); err != nil {
				e.t.Fatalf("index the target's positions: %v", err)
			}
		}
	}
}

// dataPosition is the latest position the rows of a connector's tables hold.
func (e *whEnv) dataPosition(conn string) string {
	e.t.Helper()
	var parts []string
	for _, tm := range e.m.tables {
		parts = append(parts, "(SELECT max(_pos) FROM "+whTable(conn, tm.spec.name)+")")
	}
	var pos *string
	if err := e.tgt.QueryRow(context.Background(), "SELECT greatest("+strings.Join(parts, ", ")+")").Scan(&pos); err != nil {
		e.t.Fatalf("read the target's data position of %s: %v", conn, err)
	}
	if pos == nil {
		return ""
	}
	return *pos
}

// someConnector is the merge or the append connector, at random.
func (e *whEnv) someConnector() string {
	if e.rng.Intn(2) == 0 {
		return e.appendC
	}
	return e.merge
}

// killAfterTargetCommit SIGKILLs connectd as soon as what the target holds of a
// connector moves, its position or its rows (either must move with the other, in one
// transaction): the flush is committed in the target, and the offsets store's commit
// is in flight or just done.
func (e *whEnv) killAfterTargetCommit() {
	e.t.Helper()
	e.ensureRunning()
	conn := e.someConnector()
	probe := func() string { return e.targetPosition(conn) }
	if e.rng.Intn(2) == 0 {
		probe = func() string { return e.dataPosition(conn) }
	}
	e.d.waitChange(30*time.Second, time.Millisecond, probe)
	e.d.kill(e.t)
	e.count("kill right after a target commit")
}

// crashTarget SIGKILLs every process of the target cluster, as a power loss would,
// and starts it again (crash recovery) while connectd runs.
func (e *whEnv) crashTarget() {
	e.t.Helper()
	e.ensureRunning()
	e.sleep(0, time.Second)
	e.target.Kill()
	e.sleep(0, 2*time.Second)
	if err := e.target.Restart(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.reconnectTarget()
	e.count("target PostgreSQL crash (SIGKILL) and restart")
}

// --- the checks ---

// whTable is a workload table's target table in a connector's schema.
func whTable(conn, source string) string {
	_, table, _ := strings.Cut(source, ".")
	return pgx.Identifier{conn, table}.Sanitize()
}

// checkMergeTarget compares each merge table with its source table, row for row,
// every column rendered as text: by srcCols on the source, by tgtCols on the target
// (the same SQL on a PostgreSQL target, lakeCols on a DuckDB one).
func checkMergeTarget(t *testing.T, p *problems, src, tgt sourceRows, tgtCols func(*tableSpec) []string, conn string, m *model) (checked, diffs int) {
	t.Helper()
	for _, tm := range m.tables {
		s := tm.spec
		want, err := src(fmt.Sprintf("SELECT id, %s, %s FROM %s", s.srcVer, strings.Join(s.srcCols, ", "), s.name))
		if err != nil {
			t.Fatalf("source %s: %v", s.name, err)
		}
		tt := whTable(conn, s.name)
		got, err := tgt(fmt.Sprintf("SELECT id, %s, %s FROM %s", s.srcVer, strings.Join(tgtCols(s), ", "), tt))
		if err != nil {
			t.Fatalf("target %s: %v", tt, err)
		}
		names := append([]string{"ver"}, s.cols...)
		for id, w := range want {
			checked++
			g, ok := got[id]
			if !ok {
				diffs++
				p.add("merge", "%s id %d is in the source (%v) but not in the target", tt, id, w)
				continue
			}
			for i := range w {
				if g[i] != w[i] {
					diffs++
					p.add("merge", "%s id %d column %s: target %q, source %q", tt, id, names[i], g[i], w[i])
					break
				}
			}
		}
		for id, g := range got {
			if _, ok := want[id]; !ok {
				diffs++
				p.add("merge", "%s id %d is in the target (%v) but not in the source", tt, id, g)
			}
		}
	}
	return checked, diffs
}

// readAppendTarget reads an append table as the lake checks read a lake table: in
// _pos order, the value columns rendered by the source's SQL (the target's types are
// the source's).
func readAppendTarget(t *testing.T, tgt *pgx.Conn, table string, s *tableSpec) []lakeRecord {
	t.Helper()
	q := fmt.Sprintf("SELECT _op, _pos, id, ver, %s FROM %s ORDER BY _pos", strings.Join(s.srcCols, ", "), table)
	rows, err := tgt.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("target: %s: %v", q, err)
	}
	defer rows.Close()
	out, err := changeRecords(rows, len(s.srcCols))
	if err != nil {
		t.Fatalf("target: %s: %v", q, err)
	}
	return out
}

// checkTargets checks both connectors' targets: merge equals the source, append holds
// every committed change exactly once, in order per key, and rebuilds the source.
// A DuckDB file is read with connectd stopped: DuckDB lets one process open it.
func (e *whEnv) checkTargets() counts {
	e.t.Helper()
	var c counts
	p := &problems{t: e.t, label: "target", shown: map[string]int{}}
	tgt, tgtCols := pgRows(e.tgt), func(s *tableSpec) []string { return s.srcCols }
	readAppend := func(table string, s *tableSpec) []lakeRecord { return readAppendTarget(e.t, e.tgt, table, s) }
	if e.duck != "" {
		db, err := lakedb.OpenFile(e.duck)
		if err != nil {
			e.t.Fatal(err)
		}
		defer db.Close()
		// The target's types are the lake's, which lakeCols render as srcCols render
		// the source's.
		tgt, tgtCols = sqlRows(db), func(s *tableSpec) []string { return s.lakeCols }
		readAppend = func(table string, s *tableSpec) []lakeRecord { return readDuckRecords(e.t, db, table, s) }
		p.label = "target " + e.duck
	}
	checked, diffs := checkMergeTarget(e.t, p, pgRows(e.conn), tgt, tgtCols, e.merge, e.m)
	c.checked += checked
	c.stateDiffs += diffs
	posSeen := map[string]string{}
	for _, tm := range e.m.tables {
		tt := whTable(e.appendC, tm.spec.name)
		recs := readAppend(tt, tm.spec)
		for _, r := range recs {
			if prev, ok := posSeen[r.pos]; ok {
				c.dupPos++
				p.add("_pos twice", "_pos %s in %s and in %s", r.pos, prev, tt)
			}
			posSeen[r.pos] = tt
		}
		checkChanges(p, tm, recs, &c)
		checkState(e.t, p, tm, recs, pgRows(e.conn), &c)
	}
	return c
}

// finish stops connectd, catches up with `connectd sync`, and checks both targets.
func (e *whEnv) finish() {
	e.t.Helper()
	e.ensureRunning()
	deadline := time.Now().Add(time.Minute)
	for _, err := e.d.metric("connectd_connector_up", e.merge); err != nil; _, err = e.d.metric("connectd_connector_up", e.merge) {
		if time.Now().After(deadline) {
			e.t.Fatalf("connectd run does not serve its metrics: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.d.stop(e.t)
	code, out := runCmdWith(e.t, e.d.bin, 10*time.Minute, "sync", "-c", e.config, "--log-format", "json")
	if code != 0 {
		e.t.Fatalf("connectd sync: exit %d\n%s", code, tailString(out, 80))
	}
	c := e.checkTargets()
	e.t.Logf("targets: %s", c)
	if !c.clean() {
		e.t.Errorf("the targets differ from the source: %s", c)
	}
	kinds := make([]string, 0, len(e.byKind))
	for k, n := range e.byKind {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	e.t.Logf("faults: %s", strings.Join(kinds, "; "))
	totals.ran.Store(true)
	totals.faults.Add(int64(e.faults))
	totals.checked.Add(int64(c.checked))
	totals.missing.Add(int64(c.missing))
	totals.duplicates.Add(int64(max(c.duplicates, c.dupPos)))
	e.t.Logf("faults injected: %d, changes checked: %d, missing: %d, duplicates: %d", e.faults, c.checked, c.missing, max(c.duplicates, c.dupPos))
}

// TestWarehouseStreamingFaults streams the random workload into a merge and an append
// target and SIGKILLs connectd at random moments, in the middle of loads (a large
// transaction makes large flushes) and right after a target commit, and crashes the
// target; then it catches up with `connectd sync` and checks both targets.
func TestWarehouseStreamingFaults(t *testing.T) {
	e, form := newStreamingWhEnv(t, "whstream", "postgres")
	e.indexPositions()
	k := form.kills
	faults := append(times(k-k/2-k/4, func() { e.killAfter(form.killMax) }), times(k/2, e.killDuringLoad)...)
	faults = append(faults, times(k/4, e.killAfterTargetCommit)...)
	faults = append(faults, times(form.crashes, e.crashTarget)...)
	e.streamFaults(form, faults, e.killDuringLoad, e.killDuringLoad)
}

// times is n faults f.
func times(n int, f func()) []func() {
	out := make([]func(), n)
	for i := range out {
		out[i] = f
	}
	return out
}

// whForm is the size of a streaming fault test, short or long.
type whForm struct {
	kills, crashes        int
	bigTxn                int64 // rows of the large transaction
	killMax, gapMax, pace time.Duration
}

func streamingForm() whForm {
	f := whForm{kills: 14, crashes: 2, bigTxn: 30_000, killMax: 3 * time.Second, gapMax: time.Second, pace: 2 * time.Millisecond}
	if long() {
		f = whForm{kills: killCount(1000), crashes: 40, bigTxn: 500_000, killMax: 1500 * time.Millisecond, gapMax: 600 * time.Millisecond, pace: 20 * time.Millisecond}
	} else if k := killCount(0); k > 0 {
		f.kills = k
	}
	return f
}

// newStreamingWhEnv is the env of a streaming fault test into a target of kind: the
// tables preloaded, connectd running, the snapshot committed.
func newStreamingWhEnv(t *testing.T, name, kind string) (*whEnv, whForm) {
	t.Helper()
	s := seed()
	t.Logf("seed %d (rerun with -seed %d or FAULT_SEED=%d)", s, s, s)
	rng := rand.New(rand.NewSource(s))
	offsetsIn := func(dir string) string {
		n := serial.Add(1)
		return offsetsURL(t, dir, fmt.Sprintf("%s-%d-%d", name, os.Getpid(), n), n)
	}
	e := newWhEnv(t, name, kind, rng, offsetsIn,
		"{rows: 5000, bytes: 64MiB, interval: 1s}", func(e *whEnv) {
			ctx := context.Background()
			for _, l := range []load{{"fault.accounts", 2000}, {"fault.events", 2000}, {"fault.scratch", 50}} {
				if err := e.m.preload(ctx, e.conn, l.table, l.rows); err != nil {
					t.Fatal(err)
				}
			}
		})
	e.d.start(t)
	e.waitSnapshot(5 * time.Minute)
	return e, streamingForm()
}

// streamFaults runs the workload while it injects the faults in a random order, with
// the large transaction a third of the way in, followed by bigFaults (kills during
// its loads); then it catches up and checks the targets (finish).
func (e *whEnv) streamFaults(form whForm, faults []func(), bigFaults ...func()) {
	t := e.t
	t.Helper()
	w, err := newWorkload(context.Background(), e.dsn, e.rng.Int63(), e.m)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	w.pace = form.pace
	w.start()
	stopped := false
	defer func() {
		if !stopped {
			w.stop()
		}
	}()
	e.rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	big := len(faults) / 3
	bigFaults = append([]func(){func() {
		e.last = "a large transaction"
		t.Logf("the workload commits one transaction of %d rows", form.bigTxn)
		w.bigReq <- form.bigTxn
		go func() { <-w.bigDone }()
	}}, bigFaults...)
	faults = append(faults[:big], append(bigFaults, faults[big:]...)...)

	e.runFaults(w, faults, form.gapMax)
	stopWorkload(t, w, &stopped)
	e.finish()
}

// fileOffsets is a file store in dir, whatever FAULT_OFFSETS says: the tests that set
// the store back copy its directory.
func fileOffsets(dir string) string { return "file://" + filepath.Join(dir, "offsets") }

// syncSteps runs n workload transactions, then `connectd sync`, which must exit 0.
func (e *whEnv) syncSteps(w *workload, n int) string {
	e.t.Helper()
	for i := 0; i < n; i++ {
		if err := w.step(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
	code, out := runCmdWith(e.t, e.d.bin, 5*time.Minute, "sync", "-c", e.config, "--log-format", "json")
	if code != 0 {
		e.t.Fatalf("connectd sync: exit %d\n%s", code, tailString(out, 60))
	}
	return out
}

// hasLine reports whether a line of out contains every one of parts.
func hasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// copyDir copies a directory tree (the file offsets store).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", from, to, err)
	}
}

func newSyncEnv(t *testing.T, name string) (*whEnv, *workload) {
	t.Helper()
	s := seed()
	t.Logf("seed %d (rerun with -seed %d or FAULT_SEED=%d)", s, s, s)
	rng := rand.New(rand.NewSource(s))
	e := newWhEnv(t, name, "postgres", rng, fileOffsets, "{rows: 500, bytes: 16MiB, interval: 1s}", func(e *whEnv) {
		ctx := context.Background()
		for _, l := range []load{{"fault.accounts", 500}, {"fault.events", 500}, {"fault.scratch", 30}} {
			if err := e.m.preload(ctx, e.conn, l.table, l.rows); err != nil {
				t.Fatal(err)
			}
		}
	})
	w, err := newWorkload(context.Background(), e.dsn, rng.Int63(), e.m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.conn.Close(context.Background()) })
	e.syncSteps(w, 0) // the snapshot, before any change
	return e, w
}

func (e *whEnv) offsetsDir() string {
	u, err := url.Parse(e.offsets)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Path
}

// TestWarehouseStaleOffsetsStoreTargetWins sets the offsets store back to an older
// copy between two syncs: the targets' own positions are ahead, win, and bring the
// store up to them, and no change lands twice.
func TestWarehouseStaleOffsetsStoreTargetWins(t *testing.T) {
	e, w := newSyncEnv(t, "whstale")
	e.syncSteps(w, 50)
	old := filepath.Join(t.TempDir(), "offsets-copy")
	copyDir(t, e.offsetsDir(), old)
	oldMerge, oldAppend := committed(t, e.store, e.merge), committed(t, e.store, e.appendC)
	for round := 0; round < 3; round++ {
		e.syncSteps(w, 60)
		if err := os.RemoveAll(e.offsetsDir()); err != nil {
			t.Fatal(err)
		}
		copyDir(t, old, e.offsetsDir())
		if committed(t, e.store, e.merge) != oldMerge || committed(t, e.store, e.appendC) != oldAppend {
			t.Fatal("the restored store does not hold the old positions")
		}
		e.count("offsets store set back")
		out := e.syncSteps(w, 40)
		for _, conn := range []string{e.merge, e.appendC} {
			if !hasLine(out, "the destination committed past the offsets store", `"connector":"`+conn+`"`) {
				t.Errorf("round %d: sync did not say that %s's target is ahead of the store:\n%s", round, conn, tailString(out, 40))
			}
			if got, want := committed(t, e.store, conn), e.targetPosition(conn); got != want {
				t.Errorf("round %d: after the sync the store holds %s for %s, the target %s", round, got, conn, want)
			}
		}
	}
	c := e.checkTargets()
	t.Logf("targets: %s", c)
	if !c.clean() {
		t.Errorf("the targets differ from the source: %s", c)
	}
	totals.ran.Store(true)
	totals.faults.Add(int64(e.faults))
	totals.checked.Add(int64(c.checked))
	totals.missing.Add(int64(c.missing))
	totals.duplicates.Add(int64(max(c.duplicates, c.dupPos)))
}

// TestWarehouseLostTargetPositionStops deletes the merge target's row of
// _connectd_offsets while the store is ahead: the connector must stop and say what to
// do rather than load after a gap, the other connector goes on; once the position is
// set as the message says, the target catches up and equals the source.
func TestWarehouseLostTargetPositionStops(t *testing.T) {
	e, w := newSyncEnv(t, "whlost")
	e.syncSteps(w, 50)
	ctx := context.Background()
	offsetsTable := pgx.Identifier{e.merge, "_connectd_offsets"}.Sanitize()
	pos := e.targetPosition(e.merge)
	if _, err := e.tgt.Exec(ctx, "DELETE FROM "+offsetsTable+" WHERE connector = $1", e.merge); err != nil {
		t.Fatal(err)
	}
	e.count("target position deleted")
	fingerprint := func() string {
		var parts []string
		for _, tm := range e.m.tables {
			var n int64
			var sum string
			q := fmt.Sprintf("SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM %s t", whTable(e.merge, tm.spec.name))
			if err := e.tgt.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, fmt.Sprintf("%s: %d rows %s", tm.spec.name, n, sum))
		}
		return strings.Join(parts, "; ")
	}
	before := fingerprint()
	for i := 0; i < 60; i++ {
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	code, out := runCmd(t, 5*time.Minute, "sync", "-c", e.config, "--log-format", "json")
	want := fmt.Sprintf("the destination holds no position for connector %s, but the offsets store holds the later %s", e.merge, pos)
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "connectd offsets reset "+e.merge) {
		t.Fatalf("sync with the target's position deleted: want exit 1 and %q with its remedies, got exit %d:\n%s", want, code, tailString(out, 40))
	}
	if after := fingerprint(); after != before {
		t.Errorf("the merge target changed although its position was lost:\nbefore %s\nafter  %s", before, after)
	}
	// The append connector, whose target is intact, caught up all the same.
	if got := e.targetPosition(e.appendC); got != committed(t, e.store, e.appendC) {
		t.Errorf("the append target holds %s, the store %s", got, committed(t, e.store, e.appendC))
	}

	// The message's second remedy: the target is as the store says, so give it the
	// store's position.
	if _, err := e.tgt.Exec(ctx, "INSERT INTO "+offsetsTable+" (connector, position, committed_at) VALUES ($1, $2, now())", e.merge, pos); err != nil {
		t.Fatal(err)
	}
	e.syncSteps(w, 30)
	e.checkAndCount()
}

// TestWarehouseResetOfMergeTargetStops: after `connectd offsets reset` of the merge
// connector, a new snapshot into its tables would leave there the rows deleted on the
// source meanwhile, so the run stops and says what to do; done as it says (truncate,
// forget the earlier load), the next sync loads the tables again and they equal the
// source.
func TestWarehouseResetOfMergeTargetStops(t *testing.T) {
	e, w := newSyncEnv(t, "whreset")
	e.syncSteps(w, 40)
	ctx := context.Background()
	if code, out := runCmd(t, time.Minute, "offsets", "reset", "-c", e.config, e.merge); code != 0 {
		t.Fatalf("offsets reset %s: exit %d:\n%s", e.merge, code, tailString(out, 20))
	}
	e.count("offsets reset")
	for i := 0; i < 40; i++ { // deletes among them, which the reset makes the connector miss
		if err := w.step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	code, out := runCmd(t, 5*time.Minute, "sync", "-c", e.config, "--log-format", "json")
	offsetsTable := pgx.Identifier{e.merge, "_connectd_offsets"}.Sanitize()
	want := fmt.Sprintf("connector %s starts again from a new snapshot", e.merge)
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "DELETE FROM "+offsetsTable) {
		t.Fatalf("sync after a reset of a merge connector: want exit 1 and %q with what to run, got exit %d:\n%s", want, code, tailString(out, 40))
	}
	for _, tm := range e.m.tables {
		if _, err := e.tgt.Exec(ctx, "TRUNCATE "+whTable(e.merge, tm.spec.name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.tgt.Exec(ctx, "DELETE FROM "+offsetsTable+" WHERE connector = $1", e.merge); err != nil {
		t.Fatal(err)
	}
	e.syncSteps(w, 30)
	e.checkAndCount()
}

// checkAndCount compares the targets with the source, fails the test if they differ,
// and adds the run to the suite's totals.
func (e *whEnv) checkAndCount() {
	e.t.Helper()
	c := e.checkTargets()
	e.t.Logf("targets: %s", c)
	if !c.clean() {
		e.t.Errorf("the targets differ from the source: %s", c)
	}
	totals.ran.Store(true)
	totals.faults.Add(int64(e.faults))
	totals.checked.Add(int64(c.checked))
	totals.missing.Add(int64(c.missing))
	totals.duplicates.Add(int64(max(c.duplicates, c.dupPos)))
}
