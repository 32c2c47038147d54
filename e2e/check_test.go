package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// failLines returns the FAIL lines of `connectd check` output, each with its fix line.
func failLines(out string) []string {
	lines := strings.Split(out, "\n")
	var fails []string
	for i, l := range lines {
		if strings.HasPrefix(l, "FAIL") {
			f := l
			if i+1 < len(lines) && strings.Contains(lines[i+1], "fix:") {
				f += "\n" + lines[i+1]
			}
			fails = append(fails, f)
		}
	}
	return fails
}

// TestCheckReportsWalLevelFix: check passes on a well configured server and, on a
// server with wal_level=replica, fails with the wal_level line and its fix.
func TestCheckReportsWalLevelFix(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_check")
	mustExec(t, conn, "CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(10,2))")
	good := newPipe(t, "check_good", dsn, true, "public.orders")
	good.writeConfig(t)
	r := connectd(t, 60*time.Second, "check", "-c", good.config)
	if r.code != 0 || len(failLines(r.stdout)) > 0 {
		t.Errorf("check on a good server: want exit 0 and no FAIL line, got %s", r)
	}
	for _, want := range []string{"wal_level", "replica identity public.orders", "ok    offsets: file://"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check on a good server does not report %q:\n%s", want, r.stdout)
		}
	}

	ctx := context.Background()
	replica, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{WalLevel: "replica"})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Stop()
	if err := replica.Exec(ctx, "CREATE TABLE public.orders (id int PRIMARY KEY, total numeric(10,2))"); err != nil {
		t.Fatal(err)
	}
	bad := newPipe(t, "check_replica", replica.DSN, false, "public.orders")
	bad.writeConfig(t)
	r = connectd(t, 60*time.Second, "check", "-c", bad.config)
	if r.code != 1 {
		t.Errorf("check with wal_level=replica: want exit 1, got %s", r)
	}
	var walFail string
	for _, f := range failLines(r.stdout) {
		if strings.Contains(f, "wal_level") {
			walFail = f
		}
	}
	switch {
	case walFail == "":
		t.Errorf("check with wal_level=replica: no FAIL line about wal_level:\n%s", r.stdout)
	case !strings.Contains(walFail, "replica") || !strings.Contains(walFail, "ALTER SYSTEM SET wal_level = logical"):
		t.Errorf("check with wal_level=replica: the failure must show the current value and the fix (ALTER SYSTEM SET wal_level = logical), got:\n%s", walFail)
	}

	// An offsets store that cannot be reached fails the check, named, without its
	// password.
	unreachable := newPipe(t, "check_offsets", dsn, false, "public.orders")
	unreachable.offsets = "postgres://connectd:s3cret@127.0.0.1:1/state?sslmode=disable&connect_timeout=5"
	unreachable.writeConfig(t)
	r = connectd(t, 60*time.Second, "check", "-c", unreachable.config)
	if fails := strings.Join(failLines(r.stdout), "\n"); r.code != 1 || !strings.Contains(fails, "offsets: postgres://connectd:xxxxx@127.0.0.1:1/state") || strings.Contains(r.stdout, "s3cret") {
		t.Errorf("check with an unreachable offsets store: want exit 1 and a FAIL line naming it without the password, got %s", r)
	}
	if r := connectd(t, 60*time.Second, "sync", "-c", unreachable.config); r.code != 1 || !strings.Contains(r.stderr, "offsets") || strings.Contains(r.stderr, "s3cret") {
		t.Errorf("sync with an unreachable offsets store: want exit 1 and an error naming the store without the password, got %s", r)
	}

	// A lake in a bucket that does not exist is a failed check too.
	noBucket := newPipe(t, "check_no_bucket", dsn, false, "public.orders")
	noBucket.bucket = "no-such-bucket"
	noBucket.s3 = s3Server(t)
	noBucket.writeConfig(t)
	r = connectd(t, 60*time.Second, "check", "-c", noBucket.config)
	if fails := failLines(r.stdout); r.code != 1 || len(fails) == 0 || !strings.Contains(strings.Join(fails, "\n"), "no-such-bucket") {
		t.Errorf("check with a missing bucket: want exit 1 and a FAIL line naming the bucket, got %s", r)
	}
}

// TestTableWithoutPrimaryKeyIsReported: check, run and sync name a table without a
// primary key or replica identity, with the fix; once fixed, the table flows.
func TestTableWithoutPrimaryKeyIsReported(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_nopk")
	mustExec(t, conn, `CREATE TABLE public.keyed (id int PRIMARY KEY, v text);
CREATE TABLE public.nopk (a int, b text);
INSERT INTO public.keyed VALUES (1, 'one');
INSERT INTO public.nopk VALUES (1, 'one'), (2, 'two')`)
	p := newPipe(t, "no_pk", dsn, false, "public.keyed", "public.nopk")
	p.writeConfig(t)

	r := connectd(t, 60*time.Second, "check", "-c", p.config)
	if r.code != 1 {
		t.Errorf("check: want exit 1, got %s", r)
	}
	var fail string
	for _, f := range failLines(r.stdout) {
		if strings.Contains(f, "public.nopk") {
			fail = f
		}
		if strings.Contains(f, "public.keyed") {
			t.Errorf("check: the table with a primary key is reported: %s", f)
		}
	}
	if fail == "" || !strings.Contains(fail, "REPLICA IDENTITY FULL") || !strings.Contains(strings.ToLower(fail), "primary key") {
		t.Errorf("check: want a FAIL line naming public.nopk with the fix (add a primary key or REPLICA IDENTITY FULL), got:\n%s", r.stdout)
	}

	for _, cmd := range []string{"sync", "run"} {
		r := connectd(t, 60*time.Second, cmd, "-c", p.config)
		if r.code != 1 {
			t.Errorf("%s: want exit 1 (a permanent error), got %s", cmd, r)
		}
		if !strings.Contains(r.stderr, "public.nopk") || !strings.Contains(r.stderr, "REPLICA IDENTITY FULL") {
			t.Errorf("%s: stderr does not name public.nopk with the fix:\n%s", cmd, tail(r.stderr, 30))
		}
	}

	// With the fix applied, the table flows, deletes with the whole old row.
	mustExec(t, conn, "ALTER TABLE public.nopk REPLICA IDENTITY FULL")
	if r := connectd(t, 60*time.Second, "check", "-c", p.config); r.code != 0 {
		t.Errorf("check after REPLICA IDENTITY FULL: want exit 0, got %s", r)
	}
	p.sync(t)
	mustExec(t, conn, "DELETE FROM public.nopk WHERE a = 2")
	p.sync(t)
	db := lakedb.DuckDB(t)
	rows := readTable(t, db, lakeTable(p.lakeDir, "public", "nopk"), "CAST(a AS VARCHAR) AS a", "b")
	checkPositions(t, rows)
	var got []string
	for _, r := range rows {
		got = append(got, r.val("_op")+" "+r.val("a")+" "+r.val("b"))
	}
	if len(got) == 3 && got[0] > got[1] {
		got[0], got[1] = got[1], got[0]
	}
	if strings.Join(got, ", ") != "r 1 one, r 2 two, d 2 two" {
		t.Errorf("lake rows of public.nopk: %q, want the two snapshot rows and a delete with the full old row", got)
	}
}
