package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
)

// verifyJSON is the part of `connectd verify --json` the tests read.
type verifyJSON struct {
	Equal      bool `json:"equal"`
	Connectors []struct {
		Connector string `json:"connector"`
		Tables    []struct {
			Table      string `json:"table"`
			SourceRows int64  `json:"source_rows"`
			DestRows   int64  `json:"destination_rows"`
			Missing    int64  `json:"missing"`
			Extra      int64  `json:"extra"`
			Differing  int64  `json:"differing"`
			Duplicates int64  `json:"duplicate_positions"`
			Unresolved int64  `json:"unresolved"`
			Ranges     int    `json:"ranges"`
			Differ     int    `json:"ranges_differing"`
			Method     string `json:"method"`
			MethodNote string `json:"method_note"`
			Examples   []struct {
				Kind string `json:"kind"`
				Key  []struct {
					Column string `json:"column"`
					Value  string `json:"value"`
				} `json:"key"`
				Columns []struct {
					Column      string `json:"column"`
					Source      string `json:"source"`
					Destination string `json:"destination"`
				} `json:"columns"`
			} `json:"examples"`
		} `json:"tables"`
	} `json:"connectors"`
}

func runVerify(t *testing.T, config string, args ...string) (result, verifyJSON) {
	t.Helper()
	r := connectd(t, 3*time.Minute, append([]string{"verify", "-c", config, "--json"}, args...)...)
	var v verifyJSON
	if r.code == 0 || r.code == 1 {
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("verify --json printed no JSON report (%v): %s", err, r)
		}
	}
	return r, v
}

// TestVerifyFindsExactlyWhatDiffers: after a random workload the lake verifies equal,
// also while a writer keeps changing the source (verify syncs up to its point, or waits
// for a running connectd); after a lake file is deleted, a cell of another is edited
// and a row is deleted at the source behind connectd's back, verify names exactly
// those keys and that column, and exits 1.
func TestVerifyFindsExactlyWhatDiffers(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_verify")
	const initial = 300
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE public.accounts (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO public.accounts SELECT g, 0, 'initial' FROM generate_series(1, %d) g;
CREATE TABLE public.kinds (id bigint PRIMARY KEY, n numeric(12,3), f float8, ts timestamptz, d date,
  j jsonb, a int[], u uuid, b bytea, big text);
INSERT INTO public.kinds SELECT g, g * 1.5, CASE g %% 4 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' ELSE g / 7.0 END,
  CASE WHEN g = 1 THEN 'infinity'::timestamptz ELSE '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 minute 0.000123 second' END,
  CASE WHEN g = 2 THEN '-infinity'::date ELSE '2026-01-01'::date + g END,
  jsonb_build_object('g', g, 'x', jsonb_build_array(1.50, 'a', null)), ARRAY[g, NULL, -g], md5(g::text)::uuid,
  decode(md5(g::text), 'hex'), (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 200) i)
FROM generate_series(1, 40) g`, initial))
	p := newPipe(t, "verify", dsn, true, "public.accounts", "public.kinds")
	p.flush = "{rows: 500, bytes: 4MiB, interval: 300ms}"
	p.writeConfig(t)
	p.sync(t)

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	w := &writer{conn: connect(t, dsn), rng: rand.New(rand.NewPCG(seed, 1)), nextID: initial + 1}
	for i := 1; i <= initial; i++ {
		w.live = append(w.live, i)
	}
	for i := 0; i < 300; i++ {
		if err := w.step(); err != nil {
			t.Fatal(err)
		}
	}
	// Updates that leave the TOASTed column out: the lake gets it as unchanged, and
	// verify must resolve it from the snapshot's record.
	mustExec(t, conn, `UPDATE public.kinds SET n = n + 1, j = j || '{"y": 2}' WHERE id % 3 = 0; DELETE FROM public.kinds WHERE id = 40;
TRUNCATE public.accounts; INSERT INTO public.accounts SELECT g, 1, 'after truncate' FROM generate_series(1, 100) g`)
	w.live = w.live[:0]
	for i := 1; i <= 100; i++ {
		w.live = append(w.live, i)
	}
	w.nextID = max(w.nextID, 101)
	for i := 0; i < 200; i++ {
		if err := w.step(); err != nil {
			t.Fatal(err)
		}
	}

	// Behind: verify syncs first, then finds the lake equal.
	r, v := runVerify(t, p.config, "--method", "digest")
	if r.code != 0 || !v.Equal {
		t.Fatalf("verify after a workload: want exit 0 and equal, got %s", r)
	}
	for _, tb := range v.Connectors[0].Tables {
		if tb.SourceRows == 0 || tb.SourceRows != tb.DestRows {
			t.Errorf("table %s: %d source rows, %d destination rows", tb.Table, tb.SourceRows, tb.DestRows)
		}
		// The server digested every range and the lake's fields agreed with its:
		// no range had to be read row by row.
		if tb.Method != "digest" || tb.Differ != 0 || tb.Ranges == 0 {
			t.Errorf("table %s: method %q (%s), %d of %d ranges differing; want every range equal by server digest", tb.Table, tb.Method, tb.MethodNote, tb.Differ, tb.Ranges)
		}
	}
	if out := connectd(t, time.Minute, "verify", "-c", p.config); out.code != 0 || !strings.Contains(out.stdout, "public.accounts") {
		t.Errorf("verify (text): want exit 0 and a line per table, got %s", out)
	}

	// Busy: a writer keeps committing while verify syncs and compares; then while a
	// `connectd run` holds the connector, verify waits for it instead.
	ctx, stopWriter := context.WithCancel(context.Background())
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.run(ctx) }()
	if r, v := runVerify(t, p.config, "--table", "public.accounts"); r.code != 0 || !v.Equal {
		t.Errorf("verify under a workload (syncing itself): want exit 0 and equal, got %s", r)
	}
	d := startRun(t, p.config)
	time.Sleep(time.Second)
	if r, v := runVerify(t, p.config, "--table", "public.accounts"); r.code != 0 || !v.Equal {
		t.Errorf("verify under a workload while connectd run holds the connector: want exit 0 and equal, got %s\nrun's log:\n%s", r, tail(d.stderr.String(), 30))
	}
	stopWriter()
	<-writerDone
	if err := w.failure(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	d.stopClean(t)
	p.sync(t)

	// Tamper. (1) Three new keys whose only records are in one file, then deleted.
	ctx = context.Background()
	prefix := "lake/public/accounts/"
	keys := func() map[string]bool {
		k, err := p.s3.Keys(ctx, p.bucket, prefix, ".parquet")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := keys()
	mustExec(t, conn, "INSERT INTO public.accounts VALUES (900001, 7, 'lost'), (900002, 7, 'lost'), (900003, 7, 'lost')")
	p.sync(t)
	added := testenv.NewKeys(before, keys())
	if len(added) != 1 {
		t.Fatalf("the sync of three inserts wrote %d files, want 1: %v", len(added), added)
	}
	if err := p.s3.Delete(ctx, p.bucket, added[0]); err != nil {
		t.Fatal(err)
	}
	// (2) One key updated alone, its file rewritten with another note.
	edited := w.live[len(w.live)/2]
	before = keys()
	mustExec(t, conn, "UPDATE public.accounts SET note = 'checked' WHERE id = $1", edited)
	p.sync(t)
	added = testenv.NewKeys(before, keys())
	if len(added) != 1 {
		t.Fatalf("the sync of one update wrote %d files, want 1: %v", len(added), added)
	}
	if err := p.s3.RewriteParquetCell(ctx, p.bucket, added[0], "note", "tampered"); err != nil {
		t.Fatal(err)
	}
	// (3) A row deleted at the source while the table is out of the publication.
	gone := w.live[0]
	pub := "connectd_" + p.name
	mustExec(t, conn, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE public.accounts", pub))
	mustExec(t, conn, "DELETE FROM public.accounts WHERE id = $1", gone)
	mustExec(t, conn, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE public.accounts", pub))

	// Both methods, the server's digests and moving every row, find exactly the same.
	for _, args := range [][]string{{"--method", "digest"}, {"--method", "rows"}} {
		r, v = runVerify(t, p.config, args...)
		t.Run(args[1], func(t *testing.T) { checkTampered(t, r, v, gone, edited) })
	}
	if strings.Contains(r.stdout+r.stderr, "s3cret") || strings.Contains(r.stdout, p.s3.SecretKey) {
		t.Errorf("verify printed a secret:\n%s", r)
	}
}

func checkTampered(t *testing.T, r result, v verifyJSON, gone, edited int) {
	t.Helper()
	if r.code != 1 || v.Equal {
		t.Fatalf("verify after tampering: want exit 1 and not equal, got %s", r)
	}
	got := map[string]string{}
	var accounts, kinds bool
	for _, tb := range v.Connectors[0].Tables {
		switch tb.Table {
		case "public.kinds":
			kinds = true
			if tb.Missing+tb.Extra+tb.Differing+tb.Duplicates+tb.Unresolved != 0 {
				t.Errorf("public.kinds was not touched, verify reports %+v", tb)
			}
		case "public.accounts":
			accounts = true
			if tb.Missing != 3 || tb.Extra != 1 || tb.Differing != 1 || tb.Duplicates != 0 || tb.Unresolved != 0 {
				t.Errorf("public.accounts: want 3 missing, 1 extra, 1 differing, got %+v", tb)
			}
			for _, e := range tb.Examples {
				var key []string
				for _, k := range e.Key {
					key = append(key, k.Column+"="+k.Value)
				}
				desc := e.Kind
				for _, c := range e.Columns {
					desc += fmt.Sprintf(" %s: %s/%s", c.Column, c.Source, c.Destination)
				}
				got[strings.Join(key, ",")] = desc
			}
		}
	}
	if !accounts || !kinds {
		t.Fatalf("verify's report lacks a table: %s", r.stdout)
	}
	want := map[string]string{
		"id=900001": "missing", "id=900002": "missing", "id=900003": "missing",
		fmt.Sprintf("id=%d", gone):   "extra",
		fmt.Sprintf("id=%d", edited): `differs note: "checked"/"tampered"`,
	}
	if fmt.Sprint(sortedPairs(got)) != fmt.Sprint(sortedPairs(want)) {
		t.Errorf("verify after tampering reported\n%v\nwant\n%v\n%s", sortedPairs(got), sortedPairs(want), r.stdout)
	}
}

func sortedPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+" "+v)
	}
	sort.Strings(out)
	return out
}
