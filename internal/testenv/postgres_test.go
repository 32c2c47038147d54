package testenv

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresStartQueryRestartKillStop(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	pg, err := StartPostgres(ctx, PostgresOptions{ExtraConf: map[string]string{"application_name": "'testenv'"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartPostgres took %s (port %d, dir %s)", time.Since(start), pg.Port, pg.Dir)
	defer pg.Stop()

	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var walLevel, appName string
	if err := conn.QueryRow(ctx, "SELECT current_setting('wal_level'), current_setting('application_name')").Scan(&walLevel, &appName); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if walLevel != "logical" {
		t.Errorf("wal_level = %q, want logical", walLevel)
	}
	// Several statements in one call, as test setup scripts do.
	if err := pg.Exec(ctx, "CREATE TABLE t (id int primary key, v text); CREATE PUBLICATION p FOR TABLE t"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "INSERT INTO t VALUES ($1, $2)", 1, "one"); err != nil {
		t.Fatal(err)
	}
	if err := pg.Exec(ctx, "SELECT pg_create_logical_replication_slot('s1', 'pgoutput')"); err != nil {
		t.Fatal(err)
	}

	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := countRows(ctx, t, pg.DSN); got != 1 {
		t.Fatalf("after restart: %d rows, want 1", got)
	}

	pid := pg.postmasterPID()
	pg.Kill()
	if processAlive(pid) {
		t.Fatalf("postmaster %d alive after Kill", pid)
	}
	if err := pg.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("server answers after Kill")
	}
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := countRows(ctx, t, pg.DSN); got != 1 {
		t.Fatalf("after kill and restart: %d rows, want 1", got)
	}

	pid = pg.postmasterPID()
	kids := childPIDs(pid)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(kids, pid) {
		if processAlive(p) {
			t.Errorf("process %d alive after Stop", p)
		}
	}
	if _, err := os.Stat(pg.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s still there after Stop: %v", pg.Dir, err)
	}
}

func TestPostgresWalLevelOption(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, PostgresOptions{WalLevel: "replica"})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		t.Fatal(err)
	}
	if walLevel != "replica" {
		t.Errorf("wal_level = %q, want replica", walLevel)
	}
}

func TestPostgresBadConfigFailsWithLogAndCleansUp(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, PostgresOptions{ExtraConf: map[string]string{"no_such_setting_xyz": "1"}})
	if err == nil {
		pg.Stop()
		t.Fatal("StartPostgres with an unknown setting succeeded")
	}
	if !containsAll(err.Error(), "no_such_setting_xyz") {
		t.Errorf("error does not show the server log: %v", err)
	}
}

func countRows(ctx context.Context, t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPostgresCreateDatabase(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg, err := StartPostgres(ctx, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	// A name that needs quoting: the DSN and the statement must both carry it.
	dsn, err := pg.CreateDatabase(ctx, "Shop_1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var name string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "Shop_1" {
		t.Errorf("DSN %s connects to %q, want Shop_1", dsn, name)
	}
	if _, err := pg.CreateDatabase(ctx, "Shop_1"); err == nil {
		t.Error("creating the same database twice: want an error")
	}
}
