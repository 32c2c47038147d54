package testenv

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestStartScriptsStartAndStopEveryServer runs e2e/scripts the way the demo and the
// benchmarks do: start all three servers under one folder, use them, stop them all.
func TestStartScriptsStartAndStopEveryServer(t *testing.T) {
	NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	scripts, err := filepath.Abs("../../e2e/scripts")
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) map[string]string {
		t.Helper()
		out, err := exec.CommandContext(ctx, filepath.Join(scripts, name), args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("%s: %v\n%s", name, err, ee.Stderr)
			}
			t.Fatalf("%s: %v", name, err)
		}
		vars := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				vars[k] = v
			}
		}
		return vars
	}
	defer exec.Command(filepath.Join(scripts, "stop-all.sh"), dir, "--clean").Run()

	pg := run("pg-start.sh", dir)
	s3 := run("s3-start.sh", dir, "lake")
	my := run("mariadb-start.sh", dir)

	conn, err := pgx.Connect(ctx, pg["PG_DSN"])
	if err != nil {
		t.Fatalf("connect %s: %v", pg["PG_DSN"], err)
	}
	var walLevel string
	err = conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel)
	conn.Close(ctx)
	if err != nil || walLevel != "logical" {
		t.Errorf("wal_level = %q, %v; want logical", walLevel, err)
	}

	client := (&S3{Endpoint: s3["S3_ENDPOINT"], AccessKey: s3["S3_ACCESS_KEY"], SecretKey: s3["S3_SECRET_KEY"], Region: s3["S3_REGION"]}).Client()
	if _, err := client.HeadBucket(ctx, headBucket("lake")); err != nil {
		t.Errorf("bucket lake made by s3-start.sh: %v", err)
	}

	out, err := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1",
		"-P", my["MARIADB_PORT"], "-u", "root", "--batch", "--skip-column-names", "-e", "SELECT @@binlog_format").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ROW" {
		t.Errorf("mariadb binlog_format: %q, %v", out, err)
	}

	pids := []string{pg["PG_PID"], s3["S3_PID"], my["MARIADB_PID"]}
	run("stop-all.sh", dir, "--clean")
	for _, p := range pids {
		var pid int
		if _, err := fmtSscan(p, &pid); err != nil {
			t.Fatalf("pid %q: %v", p, err)
		}
		if processAlive(pid) {
			t.Errorf("process %d alive after stop-all.sh", pid)
		}
	}
}
