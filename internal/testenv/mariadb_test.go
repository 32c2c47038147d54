package testenv

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMariaDBStartQueryKillRestartStop(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	db, err := StartMariaDB(ctx, MariaDBOptions{ExtraConf: map[string]string{"max_connections": "77"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("StartMariaDB took %s (port %d, dir %s)", time.Since(start), db.Port, db.Dir)
	defer db.Stop()

	out, err := db.Query(ctx, "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id, @@gtid_strict_mode, @@max_connections")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out), "1\tROW\tFULL\t1\t1\t77"; got != want {
		t.Errorf("settings = %q, want %q", got, want)
	}
	if err := db.Exec(ctx, "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1),(2)"); err != nil {
		t.Fatal(err)
	}

	db.Kill()
	if _, err := db.Query(ctx, "SELECT 1"); err == nil {
		t.Fatal("server answers after Kill")
	}
	if err := db.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	out, err = db.Query(ctx, "SELECT count(*) FROM shop.t")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "2" {
		t.Errorf("after kill and restart: %q rows, want 2", out)
	}

	pid := db.proc.pid()
	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("mariadbd %d alive after Stop", pid)
	}
	if _, err := os.Stat(db.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s still there after Stop: %v", db.Dir, err)
	}
}
