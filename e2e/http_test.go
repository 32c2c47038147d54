package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// httpPipe is a connector from the test's API server to a local lake.
type httpPipe struct {
	name, config, lakeDir, dsn string
	api                        *apiServer
	table                      string
}

// paging is each pagination style's part of a stream's config.
var paging = map[string]string{
	"link":   `{type: link_header}`,
	"next":   `{type: next_url, next_url: /links/next}`,
	"page":   `{type: page, param: page, size: 20, size_param: limit}`,
	"offset": `{type: offset, param: offset, size: 20, size_param: limit}`,
	"token":  `{type: token, token: /next_cursor, param: cursor}`,
}

// newHTTPPipe creates the table behind the API, the API and the connector's config.
func newHTTPPipe(t *testing.T, style, flush string, extra string) (*httpPipe, *pgx.Conn) {
	t.Helper()
	dsn, conn := newDatabase(t, "http")
	name := unique("http_" + style)
	mustExec(t, conn, `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, amount numeric, updated_at timestamptz NOT NULL,
		tags text[], meta jsonb, deleted boolean NOT NULL DEFAULT false)`)
	mustExec(t, conn, "SET TIME ZONE 'UTC'")
	api := startAPI(t, dsn, "items")
	dir := t.TempDir()
	p := &httpPipe{name: name, config: filepath.Join(dir, "connectd.yaml"), lakeDir: filepath.Join(dir, "lake"), api: api, table: "items", dsn: dsn}
	limit := ""
	if style == "link" || style == "next" || style == "token" {
		limit = `, limit: "20"`
	}
	yaml := fmt.Sprintf(`offsets: file://%s
connectors:
  %s:
    source:
      type: http
      namespace: shop
      base_url: %s
      rate: 1000
      interval: 300ms
      timeout: 5s
      max_attempts: 6
      streams:
        - name: items
          url: /%s/items
          params: {since: "{{ cursor }}"%s}
          records: /data
          primary_key: [id]
          cursor: {field: updated_at, type: time}
          pagination: %s
          deleted: {field: deleted, value: "true"}
%s    destination:
      type: parquet
      url: file://%s
      flush: %s
`, filepath.Join(dir, "offsets"), name, api.url, style, limit, paging[style], extra, p.lakeDir, flush)
	writeFile(t, p.config, yaml)
	return p, conn
}

func (p *httpPipe) sync(t *testing.T) result {
	t.Helper()
	r := connectd(t, 2*time.Minute, "sync", "-c", p.config)
	if r.code != 0 {
		t.Fatalf("connectd sync (http): want exit 0, got %s", r)
	}
	return r
}

// lakeState reads the lake's items table with DuckDB: every row in _pos order, and
// the table rebuilt from it.
func (p *httpPipe) lakeState(t *testing.T, db *sql.DB) ([]row, map[string]row) {
	t.Helper()
	rows := readTable(t, db, lakeTable(p.lakeDir, "shop", p.table),
		"CAST(id AS VARCHAR) AS id", "name", "CAST(amount AS VARCHAR) AS amount")
	return rows, rebuild(rows, "id")
}

// checkLake checks that no position is in the lake twice and that the latest record
// of each key equals the table, and logs the lake's records when not.
func (p *httpPipe) checkLake(t *testing.T, db *sql.DB, conn *pgx.Conn) {
	t.Helper()
	rows, lake := p.lakeState(t, db)
	checkPositions(t, rows)
	compareTable(t, lake, sourceRows(t, conn), "id", "name", "amount")
	if t.Failed() {
		for _, r := range rows {
			t.Logf("lake: %s", r.describe())
		}
	}
}

// sourceRows is what the API serves as live: the rows not marked deleted.
func sourceRows(t *testing.T, conn *pgx.Conn) []row {
	t.Helper()
	// amount as DuckDB prints a DOUBLE: 126.0, 1.5.
	return pgRows(t, conn, `SELECT id::text AS id, name, CASE WHEN amount = trunc(amount) THEN trunc(amount)::bigint::text || '.0' ELSE amount::float8::text END AS amount
		FROM items WHERE NOT deleted ORDER BY id`)
}

// seedItems inserts n rows from id first on, three rows per updated_at value so
// that equal cursor values straddle the 20-row pages.
func seedItems(t *testing.T, conn *pgx.Conn, first, n int) {
	t.Helper()
	mustExec(t, conn, `INSERT INTO items (id, name, amount, updated_at, tags, meta)
		SELECT g, 'item ' || g, g * 1.5, timestamptz '2026-11-01 00:00:00Z' + (g / 3) * interval '1 second' + (g % 3) * interval '0 second',
		       ARRAY['t' || g % 4, 'x'], jsonb_build_object('g', g, 'nested', jsonb_build_object('k', g % 7))
		FROM generate_series($1::int, $2::int) g`, first, first+n-1)
}

// TestHTTPSourcePaginationStyles syncs the API in every pagination style, then again
// after updates, inserts and deletes, then once more with nothing new: the lake,
// read back with DuckDB, equals the table each time, with no position twice and the
// records' types inferred from the JSON.
func TestHTTPSourcePaginationStyles(t *testing.T) {
	db := lakedb.DuckDB(t)
	for _, style := range []string{"link", "next", "page", "offset", "token"} {
		t.Run(style, func(t *testing.T) {
			p, conn := newHTTPPipe(t, style, "{rows: 100000, bytes: 16MiB, interval: 1s}", "")
			seedItems(t, conn, 1, 130)
			p.sync(t)
			rows, lake := p.lakeState(t, db)
			checkPositions(t, rows)
			if len(rows) != 130 {
				t.Fatalf("first sync: %d lake rows, want 130", len(rows))
			}
			for _, r := range rows {
				if r.val("_op") != "r" {
					t.Fatalf("first sync: op %s, want r: %s", r.val("_op"), r.describe())
				}
			}
			compareTable(t, lake, sourceRows(t, conn), "id", "name", "amount")

			// Updates (a newer updated_at), inserts, deletes (a flag), across pages.
			mustExec(t, conn, `UPDATE items SET name = name || ' v2', updated_at = timestamptz '2026-11-02 00:00:00Z' + id * interval '1 ms' WHERE id % 17 = 0`)
			seedItems(t, conn, 1000, 25)
			mustExec(t, conn, `UPDATE items SET deleted = true, updated_at = timestamptz '2026-11-03 00:00:00Z' WHERE id IN (5, 6, 1001)`)
			p.sync(t)
			rows, lake = p.lakeState(t, db)
			checkPositions(t, rows)
			compareTable(t, lake, sourceRows(t, conn), "id", "name", "amount")
			n := len(rows)

			// Nothing new: the records at the highest cursor are asked for again and
			// dropped, not delivered twice.
			p.sync(t)
			rows, _ = p.lakeState(t, db)
			if len(rows) != n {
				t.Errorf("a sync with nothing new added %d rows", len(rows)-n)
			}
		})
	}
}

// TestHTTPSourceRetriesAndBadBodies: 429 with Retry-After and a burst of 500s are
// waited out and the sync completes; an HTML page fails the sync with the stream,
// the URL, the status and the body's first bytes, and loses nothing: once the API is
// back, a sync brings the lake level with the table.
func TestHTTPSourceRetriesAndBadBodies(t *testing.T) {
	db := lakedb.DuckDB(t)
	p, conn := newHTTPPipe(t, "link", "{rows: 100000, bytes: 16MiB, interval: 1s}", "")
	seedItems(t, conn, 1, 90)
	p.api.fault("429", 2)
	p.sync(t)
	p.api.fault("500", 3)
	seedItems(t, conn, 200, 30)
	before := p.api.requests.Load()
	p.sync(t)
	if got := p.api.requests.Load() - before; got < 3+2 {
		t.Errorf("the sync through 3 failures made %d requests", got)
	}
	_, lake := p.lakeState(t, db)
	compareTable(t, lake, sourceRows(t, conn), "id", "name", "amount")

	seedItems(t, conn, 300, 10)
	p.api.fault("html", 1000)
	r := connectd(t, 2*time.Minute, "sync", "-c", p.config)
	if r.code == 0 {
		t.Fatalf("sync against an HTML page: want a failure, got %s", r)
	}
	for _, want := range []string{"items", "/link/items", "Maintenance: back soon"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error does not name %q:\n%s", want, tail(r.stderr, 20))
		}
	}
	p.api.fault("html", 0)
	p.sync(t)
	p.checkLake(t, db, conn)
}

// TestHTTPSourceKillMidPagination kills `connectd run` with SIGKILL while it pages
// through the API, restarts it, and checks that every record is in the lake once.
func TestHTTPSourceKillMidPagination(t *testing.T) {
	db := lakedb.DuckDB(t)
	p, conn := newHTTPPipe(t, "page", "{rows: 60, bytes: 16MiB, interval: 200ms}", "")
	seedItems(t, conn, 1, 1500)
	p.api.setDelay(20 * time.Millisecond)
	d := startRun(t, p.config)
	for i := 0; p.api.requests.Load() < 25; i++ {
		if i > 1200 {
			t.Fatalf("the API got %d requests in a minute", p.api.requests.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.stop(t, syscall.SIGKILL)
	partial, _ := p.lakeState(t, db)
	if len(partial) == 0 || len(partial) >= 1500 {
		t.Logf("the kill left %d of 1500 rows in the lake", len(partial))
	}
	p.api.setDelay(0)
	d = startRun(t, p.config)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rows, _ := p.lakeState(t, db)
		if len(rows) >= 1500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the lake has %d of 1500 rows\n%s", len(rows), tail(d.stderr.String(), 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
	d.stopClean(t)
	rows, lake := p.lakeState(t, db)
	checkPositions(t, rows)
	if len(rows) != 1500 {
		t.Errorf("%d lake rows for 1500 records: a record twice", len(rows))
	}
	compareTable(t, lake, sourceRows(t, conn), "id", "name", "amount")
}

// TestHTTPSourceSchemaWidens: a field that was an integer becomes a number with a
// fraction (the column widens), a new field becomes a new column, and a field that
// turns into an object stops the sync with a message saying what to declare.
func TestHTTPSourceSchemaWidens(t *testing.T) {
	db := lakedb.DuckDB(t)
	p, conn := newHTTPPipe(t, "link", "{rows: 100000, bytes: 16MiB, interval: 1s}", "")
	mustExec(t, conn, `INSERT INTO items (id, name, amount, updated_at) SELECT g, 'n' || g, g, timestamptz '2026-11-01Z' + g * interval '1 s' FROM generate_series(1, 10) g`)
	p.sync(t)
	mustExec(t, conn, `ALTER TABLE items ADD COLUMN colour text`)
	mustExec(t, conn, `INSERT INTO items (id, name, amount, updated_at, colour) VALUES (11, 'n11', 2.25, timestamptz '2026-11-02Z', 'red')`)
	p.sync(t)
	dir := lakeTable(p.lakeDir, "shop", "items")
	types := map[string]string{}
	for _, r := range queryRows(t, db, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+lakedb.ParquetTree(dir)+")") {
		types[r.val("column_name")] = r.val("column_type")
	}
	for col, want := range map[string]string{"id": "BIGINT", "name": "VARCHAR", "amount": "DOUBLE", "colour": "VARCHAR", "deleted": "BOOLEAN"} {
		if types[col] != want {
			t.Errorf("column %s: DuckDB reads %q, want %s (all: %v)", col, types[col], want, types)
		}
	}
	rows := queryRows(t, db, "SELECT CAST(amount AS VARCHAR) AS amount, colour FROM "+lakedb.ParquetTree(dir)+" WHERE id = 11")
	if len(rows) != 1 || rows[0].val("amount") != "2.25" || rows[0].val("colour") != "red" {
		t.Errorf("id 11: %v", rows)
	}
	mustExec(t, conn, `ALTER TABLE items ALTER COLUMN amount TYPE jsonb USING to_jsonb(amount)`)
	mustExec(t, conn, `INSERT INTO items (id, name, amount, updated_at) VALUES (12, 'n12', '{"value": 1}', timestamptz '2026-11-03Z')`)
	r := connectd(t, 2*time.Minute, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "amount") || !strings.Contains(r.stderr, "schema") {
		t.Errorf("a field turned object: want a failure naming the column and the fix, got %s", r)
	}
}

// TestHTTPSourceCheckAndDiscover: check makes one request per stream and says what came
// back; discover prints the schema the first page infers.
func TestHTTPSourceCheckAndDiscover(t *testing.T) {
	p, conn := newHTTPPipe(t, "token", "{rows: 100000, bytes: 16MiB, interval: 1s}", "")
	seedItems(t, conn, 1, 5)
	r := connectd(t, time.Minute, "check", "-c", p.config)
	if r.code != 0 {
		t.Fatalf("check: want exit 0, got %s", r)
	}
	for _, want := range []string{"stream items", "HTTP 200", "5 records on the first page", "updated_at"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check does not say %q:\n%s", want, r.stdout)
		}
	}
	r = connectd(t, time.Minute, "discover", "-c", p.config)
	if r.code != 0 {
		t.Fatalf("discover: want exit 0, got %s", r)
	}
	for _, want := range []string{"shop.items", "amount", "meta", "float64"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("discover does not show %q:\n%s", want, r.stdout)
		}
	}
	p.api.fault("html", 10)
	if r := connectd(t, time.Minute, "check", "-c", p.config); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "Maintenance") {
		t.Errorf("check against an HTML page: want a failure quoting it, got %s", r)
	}
}

// TestHTTPSourceKillsWhileTheAPIChanges kills `connectd run` with SIGKILL again and
// again at random moments while a writer keeps updating and inserting rows behind the
// API, so that the records a restart reads differ from the ones the interrupted flush
// wrote. After a final sync the lake, read back with DuckDB, holds no position twice
// and its latest record per key equals the table.
func TestHTTPSourceKillsWhileTheAPIChanges(t *testing.T) {
	db := lakedb.DuckDB(t)
	p, conn := newHTTPPipe(t, "link", "{rows: 40, bytes: 16MiB, interval: 100ms}", "")
	seedItems(t, conn, 1, 400)
	wconn := connect(t, p.dsn)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		next := 1000
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if i%3 == 0 {
				_, err = wconn.Exec(context.Background(), `INSERT INTO items (id, name, amount, updated_at) VALUES ($1::int, 'new ' || $1::int, $1::int, now())`, next)
				next++
			} else {
				_, err = wconn.Exec(context.Background(), `UPDATE items SET name = 'v' || $2::int || ' ' || id, updated_at = now() WHERE id = $1::int`, 1+(i*37)%400, i)
			}
			if err != nil {
				done <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	p.api.setDelay(5 * time.Millisecond)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for k := 0; k < 12; k++ {
		d := startRun(t, p.config)
		time.Sleep(time.Duration(200+rng.Intn(900)) * time.Millisecond)
		d.stop(t, syscall.SIGKILL)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	p.api.setDelay(0)
	p.sync(t)
	p.checkLake(t, db, conn)
}

// TestHTTPSourceFullRefreshAfterReset: `connectd offsets reset` is the full refresh on
// demand: the next sync reads every stream from its start again, every record as a read,
// under the new epoch.
func TestHTTPSourceFullRefreshAfterReset(t *testing.T) {
	db := lakedb.DuckDB(t)
	p, conn := newHTTPPipe(t, "page", "{rows: 100000, bytes: 16MiB, interval: 1s}", "")
	seedItems(t, conn, 1, 30)
	p.sync(t)
	mustExec(t, conn, `UPDATE items SET name = name || ' v2', updated_at = timestamptz '2026-11-05Z' WHERE id <= 3`)
	p.sync(t)
	if r := connectd(t, 30*time.Second, "offsets", "reset", "-c", p.config, p.name); r.code != 0 {
		t.Fatalf("offsets reset: %s", r)
	}
	p.sync(t)
	rows, lake := p.lakeState(t, db)
	reads := 0
	for _, r := range rows {
		if strings.HasPrefix(r.val("_pos"), "ff") && r.val("_op") == "r" {
			reads++
		}
	}
	if reads != 30 {
		t.Errorf("after the reset the sync read %d rows as r under the new epoch, want all 30", reads)
	}
	compareTable(t, lake, sourceRows(t, conn), "id", "name", "amount")
}
