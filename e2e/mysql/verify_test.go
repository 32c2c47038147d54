package mysqle2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/verify"
)

// verifyOutput is what `connectd verify --json` prints.
type verifyOutput struct {
	Equal      bool             `json:"equal"`
	Connectors []*verify.Report `json:"connectors"`
}

func runVerify(t *testing.T, p *pipe, args ...string) (result, verifyOutput) {
	t.Helper()
	r := connectd(t, 3*time.Minute, append([]string{"verify", "-c", p.config, "--json"}, args...)...)
	var v verifyOutput
	if r.code == 0 || r.code == 1 {
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || len(v.Connectors) != 1 {
			t.Fatalf("verify --json printed no report of one connector (%v): %s", err, r)
		}
	}
	return r, v
}

// TestVerifyFindsExactlyWhatDiffers: on MariaDB with an S3 lake, verify finds the lake
// equal after a workload and during one; after a lake file is deleted, a cell edited
// and a row deleted at the source with the binary log off for the session, it names
// exactly those keys and that column and exits 1.
func TestVerifyFindsExactlyWhatDiffers(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE e2everify;
CREATE TABLE e2everify.t (id int PRIMARY KEY, n int, s varchar(20));
CREATE TABLE e2everify.kinds (id bigint unsigned PRIMARY KEY, d decimal(20,4), f double, dt datetime(6), ts timestamp(6) NULL,
  j json, b blob, e enum('x','y'), y year, u bigint unsigned)`)
	seed(t, db, "e2everify.t", 2000)
	mustExec(t, db, `INSERT INTO e2everify.t VALUES (800010, 1, 'edit me'), (800020, 1, 'delete me');
INSERT INTO e2everify.kinds SELECT seq, seq * 1.2345 - 50, seq / 7, TIMESTAMP('2026-01-01') + INTERVAL seq SECOND + INTERVAL 123 MICROSECOND,
  TIMESTAMP('2026-02-01') + INTERVAL seq MINUTE, JSON_OBJECT('k', seq, 'a', JSON_ARRAY(1.50, 'x', NULL)), UNHEX(MD5(seq)),
  IF(seq % 2 = 0, 'x', 'y'), 2000 + seq % 50, 18446744073709551615 - seq FROM e2everify.seq_1_to_50`)
	p := newPipe(t, "e2e_verify", "e2everify", true)
	p.sync(t)

	w := &workload{db: db, table: "e2everify.t", rnd: rand.New(rand.NewSource(11)), next: 2000}
	w.run()
	time.Sleep(1500 * time.Millisecond)
	w.stop(t)
	mustExec(t, db, "UPDATE e2everify.kinds SET d = d + 1, j = JSON_SET(j, '$.y', 2) WHERE id % 3 = 0; DELETE FROM e2everify.kinds WHERE id = 50")
	for _, method := range []string{"rows", "digest"} {
		r, v := runVerify(t, p, "--method", method)
		if r.code != 0 || !v.Equal {
			t.Fatalf("verify --method %s after a workload: want exit 0 and equal, got %s", method, r)
		}
		for _, tb := range v.Connectors[0].Tables {
			if tb.SourceRows == 0 || tb.SourceRows != tb.DestRows {
				t.Errorf("%s: %d source rows, %d destination rows", tb.Table, tb.SourceRows, tb.DestRows)
			}
			// By digest, the server's fields and the lake's agree on every range.
			if method == "digest" && (tb.Method != "digest" || tb.RangesDiffering != 0) {
				t.Errorf("%s: method %q (%s), %d of %d ranges differing; want every range equal by server digest", tb.Table, tb.Method, tb.MethodNote, tb.RangesDiffering, tb.Ranges)
			}
		}
	}

	// A workload running while verify syncs and compares.
	w = &workload{db: db, table: "e2everify.t", rnd: rand.New(rand.NewSource(12)), next: w.next}
	w.run()
	if r, v := runVerify(t, p, "--table", "e2everify.t"); r.code != 0 || !v.Equal {
		t.Errorf("verify under a workload: want exit 0 and equal, got %s", r)
	}
	w.stop(t)
	p.sync(t)

	// Tamper: a file of three new keys deleted, one cell edited, one row deleted at
	// the source with sql_log_bin off.
	ctx := context.Background()
	s3 := s3Server(t)
	prefix := "lake/e2everify/t/"
	keys := func() map[string]bool {
		k, err := s3.Keys(ctx, p.bucket, prefix, ".parquet")
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := keys()
	mustExec(t, db, "INSERT INTO e2everify.t VALUES (900001, 7, 'lost'), (900002, 7, 'lost'), (900003, 7, 'lost')")
	p.sync(t)
	added := testenv.NewKeys(before, keys())
	if len(added) != 1 {
		t.Fatalf("the sync of three inserts wrote %d files, want 1: %v", len(added), added)
	}
	if err := s3.Delete(ctx, p.bucket, added[0]); err != nil {
		t.Fatal(err)
	}
	before = keys()
	mustExec(t, db, "UPDATE e2everify.t SET s = 'checked' WHERE id = 800010")
	p.sync(t)
	added = testenv.NewKeys(before, keys())
	if len(added) != 1 {
		t.Fatalf("the sync of one update wrote %d files, want 1: %v", len(added), added)
	}
	if err := s3.RewriteParquetCell(ctx, p.bucket, added[0], "s", "tampered"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, "SET sql_log_bin = 0; DELETE FROM e2everify.t WHERE id = 800020; SET sql_log_bin = 1")

	// Both methods find exactly the same.
	for _, method := range []string{"rows", "digest"} {
		r, v := runVerify(t, p, "--method", method)
		t.Run(method, func(t *testing.T) { checkTampered(t, r, v) })
	}
}

func checkTampered(t *testing.T, r result, v verifyOutput) {
	t.Helper()
	if r.code != 1 || v.Equal {
		t.Fatalf("verify after tampering: want exit 1 and not equal, got %s", r)
	}
	var got []string
	for _, tb := range v.Connectors[0].Tables {
		switch tb.Table {
		case "e2everify.kinds":
			if !tb.Equal() {
				t.Errorf("e2everify.kinds was not touched, verify reports %+v", tb)
			}
		case "e2everify.t":
			if tb.Missing != 3 || tb.Extra != 1 || tb.Differing != 1 || tb.DuplicatePositions != 0 || tb.Unresolved != 0 {
				t.Errorf("e2everify.t: want 3 missing, 1 extra, 1 differing, got %+v", tb)
			}
			for _, e := range tb.Examples {
				s := e.Kind
				for _, k := range e.Key {
					s += fmt.Sprintf(" %s=%s", k.Column, k.Value)
				}
				for _, c := range e.Columns {
					s += fmt.Sprintf(" %s: %s/%s", c.Column, c.Source, c.Destination)
				}
				got = append(got, s)
			}
		}
	}
	sort.Strings(got)
	want := []string{`differs id=800010 s: "checked"/"tampered"`, "extra id=800020", "missing id=900001", "missing id=900002", "missing id=900003"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("verify after tampering reported\n%q\nwant\n%q\n%s", got, want, r.stdout)
	}
}
