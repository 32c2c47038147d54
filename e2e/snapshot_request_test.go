package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestSnapshotOnRequestWhileStreaming: `connectd snapshot` asks a running `connectd
// run` to read a table again while it streams it under concurrent writes: with
// --where only the matching rows come again, as op r records; without, the whole
// table, after which the lake, rebuilt by latest _pos, equals the source. A filter
// the server refuses and a table the connector does not select fail at once.
func TestSnapshotOnRequestWhileStreaming(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_snaprequest")
	mustExec(t, conn, `CREATE TABLE public.orders `+lineDDL+`; CREATE TABLE public.other `+lineDDL)
	insertLines(t, conn, "public.orders", 1, 3000)

	p := newPipe(t, "snaprequest", dsn, false, "public.orders")
	p.extra = "      snapshot_chunk: 100\n      discovery: 300ms\n"
	p.flush = "{rows: 100000, bytes: 16MiB, interval: 200ms}"
	p.writeConfig(t)
	db := lakedb.DuckDB(t)
	orders := lakeTable(p.lakeDir, "public", "orders")
	d := startRun(t, p.config)
	waitFor(t, 60*time.Second, d, "the initial snapshot in the lake", func() (bool, string) {
		n := lakeCount(t, db, orders)
		return n >= 2999, fmt.Sprintf("%d rows", n)
	})

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--table", "public.orders", "--where", "nosuch > 1"}, `column "nosuch" does not exist`},
		{[]string{"--table", "public.orders", "--where", "true; DROP TABLE public.orders"}, "syntax error"},
		{[]string{"--table", "public.other"}, "not selected by connector"},
	} {
		r := connectd(t, time.Minute, append([]string{"snapshot", "-c", p.config, "--connector", p.name}, bad.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("snapshot %v: want a failure saying %q, got %s", bad.args, bad.want, r)
		}
	}

	stop := make(chan struct{})
	done := churn(dsn, "public.orders", 3000, 11, stop)
	r := connectd(t, 2*time.Minute, "snapshot", "-c", p.config, "--connector", p.name, "--table", "public.orders", "--where", "id % 10 = 0", "--wait")
	if r.code != 0 || !strings.Contains(r.stdout, "done") {
		t.Fatalf("snapshot --where: %s", r)
	}
	// Every op r record after the initial snapshot (a stream position, 02...) is one
	// of the rows the filter matched.
	waitFor(t, 30*time.Second, d, "the requested rows in the lake", func() (bool, string) {
		n := 0
		for _, row := range readTable(t, db, orders, "CAST(id AS VARCHAR) AS id") {
			if row.val("_op") == "r" && strings.HasPrefix(row.val("_pos"), "02") {
				n++
			}
		}
		return n >= 250, fmt.Sprintf("%d requested rows", n)
	})
	requested := 0
	for _, row := range readTable(t, db, orders, "CAST(id AS VARCHAR) AS id") {
		if row.val("_op") != "r" || !strings.HasPrefix(row.val("_pos"), "02") {
			continue
		}
		requested++
		if id, _ := strconv.Atoi(row.val("id")); id%10 != 0 {
			t.Errorf("the filtered snapshot read id %d, which id %% 10 = 0 leaves out", id)
		}
	}
	t.Logf("%d rows read again by the filtered snapshot", requested)

	r = connectd(t, 2*time.Minute, "snapshot", "-c", p.config, "--connector", p.name, "--table", "public.orders", "--wait")
	if r.code != 0 {
		t.Fatalf("snapshot of the whole table: %s", r)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	n, err := done()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d statements on public.orders during the snapshots", n)
	waitFor(t, 60*time.Second, d, "the lake to equal public.orders", func() (bool, string) {
		diff := lakeDiff(t, db, orders, conn, "public.orders")
		return diff == "", diff
	})
	d.stopClean(t)
	if got := strings.Count(d.stderr.String(), "requested snapshot complete"); got != 2 {
		t.Errorf("want two requested snapshots complete in the log, got %d", got)
	}
	rows := reconcileLines(t, db, orders, conn, "public.orders")
	t.Logf("public.orders in the lake: %v", opCounts(rows))
}
