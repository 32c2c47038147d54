package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestSnapshotKilledMidwayResumes kills `connectd run` in the middle of the initial
// snapshot (the S3 server frozen so that the kill lands between two flushes), restarts
// it and checks that the snapshot resumes where it stopped, so every row is in the
// lake exactly once and no _pos appears twice. It runs once per kind of offsets
// store, since the snapshot's progress is kept there beside the position.
func TestSnapshotKilledMidwayResumes(t *testing.T) {
	t.Run("file", func(t *testing.T) { snapshotKilledMidway(t, nil) })
	t.Run("s3", func(t *testing.T) {
		// The s3:// store takes its credentials from the AWS chain, as in production.
		t.Setenv("AWS_ACCESS_KEY_ID", s3Server(t).AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", s3Server(t).SecretKey)
		snapshotKilledMidway(t, func(p *pipe) string {
			// A bucket apart from the lake's: the test counts the lake's objects.
			bucket := p.bucket + "-offsets"
			if err := s3Server(t).CreateBucket(context.Background(), bucket); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("s3://%s/connectd/offsets?region=%s&path_style=true&endpoint=%s", bucket, s3Server(t).Region, url.QueryEscape(s3Server(t).Endpoint))
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, _ := newDatabase(t, "e2e_offsets")
		snapshotKilledMidway(t, func(*pipe) string { return dsn })
	})
}

// snapshotKilledMidway is TestSnapshotKilledMidwayResumes with the offsets store
// that offsetsURL names (nil: the pipe's own directory).
func snapshotKilledMidway(t *testing.T, offsetsURL func(*pipe) string) {
	dsn, conn := newDatabase(t, "e2e_snapkill")
	const total = 50000
	mustExec(t, conn, fmt.Sprintf(`CREATE TABLE public.big (id int PRIMARY KEY, pad text NOT NULL);
INSERT INTO public.big SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, %d) g`, total))
	p := newPipe(t, "snapshot_killed", dsn, true, "public.big")
	if offsetsURL != nil {
		p.offsets = offsetsURL(p)
	}
	p.extra = "      snapshot_chunk: 1000\n"
	p.flush = "{rows: 500, bytes: 16MiB, interval: 1s}"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)

	killAfterObjects(t, p, 1)
	atKill := lakeCount(t, db, p.tableDir(t, "public", "big"))
	if atKill == 0 || atKill >= total {
		t.Fatalf("%d of %d rows were in the lake at the kill; the test proves nothing", atKill, total)
	}
	t.Logf("killed with %d of %d snapshot rows in the lake", atKill, total)

	p.sync(t)
	dir := p.tableDir(t, "public", "big")
	rows := readTable(t, db, dir, "CAST(id AS VARCHAR) AS id", "pad")
	checkPositions(t, rows)
	perID := map[string]int{}
	twice := 0
	for _, r := range rows {
		if r.val("_op") != "r" {
			t.Errorf("unexpected %s record: %s", r.val("_op"), r.describe())
		}
		if perID[r.val("id")]++; perID[r.val("id")] == 2 {
			twice++
		}
	}
	if len(rows) != total || twice > 0 {
		t.Errorf("lake has %d snapshot records for %d rows, %d rows more than once; want each row once", len(rows), total, twice)
	}
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, pad FROM public.big"), "id", "pad")

	// The store answers `connectd offsets` as it answers connectd.
	list := connectd(t, 30*time.Second, "offsets", "list", "-c", p.config)
	if list.code != 0 || !strings.Contains(list.stdout, p.name+"\t") || strings.Contains(list.stdout, p.name+"\t(none)") {
		t.Errorf("offsets list after the sync: %s", list)
	}
}

// TestKillInsideLargeTransactionLosesNothing kills `connectd run` while it delivers a
// transaction larger than a flush (the S3 server frozen so that part of the
// transaction is committed and part is not), and checks that after a restart every
// row of the transaction is in the lake exactly once.
func TestKillInsideLargeTransactionLosesNothing(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_bigtx")
	mustExec(t, conn, `CREATE TABLE public.lines (id int PRIMARY KEY, qty int NOT NULL, note text);
INSERT INTO public.lines VALUES (0, 0, 'before')`)
	p := newPipe(t, "big_transaction", dsn, true, "public.lines")
	p.flush = "{rows: 200, bytes: 16MiB, interval: 1s}"
	p.writeConfig(t)
	p.sync(t) // a one-row snapshot: what follows is all streaming
	db := lakedb.DuckDB(t)

	const total = 20000
	mustExec(t, conn, fmt.Sprintf(`BEGIN;
INSERT INTO public.lines SELECT g, g %% 7, 'line ' || g FROM generate_series(1, %[1]d) g;
UPDATE public.lines SET qty = qty + 100 WHERE id %% 10 = 0 AND id > 0;
DELETE FROM public.lines WHERE id %% 100 = 1;
COMMIT`, total))
	const updates, deletes = total / 10, total / 100
	had := len(listObjects(t, p.bucket))
	killAfterObjects(t, p, had+1)
	atKill := lakeCount(t, db, p.tableDir(t, "public", "lines"))
	if atKill >= 1+total+updates+deletes {
		t.Fatalf("the whole transaction (%d records) was in the lake before the kill; the test proves nothing; objects: %v", atKill, listObjects(t, p.bucket))
	}
	t.Logf("killed with %d of %d records of the transaction in the lake", atKill, total+updates+deletes)

	p.sync(t)
	rows := readTable(t, db, p.tableDir(t, "public", "lines"), "CAST(id AS VARCHAR) AS id", "CAST(qty AS VARCHAR) AS qty", "note")
	checkPositions(t, rows)
	ops := map[string]int{}
	txids := map[string]bool{}
	for _, r := range rows {
		ops[r.val("_op")]++
		if r.val("_op") != "r" {
			txids[r.val("_txid")] = true
		}
	}
	if ops["r"] != 1 || ops["c"] != total || ops["u"] != updates || ops["d"] != deletes || len(rows) != 1+total+updates+deletes {
		t.Errorf("lake has %v (%d records), want r:1 c:%d u:%d d:%d", ops, len(rows), total, updates, deletes)
	}
	if len(txids) != 1 {
		t.Errorf("the records of one transaction carry %d different _txid values", len(txids))
	}
	compareTable(t, rebuild(rows, "id"), pgRows(t, conn, "SELECT id::text AS id, qty::text AS qty, note FROM public.lines"), "id", "qty", "note")
}

// listObjects lists the keys of a bucket.
func listObjects(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := s3Server(t).Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list s3://%s: %v", bucket, err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// waitForObjects polls the bucket closely until it holds n objects, so that what
// follows (freezing the server) lands early in the run.
func waitForObjects(t *testing.T, d *daemon, bucket string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(listObjects(t, bucket)) < n {
		if !d.running() || time.Now().After(deadline) {
			r := d.stop(t, syscall.SIGKILL)
			t.Fatalf("want %d objects in s3://%s, have %v: %s", n, bucket, listObjects(t, bucket), r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
