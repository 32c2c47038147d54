package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestServersRestartMidStream restarts PostgreSQL and then the S3 server under a
// running connectd: it must ride out both outages on its own (reconnect, retry) and
// deliver every change exactly once, then still stop cleanly.
func TestServersRestartMidStream(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_outage")
	mustExec(t, conn, "CREATE TABLE public.ev (id int PRIMARY KEY, phase text NOT NULL)")
	p := newPipe(t, "outage", dsn, true, "public.ev")
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	count := func(n int) func() (bool, string) {
		return func() (bool, string) {
			c := lakeCount(t, db, p.tableDir(t, "public", "ev"))
			return c >= n, fmt.Sprintf("%d rows in the lake", c)
		}
	}
	insert := func(phase string, from, to int) {
		t.Helper()
		c := connect(t, dsn) // a fresh connection: a restart ends the old ones
		mustExec(t, c, fmt.Sprintf("INSERT INTO public.ev SELECT g, '%s' FROM generate_series(%d, %d) g", phase, from, to))
	}
	insert("before", 1, 10)
	d := startRun(t, p.config)
	waitFor(t, 60*time.Second, d, "the snapshot in the lake", count(10))

	insert("streamed", 11, 20)
	waitFor(t, 60*time.Second, d, "the first changes in the lake", count(20))

	ctx := context.Background()
	if err := pgServer(t).Restart(ctx); err != nil {
		t.Fatalf("restart postgres: %v", err)
	}
	insert("after-pg-restart", 21, 30)
	waitFor(t, 120*time.Second, d, "the changes made after the PostgreSQL restart", count(30))

	if err := s3Server(t).Restart(ctx); err != nil {
		t.Fatalf("restart s3: %v", err)
	}
	insert("after-s3-restart", 31, 40)
	waitFor(t, 120*time.Second, d, "the changes made after the S3 restart", count(40))
	d.stopClean(t)

	rows := readTable(t, db, p.tableDir(t, "public", "ev"), "CAST(id AS VARCHAR) AS id", "phase")
	checkPositions(t, rows)
	var got []string
	for i, r := range rows {
		op := "c"
		if i < 10 {
			op = "r"
		}
		if r.val("_op") != op || r.val("id") != fmt.Sprint(i+1) {
			got = append(got, fmt.Sprintf("#%d: %s %s (%s)", i, r.val("_op"), r.val("id"), r.val("phase")))
		}
	}
	if len(rows) != 40 || len(got) > 0 {
		t.Errorf("lake has %d records, want r 1..10 then c 11..40 once each; out of place:\n%s", len(rows), strings.Join(got, "\n"))
	}
}
