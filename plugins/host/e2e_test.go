package host

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/parquet"
	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
)

func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestJSONLPluginToParquetEndToEnd(t *testing.T) {
	dir := t.TempDir()
	input := filepath.Join(dir, "orders.jsonl")
	appendFile(t, input, `{"id":1,"amount":12.34,"note":"first","at":"2024-03-01T10:00:00.123456Z","tags":{"a":[1,2]}}
{"id":2,"amount":"99999999.99","note":null,"at":"2024-03-02T23:59:59.999999+02:00"}

{"id":3,"amount":-0.5e1,"note":"ünï","at":"2024-03-02T00:00:00Z","ignored":true}
`)
	pc := &Config{Name: "jsonl-source", Config: map[string]any{
		"path": input, "namespace": "shop",
		"columns": []any{
			map[string]any{"name": "id", "type": "int64", "key": true},
			map[string]any{"name": "amount", "type": "decimal(10,2)"},
			map[string]any{"name": "note", "type": "string"},
			map[string]any{"name": "at", "type": "timestamptz"},
			map[string]any{"name": "tags", "type": "json"},
		},
		"time_column": "at",
	}}
	lake := filepath.Join(dir, "lake")
	store, err := offsets.NewFile(filepath.Join(dir, "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	runSync := func() {
		t.Helper()
		src, err := SourceKind{Dir: pluginDir(t)}.Open(ctxT(t), sourceParams(t, "orders", pc, connector.ModeSync))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := parquet.Kind{}.Open(ctxT(t), connector.DestinationParams{Name: "orders",
			Config: config.Destination{Type: "parquet", Config: &parquet.Config{URL: "file://" + lake}}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		if err := pipeline.Run(ctxT(t), pipeline.Options{Name: "orders", Source: src, Destination: dst, Store: store, Logger: testLogger(t)}); err != nil {
			t.Fatal(err)
		}
	}
	runSync()

	db := lakedb.DuckDB(t)
	query := func() []string {
		t.Helper()
		rows, err := db.Query(`SELECT id, CAST(amount AS VARCHAR), coalesce(note, 'NULL'), strftime("at" AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%f'),
			coalesce(CAST(tags AS VARCHAR), 'NULL'), CAST(date AS VARCHAR), _op FROM ` + lakedb.ParquetTree(filepath.Join(lake, "shop", "orders")) + ` ORDER BY _pos`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id int64
			var amount, note, at, tags, date, op string
			if err := rows.Scan(&id, &amount, &note, &at, &tags, &date, &op); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d|%s|%s|%s|%s|%s|%s", id, amount, note, at, tags, date, op))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := []string{
		`1|12.34|first|2024-03-01T10:00:00.123456|{"a":[1,2]}|2024-03-01|c`,
		`2|99999999.99|NULL|2024-03-02T21:59:59.999999|NULL|2024-03-02|c`,
		`3|-5.00|ünï|2024-03-02T00:00:00.000000|NULL|2024-03-02|c`,
	}
	if got := query(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lake after the first sync:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// More lines, and one still being written: the second sync reads only the new
	// complete lines.
	appendFile(t, input, `{"id":4,"amount":1,"at":"2024-03-03T00:00:00Z"}`+"\n"+`{"id":5,"amount":2,"at":"2024-03-03T00:00:01Z"`)
	runSync()
	want = append(want, `4|1.00|NULL|2024-03-03T00:00:00.000000|NULL|2024-03-03|c`)
	if got := query(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lake after the second sync:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// readNDJSON returns the ids of every line below dir and how often each occurs.
func readNDJSON(t testing.TB, dir string) map[int64]int {
	t.Helper()
	seen := map[int64]int{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ndjson") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var line struct {
				Op  string `json:"_op"`
				Pos string `json:"_pos"`
				ID  int64  `json:"id"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			seen[line.ID]++
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

// TestKilledPluginsRestartWithNothingLostOrDoubled runs jsonl-source -> ndjson-
// destination, both plugins, under the supervisor; kills the source's process, then
// the destination's, mid-stream; and checks that every line arrives exactly once.
func TestKilledPluginsRestartWithNothingLostOrDoubled(t *testing.T) {
	plugins := pluginDir(t) // here, not in open: a skip must come from the test's goroutine
	dir := t.TempDir()
	input := filepath.Join(dir, "events.jsonl")
	out := filepath.Join(dir, "out")
	var b strings.Builder
	const first = 30000
	for i := 1; i <= first; i++ {
		fmt.Fprintf(&b, `{"id":%d,"payload":"%s"}`+"\n", i, strings.Repeat("x", i%50))
	}
	appendFile(t, input, b.String())
	store, err := offsets.NewFile(filepath.Join(dir, "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	srcCfg := &Config{Name: "jsonl-source", Config: map[string]any{"path": input, "poll": "20ms",
		"columns": []any{map[string]any{"name": "id", "type": "int64", "key": true}, map[string]any{"name": "payload", "type": "string"}}}}
	dstCfg := &Config{Name: "ndjson-destination", Config: map[string]any{"dir": out}}

	var mu sync.Mutex
	var srcs []*Source
	var dsts []*Destination
	open := func(ctx context.Context) (connector.Source, connector.Destination, error) {
		d, err := DestinationKind{Dir: plugins}.Open(ctx, destinationParams(t, "events", dstCfg))
		if err != nil {
			return nil, nil, err
		}
		s, err := SourceKind{Dir: plugins}.Open(ctx, sourceParams(t, "events", srcCfg, connector.ModeStream))
		if err != nil {
			_ = d.Close(ctx)
			return nil, nil, err
		}
		mu.Lock()
		srcs, dsts = append(srcs, s.(*Source)), append(dsts, d.(*Destination))
		mu.Unlock()
		return s, d, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- pipeline.NewSupervisor(testLogger(t)).Run(ctx, []pipeline.Spec{{
			Name: "events", Open: open, Store: store, Logger: testLogger(t),
			Flush: config.Flush{Rows: 700, Interval: 100 * time.Millisecond},
		}}, false)
	}()
	committed := func() uint64 {
		p, err := store.Load(context.Background(), "events")
		if err != nil || len(p) != 8 {
			return 0
		}
		return uint64(p[0])<<56 | uint64(p[1])<<48 | uint64(p[2])<<40 | uint64(p[3])<<32 | uint64(p[4])<<24 | uint64(p[5])<<16 | uint64(p[6])<<8 | uint64(p[7])
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	attempts := func() int { mu.Lock(); defer mu.Unlock(); return len(srcs) }
	waitFor("a first commit", func() bool { return committed() > 0 })
	mu.Lock()
	srcs[0].c.killProcess()
	mu.Unlock()
	waitFor("a restart after the source was killed", func() bool { return attempts() >= 2 })

	// More lines while it runs, then kill the destination mid-stream.
	b.Reset()
	const total = 45000
	for i := first + 1; i <= total; i++ {
		fmt.Fprintf(&b, `{"id":%d,"payload":"y"}`+"\n", i)
	}
	appendFile(t, input, b.String())
	before := committed()
	waitFor("progress after the restart", func() bool { return committed() > before })
	mu.Lock()
	dsts[len(dsts)-1].c.killProcess()
	mu.Unlock()
	waitFor("a restart after the destination was killed", func() bool { return attempts() >= 3 })

	fi, err := os.Stat(input)
	if err != nil {
		t.Fatal(err)
	}
	waitFor("everything committed", func() bool { return committed() == uint64(fi.Size()) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("supervisor: %v", err)
	}
	seen := readNDJSON(t, out)
	for id := int64(1); id <= total; id++ {
		if seen[id] != 1 {
			t.Fatalf("id %d appears %d times (of %d distinct ids)", id, seen[id], len(seen))
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct ids, want %d", len(seen), total)
	}
	tmp, _ := filepath.Glob(filepath.Join(out, "*", "*", ".*.tmp"))
	if len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}
