package mysqle2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// The binary and servers every test shares, each started by the first test that
// needs it (none in -short mode); each test has its own database, connector,
// offsets directory and lake.
var (
	sharedBin   = testenv.SharedConnectd()
	sharedMaria = testenv.SharedMariaDB(testenv.MariaDBOptions{ExtraConf: map[string]string{"binlog_row_metadata": "FULL"}})
	sharedS3    = testenv.SharedS3()
)

func connectdBin(t testing.TB) string           { t.Helper(); return sharedBin.Get(t) }
func mariaServer(t testing.TB) *testenv.MariaDB { t.Helper(); return sharedMaria.Get(t) }
func s3Server(t testing.TB) *testenv.S3         { t.Helper(); return sharedS3.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []interface{ Stop() error }{sharedS3, sharedMaria, sharedBin} {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/mysql:", err)
		}
	}
	os.Exit(code)
}

// openDB connects to MariaDB as root (UTC session, several statements per Exec).
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	c, err := gomysql.ParseDSN(mariaServer(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	c.MultiStatements = true
	c.Params = map[string]string{"time_zone": "'+00:00'"}
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("mariadb: %s: %v", q, err)
	}
}

// pipe is one connector: a mysql source into a parquet lake, with its config file.
type pipe struct {
	name, db   string
	bucket     string // s3:// lake when set, else file://
	lakeDir    string
	offsets    string
	config     string
	flush      string
	serverID   int
	snapshotOf string   // snapshot mode
	tables     []string // the tables patterns; default db.*
}

var nextServerID = 6100

func newPipe(t *testing.T, name, db string, s3 bool) *pipe {
	t.Helper()
	dir := t.TempDir()
	nextServerID++
	p := &pipe{name: name, db: db, lakeDir: filepath.Join(dir, "lake"), offsets: filepath.Join(dir, "offsets"),
		config: filepath.Join(dir, "connectd.yaml"), flush: "{rows: 100000, bytes: 16MiB, interval: 1s}", serverID: nextServerID,
		snapshotOf: "initial"}
	if s3 {
		p.bucket = strings.ReplaceAll(name, "_", "-")
		if err := s3Server(t).CreateBucket(context.Background(), p.bucket); err != nil {
			t.Fatal(err)
		}
	}
	p.write(t)
	return p
}

func (p *pipe) write(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "offsets: file://%s\nconnectors:\n  %s:\n    source:\n      type: mysql\n      dsn: %q\n", p.offsets, p.name, fmt.Sprintf("mysql://root@127.0.0.1:%d/", mariaServer(t).Port))
	tables := fmt.Sprintf("%q", p.db+".*")
	if p.tables != nil {
		var qs []string
		for _, t := range p.tables {
			qs = append(qs, fmt.Sprintf("%q", t))
		}
		tables = strings.Join(qs, ", ")
	}
	fmt.Fprintf(&b, "      server_id: %d\n      tables: [%s]\n      snapshot: %s\n", p.serverID, tables, p.snapshotOf)
	b.WriteString("    destination:\n      type: parquet\n")
	if p.bucket != "" {
		fmt.Fprintf(&b, "      url: s3://%s/lake\n      s3: {endpoint: %q, region: %s, path_style: true, access_key_id: %s, secret_access_key: %s}\n",
			p.bucket, s3Server(t).Endpoint, s3Server(t).Region, s3Server(t).AccessKey, s3Server(t).SecretKey)
	} else {
		fmt.Fprintf(&b, "      url: file://%s\n", p.lakeDir)
	}
	fmt.Fprintf(&b, "      flush: %s\n", p.flush)
	if err := os.WriteFile(p.config, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// result is how one connectd command ended.
type result struct {
	code           int // -1: killed by a signal
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, tail(r.stdout, 30), tail(r.stderr, 40))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// connectd runs the binary to completion; one still running after timeout fails the test.
func connectd(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	r, err := testenv.Connectd{Bin: connectdBin(t)}.Run(timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.TimedOut {
		t.Fatalf("connectd %s did not exit within %s\n%s", strings.Join(args, " "), timeout, tail(r.Stderr, 40))
	}
	return result{code: r.Code, stdout: r.Stdout, stderr: r.Stderr}
}

func (p *pipe) sync(t *testing.T) result {
	t.Helper()
	r := connectd(t, 90*time.Second, "sync", "-c", p.config)
	if r.code != 0 {
		t.Fatalf("connectd sync: want exit 0, got %s", r)
	}
	return r
}

// daemon is `connectd run` in the background.
type daemon struct {
	proc   *testenv.Process
	stderr *testenv.Buffer // stdout and stderr
}

func (p *pipe) start(t *testing.T) *daemon {
	t.Helper()
	d := &daemon{stderr: &testenv.Buffer{}}
	proc, err := testenv.Connectd{Bin: connectdBin(t)}.Start(d.stderr, d.stderr, "run", "-c", p.config)
	if err != nil {
		t.Fatal(err)
	}
	d.proc = proc
	t.Cleanup(d.kill)
	return d
}

func (d *daemon) kill() { d.proc.Kill() }

// localLake is a local directory holding the lake (an s3:// one downloaded fresh).
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

// row is one result row, every value as text; a missing key is NULL.
type row map[string]string

// query renders every value of q's rows as text (NULL: absent from the row).
func query(t *testing.T, db *sql.DB, q string) []row {
	t.Helper()
	cols, vals, err := lakedb.QueryText(db, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out []row
	for _, v := range vals {
		r := row{}
		for i, c := range cols {
			if v[i].Valid {
				r[c] = v[i].String
			}
		}
		out = append(out, r)
	}
	return out
}

// lakeRows reads one table of the lake with DuckDB, ordered by _pos; cols are
// DuckDB expressions besides _op and _pos.
func lakeRows(t *testing.T, lake, ns, table string, cols ...string) []row {
	t.Helper()
	dir := filepath.Join(lake, ns, table)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	db := lakedb.DuckDB(t)
	sel := append([]string{"_op", "_pos"}, cols...)
	return query(t, db, "SELECT "+strings.Join(sel, ", ")+" FROM "+lakedb.ParquetTree(dir)+" ORDER BY _pos")
}

// checkPositions fails on a _pos that appears twice.
func checkPositions(t *testing.T, rows []row) {
	t.Helper()
	seen := map[string]bool{}
	dup := 0
	for _, r := range rows {
		if seen[r["_pos"]] {
			dup++
		}
		seen[r["_pos"]] = true
	}
	if dup > 0 {
		t.Errorf("%d positions appear twice in the lake", dup)
	}
}

// rebuild applies lake rows in _pos order: latest per key, deletes applied; it
// returns "key: cols" lines, sorted.
func rebuild(rows []row, key string, cols ...string) []string {
	state := map[string]string{}
	for _, r := range rows {
		if r["_op"] == "d" {
			delete(state, r[key])
			continue
		}
		vals := make([]string, len(cols))
		for i, c := range cols {
			v, ok := r[c]
			if !ok {
				v = "NULL"
			}
			vals[i] = v
		}
		state[r[key]] = r[key] + ": " + strings.Join(vals, " | ")
	}
	out := make([]string, 0, len(state))
	for _, v := range state {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// sourceRows is the same form read from MariaDB.
func sourceRows(t *testing.T, db *sql.DB, q, key string, cols ...string) []string {
	t.Helper()
	return rebuild(query(t, db, q), key, cols...)
}

// compareLines reports what differs between two sorted line sets.
func compareLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := map[string]bool{}, map[string]bool{}
	for _, v := range got {
		g[v] = true
	}
	for _, v := range want {
		w[v] = true
	}
	n := 0
	for _, v := range want {
		if !g[v] {
			if n < 10 {
				t.Errorf("%s: missing from the lake: %s", what, v)
			}
			n++
		}
	}
	for _, v := range got {
		if !w[v] {
			if n < 20 {
				t.Errorf("%s: in the lake, not in the source: %s", what, v)
			}
			n++
		}
	}
	if n > 0 {
		t.Errorf("%s: %d differences (lake %d rows, source %d)", what, n, len(got), len(want))
	}
}

func lakeDuck(t *testing.T) *sql.DB { return lakedb.DuckDB(t) }

// treeOf is the DuckDB table expression of one table of a local lake.
func treeOf(lake, ns, table string) string { return lakedb.ParquetTree(filepath.Join(lake, ns, table)) }
