package plugins

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// line is one NDJSON line, each field kept as the exact JSON text the plugin wrote.
type line map[string]json.RawMessage

func (l line) str(t *testing.T, key string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(l[key], &s); err != nil {
		t.Fatalf("%s = %s: not a string: %v", key, l[key], err)
	}
	return s
}

// readNDJSON reads every line of every finished file (not the hidden temporary ones)
// under dir.
func readNDJSON(t *testing.T, dir string) []line {
	t.Helper()
	var out []line
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") || !strings.HasSuffix(d.Name(), ".ndjson") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, text := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			var l line
			if err := json.Unmarshal(text, &l); err != nil {
				return fmt.Errorf("%s:%d: %v: %s", path, i+1, err, text)
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// byPosition sorts lines into source order and fails the test if a position
// appears twice.
func byPosition(t *testing.T, lines []line) []line {
	t.Helper()
	pos := func(l line) []byte {
		var s string
		_ = json.Unmarshal(l["_pos"], &s)
		b, err := hex.DecodeString(s)
		if err != nil || len(b) == 0 {
			t.Fatalf("bad _pos %s", l["_pos"])
		}
		return b
	}
	slices.SortFunc(lines, func(a, b line) int { return bytes.Compare(pos(a), pos(b)) })
	for i := 1; i < len(lines); i++ {
		if bytes.Equal(pos(lines[i-1]), pos(lines[i])) {
			t.Fatalf("position %s delivered twice:\n%v\n%v", lines[i]["_pos"], lines[i-1], lines[i])
		}
	}
	return lines
}

// itemsSQL is what the NDJSON of a row of items must say, column by column, in
// Postgres' own text: numbers as their exact digits, timestamps in the plugin's
// RFC 3339 form.
const itemsSQL = `SELECT id::text, amount::text, big::text,
	CASE WHEN at IS NULL THEN NULL WHEN at = 'infinity' THEN 'infinity'
	     ELSE to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END,
	name, flag::text, doc::text, small::text
	FROM items ORDER BY id`

// checkItems compares the rows an NDJSON history leaves (by id) with the table.
func checkItems(t *testing.T, conn *pgx.Conn, got map[string]line) {
	t.Helper()
	rows, err := conn.Query(context.Background(), itemsSQL)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, amount string
		var big, at, name, flag, doc, small *string
		if err := rows.Scan(&id, &amount, &big, &at, &name, &flag, &doc, &small); err != nil {
			t.Fatal(err)
		}
		n++
		l, ok := got[id]
		if !ok {
			t.Fatalf("id %s is in the table but not in the NDJSON", id)
		}
		raw := func(k string) string { return string(l[k]) }
		quoted := func(s *string) string {
			if s == nil {
				return "null"
			}
			b, _ := json.Marshal(*s)
			return string(b)
		}
		number := func(s *string) string {
			switch {
			case s == nil:
				return "null"
			case *s == "NaN":
				return `"NaN"`
			}
			return *s
		}
		checks := []struct{ col, got, want string }{
			{"id", raw("id"), id},
			{"amount", raw("amount"), amount},
			{"big", raw("big"), number(big)},
			{"at", raw("at"), quoted(at)},
			{"name", raw("name"), quoted(name)},
			{"flag", raw("flag"), number(flag)},
			{"small", raw("small"), number(small)},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Fatalf("id %s: column %s: NDJSON has %s, the table %s\nline: %v", id, c.col, c.got, c.want, l)
			}
		}
		var a, b any
		if err := json.Unmarshal(l["doc"], &a); err != nil || doc == nil || json.Unmarshal([]byte(*doc), &b) != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("id %s: column doc: NDJSON has %s, the table %v", id, l["doc"], doc)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(got) {
		t.Fatalf("the NDJSON leaves %d rows, the table has %d", len(got), n)
	}
}

// replay applies NDJSON lines in position order and returns the rows they leave,
// by id, and how many lines there were of each op.
func replay(t *testing.T, lines []line) (map[string]line, map[string]int) {
	t.Helper()
	rows, ops := map[string]line{}, map[string]int{}
	for _, l := range byPosition(t, lines) {
		op := l.str(t, "_op")
		ops[op]++
		id := string(l["id"])
		switch op {
		case "r", "c", "u":
			rows[id] = l
		case "d":
			if _, ok := rows[id]; !ok {
				t.Fatalf("delete of id %s, which is not there", id)
			}
			delete(rows, id)
		default:
			t.Fatalf("unexpected op %q: %v", op, l)
		}
	}
	return rows, ops
}

// TestPostgresToNDJSONPluginDeliversEveryRowOnceWithExactValues: a built-in source
// into a plugin destination, through `connectd sync`: a snapshot, then inserts,
// updates and deletes; every change lands once with the table's exact values.
func TestPostgresToNDJSONPluginDeliversEveryRowOnceWithExactValues(t *testing.T) {
	dsn, conn := newDatabase(t, "pg_ndjson")
	mustExec(t, conn, `CREATE TABLE items (
		id bigint PRIMARY KEY, amount numeric(20,6) NOT NULL, big numeric, at timestamptz,
		name text, flag boolean, doc jsonb, small smallint)`)
	insert := func(from, to int) {
		mustExec(t, conn, `INSERT INTO items SELECT i,
			((CASE WHEN i % 3 = 0 THEN '-' ELSE '' END) || i || '.' || lpad((i * 7919 % 1000000)::text, 6, '0'))::numeric,
			CASE WHEN i % 50 = 0 THEN 'NaN'::numeric ELSE ('123456789012345678901234567890.' || i)::numeric END,
			CASE WHEN i % 97 = 0 THEN 'infinity'::timestamptz WHEN i % 89 = 0 THEN NULL
			     ELSE timestamptz '2024-02-29 23:59:59.123456+00' + i * interval '1 day 1.000001 second' END,
			'name ' || i || ' "zażółć" \ ' || chr(9),
			CASE WHEN i % 7 = 0 THEN NULL ELSE i % 2 = 0 END,
			jsonb_build_object('i', i, 'tags', jsonb_build_array('a', i), 'x', 1.5),
			(i % 30000 - 15000)::smallint
			FROM generate_series($1::int, $2::int) i`, from, to)
	}
	insert(1, 3000)

	dir := t.TempDir()
	out := filepath.Join(dir, "ndjson")
	name := unique("pg_ndjson")
	config := filepath.Join(dir, "connectd.yaml")
	// The plugin by explicit path; plugins.dir is set too, as in a real config.
	writeFile(t, config, fmt.Sprintf(`offsets: file://%s/offsets
plugins:
  dir: %s
connectors:
  %s:
    source:
      type: postgres
      dsn: %q
      tables: ["public.items"]
    destination:
      type: plugin
      path: %s
      config:
        dir: %s
      flush: {rows: 1000, interval: 1s}
`, dir, pluginDir(t), name, dsn, filepath.Join(pluginDir(t), "ndjson-destination"), out))

	syncConfig(t, config)
	lines := readNDJSON(t, filepath.Join(out, "public", "items"))
	rows, ops := replay(t, lines)
	if ops["r"] != 3000 || len(ops) != 1 {
		t.Fatalf("after the snapshot: ops %v, want 3000 r", ops)
	}
	checkItems(t, conn, rows)

	insert(3001, 3200)
	mustExec(t, conn, `UPDATE items SET amount = amount + 1.5, name = name || ' updated', at = at - interval '1 microsecond' WHERE id % 10 = 0`)
	mustExec(t, conn, `DELETE FROM items WHERE id % 15 = 0`)
	syncConfig(t, config)
	lines = readNDJSON(t, filepath.Join(out, "public", "items"))
	rows, ops = replay(t, lines)
	want := map[string]int{"r": 3000, "c": 200, "u": 320, "d": 213}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("ops %v, want %v", ops, want)
	}
	checkItems(t, conn, rows)
}

// eventLine is line i of the JSON-lines file the jsonl-source tests tail.
func eventLine(i int) string {
	neg := ""
	if i%4 == 0 {
		neg = "-"
	}
	at := time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC).Add(time.Duration(i) * (time.Minute + time.Microsecond))
	return fmt.Sprintf(`{"id":%d,"kind":"k\"%d é","amount":%s%d.%02d,"at":%q,"attrs":{"n":%d,"s":[1,"x"]},"ignored":true}`+"\n",
		i, i%5, neg, i*7919%10000000000, i%100, at.Format(time.RFC3339Nano), i)
}

func eventWant(i int) (kind, amount string, atMicros int64) {
	neg := ""
	if i%4 == 0 {
		neg = "-"
	}
	at := time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC).Add(time.Duration(i) * (time.Minute + time.Microsecond))
	return fmt.Sprintf(`k"%d é`, i%5), fmt.Sprintf("%s%d.%02d", neg, i*7919%10000000000, i%100), at.UnixMicro()
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	if err := appendText(path, text); err != nil {
		t.Fatal(err)
	}
}

func appendText(path, text string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// jsonlSource is the source section of a jsonl-source connector tailing path.
func jsonlSource(path string) string {
	return fmt.Sprintf(`    source:
      type: plugin
      name: jsonl-source
      config:
        path: %s
        namespace: app
        table: events
        columns:
          - {name: id, type: int64, key: true}
          - {name: kind, type: string}
          - {name: amount, type: "decimal(12,2)"}
          - {name: at, type: timestamptz}
          - {name: attrs, type: json}
        time_column: at
        poll: 50ms
`, path)
}

// checkEvents reads the lake and checks that lines 1..n each landed exactly once
// with exact values.
func checkEvents(t *testing.T, db *sql.DB, lake string, n int) {
	t.Helper()
	rows, err := db.Query(`SELECT id, kind, amount::VARCHAR, epoch_us("at"), attrs::VARCHAR, _op, _pos, epoch_us(_commit_ts)
		FROM ` + lakedb.ParquetTree(lake) + ` ORDER BY id, _pos`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	seen := map[string]bool{}
	for rows.Next() {
		var id, at, commit int64
		var kind, amount, attrs, op, pos string
		if err := rows.Scan(&id, &kind, &amount, &at, &attrs, &op, &pos, &commit); err != nil {
			t.Fatal(err)
		}
		i++
		if id != int64(i) {
			t.Fatalf("row %d of the lake has id %d: a line is missing or doubled", i, id)
		}
		if seen[pos] {
			t.Fatalf("position %s twice in the lake", pos)
		}
		seen[pos] = true
		wk, wa, wat := eventWant(i)
		var doc any
		if kind != wk || amount != wa || at != wat || commit != wat || op != "c" ||
			json.Unmarshal([]byte(attrs), &doc) != nil || !reflect.DeepEqual(doc, map[string]any{"n": float64(i), "s": []any{float64(1), "x"}}) {
			t.Fatalf("id %d: got kind %q amount %s at %d commit %d attrs %s op %s; want %q %s %d", id, kind, amount, at, commit, attrs, op, wk, wa, wat)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != n {
		t.Fatalf("%d rows in the lake, want %d", i, n)
	}
}

// TestJSONLPluginToParquetSyncsEveryLineOnce: a plugin source into the built-in
// parquet destination through `connectd sync`, twice, with a partial last line that
// is read only once complete.
func TestJSONLPluginToParquetSyncsEveryLineOnce(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	lake := filepath.Join(dir, "lake")
	var b strings.Builder
	for i := 1; i <= 2000; i++ {
		b.WriteString(eventLine(i))
	}
	writeFile(t, events, b.String())
	config := filepath.Join(dir, "connectd.yaml")
	writeFile(t, config, fmt.Sprintf(`offsets: file://%s/offsets
plugins:
  dir: %s
connectors:
  %s:
%s    destination:
      type: parquet
      url: file://%s
      flush: {rows: 700, interval: 1s}
`, dir, pluginDir(t), unique("jsonl"), jsonlSource(events), lake))
	db := lakedb.DuckDB(t)

	syncConfig(t, config)
	checkEvents(t, db, lake, 2000)

	b.Reset()
	for i := 2001; i <= 2500; i++ {
		b.WriteString(eventLine(i))
	}
	last := eventLine(2501)
	appendFile(t, events, b.String()+last[:len(last)/2])
	syncConfig(t, config)
	checkEvents(t, db, lake, 2500)

	appendFile(t, events, last[len(last)/2:])
	syncConfig(t, config)
	checkEvents(t, db, lake, 2501)
}

// connectorView is the part of GET /v1/connectors the tests read.
type connectorView struct {
	Name              string `json:"name"`
	State             string `json:"state"`
	CommittedPosition string `json:"committed_position"`
	RecordsTotal      int64  `json:"records_total"`
	LastError         string `json:"last_error"`
}

func connectors(addr string) (map[string]connectorView, error) {
	resp, err := http.Get("http://" + addr + "/v1/connectors")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var vs []connectorView
	if err := json.NewDecoder(resp.Body).Decode(&vs); err != nil {
		return nil, err
	}
	out := map[string]connectorView{}
	for _, v := range vs {
		out[v.Name] = v
	}
	return out, nil
}

// TestPluginsKilledMidStreamRestartWithNothingLostOrDoubled runs two connectors in
// one `connectd run`: a plugin source (jsonl-source) into parquet, and postgres into
// a plugin destination (ndjson-destination), while data flows into both. Each
// plugin in turn is killed with SIGKILL: its connector restarts it from the
// committed offset, the other connector keeps running (same plugin process, never
// out of the running state), and in the end every line and row has landed exactly
// once.
func TestPluginsKilledMidStreamRestartWithNothingLostOrDoubled(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	lake := filepath.Join(dir, "lake")
	out := filepath.Join(dir, "ndjson")
	writeFile(t, events, "")
	dsn, conn := newDatabase(t, "kill")
	mustExec(t, conn, `CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL, at timestamptz NOT NULL)`)
	evName, ordName := unique("events"), unique("orders")
	addr := freeAddr(t)
	config := filepath.Join(dir, "connectd.yaml")
	writeFile(t, config, fmt.Sprintf(`offsets: file://%s/offsets
server:
  listen: %s
plugins:
  dir: %s
connectors:
  %s:
%s    destination:
      type: parquet
      url: file://%s
      flush: {rows: 300, interval: 200ms}
  %s:
    source:
      type: postgres
      dsn: %q
      tables: ["public.orders"]
    destination:
      type: plugin
      name: ndjson-destination
      config:
        dir: %s
      flush: {rows: 300, interval: 200ms}
`, dir, addr, pluginDir(t), evName, jsonlSource(events), lake, ordName, dsn, out))

	d := startRun(t, config)
	pid := d.proc.Pid()

	// Writers: lines appended to the file and rows inserted into orders, in small
	// transactions, until stopped.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	nEvents, nOrders := 0, 0
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			mu.Lock()
			var b strings.Builder
			for k := 0; k < 20; k++ {
				nEvents++
				b.WriteString(eventLine(nEvents))
			}
			mu.Unlock()
			if err := appendText(events, b.String()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		wconn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer wconn.Close(context.Background())
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			mu.Lock()
			from := nOrders + 1
			mu.Unlock()
			_, err := wconn.Exec(context.Background(), `INSERT INTO orders SELECT i, i * 1.25, timestamptz '2025-01-01 00:00:00+00' + i * interval '1.5 second'
				FROM generate_series($1::int, $2::int) i`, from, from+9)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			nOrders = from + 9
			mu.Unlock()
		}
	}()
	stopWriters := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	defer stopWriters()

	view := func() map[string]connectorView {
		vs, err := connectors(addr)
		if err != nil {
			return nil
		}
		return vs
	}
	progressed := func(name string, than int64) func() (bool, string) {
		return func() (bool, string) {
			v := view()[name]
			return v.State == "running" && v.RecordsTotal > than, fmt.Sprintf("%+v", v)
		}
	}
	waitFor(t, 2*time.Minute, d, "both connectors to deliver", func() (bool, string) {
		vs := view()
		e, o := vs[evName], vs[ordName]
		return e.State == "running" && o.State == "running" && e.RecordsTotal > 500 && o.RecordsTotal > 200, fmt.Sprintf("%+v %+v", e, o)
	})

	// kill kills the plugin exe of connector victim, waits until a new process
	// serves it and it delivers again, and checks that the other connector, served
	// by other, ran on undisturbed meanwhile.
	kill := func(victim, exe, bystander, other string) {
		t.Helper()
		var victimPid, otherPid int
		waitFor(t, time.Minute, d, "both plugin processes", func() (bool, string) {
			victimPid, otherPid = childPlugin(pid, exe), childPlugin(pid, other)
			return victimPid > 0 && otherPid > 0, fmt.Sprintf("%s pid %d, %s pid %d", exe, victimPid, other, otherPid)
		})
		before := view()
		if err := syscall.Kill(victimPid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s (pid %d): %v", exe, victimPid, err)
		}
		t.Logf("killed %s (pid %d) of connector %s", exe, victimPid, victim)
		waitFor(t, 2*time.Minute, d, victim+" to restart its plugin and deliver again", func() (bool, string) {
			vs := view()
			v, b := vs[victim], vs[bystander]
			if b.State != "" && b.State != "running" {
				t.Fatalf("%s left the running state when %s's plugin was killed: %+v", bystander, victim, b)
			}
			np := childPlugin(pid, exe)
			return np > 0 && np != victimPid && v.State == "running" && vs[bystander].RecordsTotal > before[bystander].RecordsTotal,
				fmt.Sprintf("new pid %d, %s: %+v, %s: %+v", np, victim, v, bystander, vs[bystander])
		})
		// The failure was the plugin's death, and said so.
		if log := d.stderr.String(); !slices.ContainsFunc(strings.Split(log, "\n"), func(l string) bool {
			return strings.Contains(l, "plugin "+exe+": ") && strings.Contains(l, "exited unexpectedly")
		}) {
			t.Fatalf("the log does not say that plugin %s exited unexpectedly:\n%s", exe, tail(log, 40))
		}
		if p := childPlugin(pid, other); p != otherPid {
			t.Fatalf("%s's plugin changed from pid %d to %d when %s's was killed", bystander, otherPid, p, victim)
		}
		waitFor(t, 2*time.Minute, d, victim+" to deliver after the restart", progressed(victim, 0))
	}
	kill(evName, "jsonl-source", ordName, "ndjson-destination")
	kill(ordName, "ndjson-destination", evName, "jsonl-source")

	stopWriters()
	size, err := os.Stat(events)
	if err != nil {
		t.Fatal(err)
	}
	var endPos [8]byte
	binary.BigEndian.PutUint64(endPos[:], uint64(size.Size()))
	waitFor(t, 2*time.Minute, d, "every line committed", func() (bool, string) {
		v := view()[evName]
		return v.CommittedPosition == hex.EncodeToString(endPos[:]), fmt.Sprintf("%+v, want position %x", v, endPos)
	})
	waitFor(t, 2*time.Minute, d, "every order in the NDJSON", func() (bool, string) {
		n := len(readNDJSON(t, filepath.Join(out, "public", "orders")))
		return n >= nOrders, fmt.Sprintf("%d lines, %d orders", n, nOrders)
	})
	d.stopClean(t)

	checkEvents(t, lakedb.DuckDB(t), lake, nEvents)
	rows, ops := replay(t, readNDJSON(t, filepath.Join(out, "public", "orders")))
	if len(rows) != nOrders || ops["c"]+ops["r"] != nOrders || ops["u"]+ops["d"] != 0 {
		t.Fatalf("%d orders in the NDJSON (ops %v), want %d", len(rows), ops, nOrders)
	}
	for i := 1; i <= nOrders; i++ {
		l, ok := rows[fmt.Sprint(i)]
		if !ok {
			t.Fatalf("order %d is missing", i)
		}
		wantAmount := fmt.Sprintf("%d.%02d", i*125/100, i*125%100)
		at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 1500 * time.Millisecond)
		if string(l["amount"]) != wantAmount || l.str(t, "at") != at.Format("2006-01-02T15:04:05.000000Z") {
			t.Fatalf("order %d: %v, want amount %s at %s", i, l, wantAmount, at)
		}
	}
	t.Logf("%d lines and %d orders, each delivered once across two plugin kills", nEvents, nOrders)
}
