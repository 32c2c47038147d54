package mysqle2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/e2e/testenv"
)

// TestNeverSnapshotSyncsCommitTheirStart: with `snapshot: never`, the first sync
// commits where it started although it delivers nothing, so rows written between
// that sync and the next ones are all delivered.
func TestNeverSnapshotSyncsCommitTheirStart(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2enever; CREATE TABLE e2enever.t (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2enever.t VALUES (1, 0, 'before')")
	p := newPipe(t, "e2e_never", "e2enever", false)
	p.snapshotOf = "never"
	p.write(t)
	p.sync(t) // nothing to deliver: only its starting point is committed
	for i, q := range []string{
		"INSERT INTO e2enever.t VALUES (2, 0, 'a'), (3, 0, 'b')",
		"INSERT INTO e2enever.t VALUES (4, 0, 'c'); UPDATE e2enever.t SET n = 5 WHERE id = 2",
		"INSERT INTO e2enever.t VALUES (5, 0, 'd'); DELETE FROM e2enever.t WHERE id = 3",
	} {
		mustExec(t, db, q)
		if r := p.sync(t); i == 0 && !strings.Contains(r.stderr, "streaming binlog") {
			t.Errorf("sync %d did not stream:\n%s", i+2, r)
		}
	}
	lake := lakeRows(t, p.localLake(t), "e2enever", "t", "CAST(id AS VARCHAR) AS id", "CAST(n AS VARCHAR) AS n", "s")
	checkPositions(t, lake)
	if len(lake) != 6 {
		t.Errorf("lake has %d records, want 6 (4 inserts, 1 update, 1 delete, no snapshot row): %v", len(lake), lake)
	}
	// Row 1 predates the first run: snapshot: never does not deliver it.
	got := rebuild(lake, "id", "n", "s")
	want := sourceRows(t, db, "SELECT CAST(id AS CHAR) AS id, CAST(n AS CHAR) AS n, s FROM e2enever.t WHERE id > 1", "id", "n", "s")
	compareLines(t, "e2enever.t", got, want)
}

// currentBinlog is the file MariaDB writes now.
func currentBinlog(t *testing.T, db *sql.DB) string {
	t.Helper()
	var file, pos, doDB, ignoreDB string
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestPurgedBinlogStopsWithTheFix: the binlog file the committed position resumes in
// is purged while connectd is down; the next sync fails naming the file and the
// reset command instead of streaming from somewhere else, and after the reset a
// sync brings the lake back to the source.
func TestPurgedBinlogStopsWithTheFix(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2epurge; CREATE TABLE e2epurge.t (id int PRIMARY KEY, n int, s varchar(20))")
	seed(t, db, "e2epurge.t", 100)
	p := newPipe(t, "e2e_purge", "e2epurge", false)
	p.sync(t)
	mustExec(t, db, "INSERT INTO e2epurge.t VALUES (101, 1, 'streamed')")
	p.sync(t) // a stream position in the current file is committed
	gone := currentBinlog(t, db)
	mustExec(t, db, "INSERT INTO e2epurge.t VALUES (102, 1, 'lost?'); UPDATE e2epurge.t SET n = 7 WHERE id = 5")
	mustExec(t, db, "FLUSH LOGS")
	mustExec(t, db, "INSERT INTO e2epurge.t VALUES (103, 1, 'after')")
	purgeTo(t, db, currentBinlog(t, db), gone)

	r := connectd(t, 60*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "binlog "+gone) || !strings.Contains(r.stderr, "no longer on the server") ||
		!strings.Contains(r.stderr, "connectd offsets reset e2e_purge") {
		t.Fatalf("sync after the purge: want a failure naming %s and `connectd offsets reset e2e_purge`, got %s", gone, r)
	}
	t.Logf("sync after the purge: %s", lastLine(r.stderr, "no longer on the server"))
	if r := connectd(t, 30*time.Second, "offsets", "reset", "-c", p.config, "e2e_purge"); r.code != 0 {
		t.Fatalf("offsets reset: %s", r)
	}
	p.sync(t)
	lake := lakeRows(t, p.localLake(t), "e2epurge", "t", "CAST(id AS VARCHAR) AS id", "CAST(n AS VARCHAR) AS n", "s")
	got := rebuild(lake, "id", "n", "s")
	want := sourceRows(t, db, "SELECT CAST(id AS CHAR) AS id, CAST(n AS CHAR) AS n, s FROM e2epurge.t", "id", "n", "s")
	compareLines(t, "e2epurge.t after the reset", got, want)
}

// TestOffsetsOnAnotherServerStop: offsets committed against one MariaDB, then the
// config pointed at another server whose binlog has the same file names but not
// the GTIDs the position follows: the sync fails naming the GTIDs and the reset
// command, and delivers nothing.
func TestOffsetsOnAnotherServerStop(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2eother; CREATE TABLE e2eother.t (id int PRIMARY KEY, n int, s varchar(20))")
	// A sequence number the other, fresh server cannot have reached.
	mustExec(t, db, "SET SESSION gtid_seq_no = 900000; INSERT INTO e2eother.t VALUES (1, 0, 'a')")
	p := newPipe(t, "e2e_other", "e2eother", false)
	p.sync(t)
	mustExec(t, db, "INSERT INTO e2eother.t VALUES (2, 0, 'b')")
	p.sync(t)
	file := currentBinlog(t, db)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	other, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{ExtraConf: map[string]string{"binlog_row_metadata": "FULL"}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	odb := openDBAt(t, other.DSN)
	mustExec(t, odb, "CREATE DATABASE e2eother; CREATE TABLE e2eother.t (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2eother.t VALUES (3, 0, 'c')")
	for currentBinlog(t, odb) < file {
		mustExec(t, odb, "INSERT INTO e2eother.t SELECT MAX(id) + 1, 0, 'pad' FROM e2eother.t; FLUSH LOGS")
	}
	cfg, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(string(cfg), fmt.Sprintf("127.0.0.1:%d/", maria.Port), fmt.Sprintf("127.0.0.1:%d/", other.Port), 1)
	if err := os.WriteFile(p.config, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(lakeRows(t, p.localLake(t), "e2eother", "t", "CAST(id AS VARCHAR) AS id"))
	r := connectd(t, 60*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "0-1-900000") || !strings.Contains(r.stderr, "gtid_binlog_state") ||
		!strings.Contains(r.stderr, "connectd offsets reset e2e_other") {
		t.Fatalf("sync against another server: want a failure naming the GTIDs and `connectd offsets reset e2e_other`, got %s", r)
	}
	t.Logf("sync against another server: %s", lastLine(r.stderr, "gtid_binlog_state"))
	if after := len(lakeRows(t, p.localLake(t), "e2eother", "t", "CAST(id AS VARCHAR) AS id")); after != before {
		t.Errorf("the failed sync changed the lake: %d records, was %d", after, before)
	}
}

// purgeTo purges the binlogs before file until gone is no longer listed: MariaDB
// keeps a file until InnoDB's binlog checkpoint has moved past it, with a note only.
func purgeTo(t *testing.T, db *sql.DB, file, gone string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mustExec(t, db, "PURGE BINARY LOGS TO '"+file+"'")
		var name, size string
		rows, err := db.Query("SHOW BINARY LOGS")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for rows.Next() {
			if err := rows.Scan(&name, &size); err != nil {
				t.Fatal(err)
			}
			found = found || name == gone
		}
		rows.Close()
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still listed after PURGE BINARY LOGS TO '%s'", gone, file)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// openDBAt connects to another server as root.
func openDBAt(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// lastLine is the last line of s containing sub.
func lastLine(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}
