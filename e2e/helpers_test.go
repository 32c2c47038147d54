package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// serial makes names unique across repeated runs (go test -count=N) against the
// same servers.
var serial atomic.Int64

// unique suffixes name with a number used once per test binary.
func unique(name string) string {
	return fmt.Sprintf("%s_%d", name, serial.Add(1))
}

// newDatabase creates a database of its own for one test and returns its DSN and a
// connection to it, closed when the test ends. The session settings make the
// server's text forms the ones the expected values are written in.
func newDatabase(t *testing.T, name string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	name = unique(name)
	dsn, err := pgServer(t).CreateDatabase(ctx, name)
	if err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return dsn, connect(t, dsn)
}

// connect opens a connection closed when the test ends, in UTC with ISO styles.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	mustExec(t, conn, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'")
	return conn
}

// mustExec runs SQL statements (a simple-protocol multi-statement string is fine).
func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// pipe is one postgres -> parquet connector of a test: its config file, lake and
// offsets directory.
type pipe struct {
	name    string // connector name; slot and publication default to connectd_<name>
	dsn     string
	tables  []string
	bucket  string      // set for an s3:// lake
	s3      *testenv.S3 // the server of an s3:// lake
	lakeDir string      // the lake's root for a file:// lake
	offsets string      // a directory, or a store's URL
	listen  string
	flush   string // the flush block, YAML flow style
	extra   string // more source keys, YAML lines indented for the source block
	config  string // path of the config file, written by writeConfig
}

// newPipe prepares a connector writing to a lake of its own: file:// under the test's
// temp dir, or s3:// in a fresh bucket named after the connector.
func newPipe(t *testing.T, name, dsn string, s3Lake bool, tables ...string) *pipe {
	t.Helper()
	dir := t.TempDir()
	p := &pipe{
		name:    unique(name),
		dsn:     dsn,
		tables:  tables,
		lakeDir: filepath.Join(dir, "lake"),
		offsets: filepath.Join(dir, "offsets"),
		flush:   "{rows: 100000, bytes: 16MiB, interval: 1s}",
		config:  filepath.Join(dir, "connectd.yaml"),
	}
	if s3Lake {
		p.bucket = strings.ReplaceAll(p.name, "_", "-")
		p.s3 = s3Server(t)
		if err := p.s3.CreateBucket(context.Background(), p.bucket); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// url is the destination url.
func (p *pipe) url() string {
	if p.bucket != "" {
		return "s3://" + p.bucket + "/lake"
	}
	return "file://" + p.lakeDir
}

// yaml renders the config file.
func (p *pipe) yaml() string {
	var b strings.Builder
	if strings.Contains(p.offsets, "://") {
		fmt.Fprintf(&b, "offsets: %q\n", p.offsets)
	} else {
		fmt.Fprintf(&b, "offsets: file://%s\n", p.offsets)
	}
	if p.listen != "" {
		fmt.Fprintf(&b, "server:\n  listen: %s\n", p.listen)
	}
	fmt.Fprintf(&b, "connectors:\n  %s:\n    source:\n      type: postgres\n      dsn: %q\n", p.name, p.dsn)
	quoted := make([]string, len(p.tables))
	for i, tb := range p.tables {
		quoted[i] = fmt.Sprintf("%q", tb)
	}
	fmt.Fprintf(&b, "      tables: [%s]\n", strings.Join(quoted, ", "))
	b.WriteString(p.extra)
	fmt.Fprintf(&b, "    destination:\n      type: parquet\n      url: %s\n", p.url())
	if p.bucket != "" {
		fmt.Fprintf(&b, "      s3: {endpoint: %q, region: %s, path_style: true, access_key_id: %s, secret_access_key: %s}\n",
			p.s3.Endpoint, p.s3.Region, p.s3.AccessKey, p.s3.SecretKey)
	}
	fmt.Fprintf(&b, "      flush: %s\n", p.flush)
	return b.String()
}

// writeConfig writes the config file and returns its path.
func (p *pipe) writeConfig(t *testing.T) string {
	t.Helper()
	writeFile(t, p.config, p.yaml())
	return p.config
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// result is how one connectd command ended.
type result struct {
	code           int // exit status; -1 when killed by a signal
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, tail(r.stdout, 40), tail(r.stderr, 60))
}

// tail keeps the last n lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// connectd runs the binary to completion. A command still running after timeout is
// killed and fails the test: every command under test must end on its own.
func connectd(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	return connectdWith(t, connectdBin(t), timeout, args...)
}

// connectdWith is connectd with another binary (the one with the duckdb destination).
func connectdWith(t *testing.T, bin string, timeout time.Duration, args ...string) result {
	t.Helper()
	r, err := testenv.Connectd{Bin: bin}.Run(timeout, args...)
	if err != nil {
		t.Fatalf("start connectd %v: %v", args, err)
	}
	if r.TimedOut {
		t.Fatalf("connectd %s did not exit within %s; killed it\n--- stdout:\n%s\n--- stderr:\n%s",
			strings.Join(args, " "), timeout, tail(r.Stdout, 40), tail(r.Stderr, 60))
	}
	return result{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

// sync runs `connectd sync` and fails the test unless it exits 0.
func (p *pipe) sync(t *testing.T) result {
	t.Helper()
	r := connectd(t, 90*time.Second, "sync", "-c", p.config)
	if r.code != 0 {
		t.Fatalf("connectd sync -c %s: want exit 0, got %s", p.config, r)
	}
	return r
}

// daemon is a `connectd run` in the background.
type daemon struct {
	proc           *testenv.Process
	stdout, stderr *testenv.Buffer
}

// startRun starts `connectd run -c config`; the test's cleanup kills it if the test
// did not stop it.
func startRun(t *testing.T, config string) *daemon {
	t.Helper()
	return startRunWith(t, connectdBin(t), config)
}

// startRunWith is startRun with another binary.
func startRunWith(t *testing.T, bin, config string) *daemon {
	t.Helper()
	d := &daemon{stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}}
	p, err := testenv.Connectd{Bin: bin}.Start(d.stdout, d.stderr, "run", "-c", config)
	if err != nil {
		t.Fatalf("start connectd run: %v", err)
	}
	d.proc = p
	t.Cleanup(p.Kill)
	return d
}

func (d *daemon) running() bool { return d.proc.Running() }

// stop sends sig and waits for the process to exit; it returns the exit result.
// A process that ignores SIGTERM for a minute fails the test.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) result {
	t.Helper()
	d.proc.Signal(sig)
	if !d.proc.Wait(60 * time.Second) {
		d.proc.Kill()
		t.Fatalf("connectd run did not exit within 60s of %s; killed it\n--- stderr:\n%s", sig, tail(d.stderr.String(), 60))
	}
	return result{code: d.proc.ExitCode(), stdout: d.stdout.String(), stderr: d.stderr.String()}
}

// stopClean stops the daemon with SIGTERM and fails the test unless it exits 0.
func (d *daemon) stopClean(t *testing.T) result {
	t.Helper()
	r := d.stop(t, syscall.SIGTERM)
	if r.code != 0 {
		t.Fatalf("connectd run after SIGTERM: want exit 0, got %s", r)
	}
	return r
}

// waitFor polls cond until it holds, failing the test with what cond last said if it
// does not within timeout (or the daemon, when given, exits first).
func waitFor(t *testing.T, timeout time.Duration, d *daemon, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if d != nil && !d.running() {
			r := d.stop(t, syscall.SIGTERM)
			t.Fatalf("waiting for %s: connectd run exited (%s)\nlast state: %s", what, r, state)
		}
		if time.Now().After(deadline) {
			extra := ""
			if d != nil {
				extra = "\n--- connectd stderr:\n" + tail(d.stderr.String(), 60)
			}
			t.Fatalf("waiting for %s: not reached within %s; last state: %s%s", what, timeout, state, extra)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// localLake returns a local directory holding the lake: the lake itself for file://,
// a fresh download of the bucket for s3://.
func (p *pipe) localLake(t *testing.T) string {
	t.Helper()
	if p.bucket == "" {
		return p.lakeDir
	}
	dir := filepath.Join(t.TempDir(), "download")
	if err := s3Server(t).Download(context.Background(), p.bucket, "lake/", dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "lake")
}

// tableDir is a local directory holding one table of the lake (for s3://, a fresh
// download of the whole lake).
func (p *pipe) tableDir(t *testing.T, namespace, table string) string {
	t.Helper()
	return lakeTable(p.localLake(t), namespace, table)
}

// parquetFiles lists the Parquet files under dir, sorted; none when dir is missing.
func parquetFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.IsDir() && strings.HasSuffix(path, ".parquet") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	sort.Strings(files)
	return files
}

// row is one result row, every column rendered as text; nil is NULL.
type row map[string]*string

// str renders a column for messages.
func (r row) str(col string) string {
	v, ok := r[col]
	switch {
	case !ok:
		return "<missing column>"
	case v == nil:
		return "NULL"
	}
	return fmt.Sprintf("%q", *v)
}

// isNull reports whether the column is NULL (or absent).
func (r row) isNull(col string) bool { return r[col] == nil }

// val is the column's text, "" for NULL.
func (r row) val(col string) string {
	if v := r[col]; v != nil {
		return *v
	}
	return ""
}

// queryRows runs a query on database/sql (DuckDB) and renders every value as text.
func queryRows(t *testing.T, db *sql.DB, q string) []row {
	t.Helper()
	cols, vals, err := lakedb.QueryText(db, q)
	if err != nil {
		t.Fatalf("duckdb: %s: %v", q, err)
	}
	var out []row
	for _, v := range vals {
		r := row{}
		for i, c := range cols {
			if v[i].Valid {
				s := v[i].String
				r[c] = &s
			} else {
				r[c] = nil
			}
		}
		out = append(out, r)
	}
	return out
}

// pgRows runs a query on PostgreSQL, every column of which must be text (or NULL).
func pgRows(t *testing.T, conn *pgx.Conn, q string, args ...any) []row {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("postgres: %s: %v", q, err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatalf("postgres: %s: %v", q, err)
		}
		r := row{}
		for i, fd := range rows.FieldDescriptions() {
			switch v := vals[i].(type) {
			case nil:
				r[fd.Name] = nil
			case string:
				r[fd.Name] = &v
			default:
				t.Fatalf("postgres: %s: column %s is %T, want text", q, fd.Name, v)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("postgres: %s: %v", q, err)
	}
	return out
}

// lakeTable is where a table's files live under the lake root.
func lakeTable(root, namespace, table string) string {
	return filepath.Join(root, namespace, table)
}

// readTable reads one table of the lake: every column cast to text, ordered by _pos.
// cols are DuckDB expressions (with AS names) in addition to the metadata columns,
// the Hive partition and the file name.
func readTable(t *testing.T, db *sql.DB, dir string, cols ...string) []row {
	t.Helper()
	if len(parquetFiles(t, dir)) == 0 {
		return nil
	}
	sel := append([]string{
		"_op", "_pos", "CAST(epoch_us(_commit_ts) AS VARCHAR) AS _commit_us", "_txid",
		"CAST(to_json(_unchanged) AS VARCHAR) AS _unchanged", "CAST(date AS VARCHAR) AS date", "filename",
	}, cols...)
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + treeWithFilename(dir) + " ORDER BY _pos"
	return queryRows(t, db, q)
}

// treeWithFilename is lakedb.ParquetTree with the file name as a column.
func treeWithFilename(dir string) string {
	tree := lakedb.ParquetTree(dir)
	return strings.TrimSuffix(tree, ")") + ", filename = true)"
}

// checkPositions checks the metadata every lake row must satisfy: _pos unique and
// strictly increasing in the given order, _commit_ts set, and the date partition
// equal to the UTC date of _commit_ts (docs/design.md, "Lake layout").
func checkPositions(t *testing.T, rows []row) {
	t.Helper()
	seen := map[string]bool{}
	prev := ""
	for i, r := range rows {
		pos := r.val("_pos")
		if pos == "" {
			t.Errorf("row %d: empty _pos: %v", i, r.describe())
			continue
		}
		if seen[pos] {
			t.Errorf("row %d: _pos %s appears twice in the lake", i, pos)
		}
		seen[pos] = true
		if i > 0 && pos <= prev {
			t.Errorf("row %d: _pos %s not after %s", i, pos, prev)
		}
		prev = pos
		if r.isNull("_commit_us") {
			t.Errorf("row %d: _commit_ts is NULL", i)
			continue
		}
		var us int64
		if _, err := fmt.Sscan(r.val("_commit_us"), &us); err != nil {
			t.Errorf("row %d: _commit_ts %s: %v", i, r.val("_commit_us"), err)
			continue
		}
		day := time.UnixMicro(us).UTC().Format("2006-01-02")
		if r.val("date") != day {
			t.Errorf("row %d: partition date=%s, but _commit_ts %s is on %s (UTC)", i, r.val("date"),
				time.UnixMicro(us).UTC().Format(time.RFC3339Nano), day)
		}
		if !strings.Contains(filepath.ToSlash(r.val("filename")), "/date="+r.val("date")+"/") {
			t.Errorf("row %d: file %s is not in the folder of its partition date=%s", i, r.val("filename"), r.val("date"))
		}
	}
}

// describe renders a row for messages, columns sorted.
func (r row) describe() string {
	keys := make([]string, 0, len(r))
	for k := range r {
		if k != "filename" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + r.str(k)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// lakeCount counts the rows of a table in the lake (0 when it has no file yet).
func lakeCount(t *testing.T, db *sql.DB, dir string) int {
	t.Helper()
	if len(parquetFiles(t, dir)) == 0 {
		return 0
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + lakedb.ParquetTree(dir)).Scan(&n); err != nil {
		t.Fatalf("duckdb: count %s: %v", dir, err)
	}
	return n
}

// rebuild replays lake rows (in _pos order) into the table they describe, keyed by
// the key column: c, r and u set the row, d removes it, t empties the table.
func rebuild(rows []row, key string) map[string]row {
	state := map[string]row{}
	for _, r := range rows {
		switch r.val("_op") {
		case "r", "c", "u":
			state[r.val(key)] = r
		case "d":
			delete(state, r.val(key))
		case "t":
			clear(state)
		}
	}
	return state
}

// compareTable checks that the rebuilt lake table holds exactly the source rows, in
// the given columns; both sides keyed by key.
func compareTable(t *testing.T, lake map[string]row, source []row, key string, cols ...string) {
	t.Helper()
	want := map[string]row{}
	for _, r := range source {
		want[r.val(key)] = r
	}
	for k, w := range want {
		g, ok := lake[k]
		if !ok {
			t.Errorf("%s=%s is in the source table but not in the lake: %s", key, k, w.describe())
			continue
		}
		for _, c := range cols {
			if g.str(c) != w.str(c) {
				t.Errorf("%s=%s column %s: lake has %s, source has %s", key, k, c, g.str(c), w.str(c))
			}
		}
	}
	for k, g := range lake {
		if _, ok := want[k]; !ok {
			t.Errorf("%s=%s is in the lake (last %s) but not in the source table", key, k, g.describe())
		}
	}
}
