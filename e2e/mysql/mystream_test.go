package mysqle2e

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/record"
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
	moved := strings.Replace(string(cfg), fmt.Sprintf("127.0.0.1:%d/", mariaServer(t).Port), fmt.Sprintf("127.0.0.1:%d/", other.Port), 1)
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

// binlogEnd is where MariaDB writes its next event: the start of the next
// transaction when nothing else writes.
func binlogEnd(t *testing.T, db *sql.DB) uint64 {
	t.Helper()
	var file, doDB, ignoreDB string
	var pos uint64
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	return pos
}

// resumeOffset is the transaction start a stream position resumes at
// (sources/mysql/position.go: 0x02 | file u32 | offset u64 | seq u32 | resume offset u64 ...).
func resumeOffset(p record.Position) (uint64, bool) {
	if len(p) < 25 || p[0] != 0x02 {
		return 0, false
	}
	return binary.BigEndian.Uint64(p[17:25]), true
}

// killWhenResumingAt runs `connectd run` and kills it with SIGKILL as soon as the
// committed position resumes at the transaction starting at offset, that is, once
// part of that transaction's records is committed. It returns that position.
func killWhenResumingAt(t *testing.T, p *pipe, offset uint64) record.Position {
	t.Helper()
	store, err := offsets.NewFile(p.offsets)
	if err != nil {
		t.Fatal(err)
	}
	d := p.start(t)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if pos, err := store.Load(context.Background(), p.name); err == nil {
			if off, ok := resumeOffset(pos); ok && off == offset {
				d.kill()
				<-d.proc.Done()
				return pos
			}
		}
		select {
		case <-d.proc.Done():
			t.Fatalf("connectd run exited: %v\n%s", d.proc.Err(), tail(d.stderr.String(), 40))
		case <-time.After(time.Millisecond):
		}
	}
	t.Fatalf("no committed position inside the transaction at offset %d\n%s", offset, tail(d.stderr.String(), 40))
	return nil
}

// txnShape checks the stream records of the lake (every op but r): one transaction
// id, one commit time, and the committed position killedAt before the last of them
// (the kill fell inside the transaction's delivery).
func txnShape(t *testing.T, p *pipe, ns string, killedAt record.Position) {
	t.Helper()
	db := lakeDuck(t)
	rows := query(t, db, "SELECT COUNT(*) AS n, COUNT(DISTINCT _txid) AS txids, COUNT(DISTINCT _commit_ts) AS times, COUNT(*) FILTER (WHERE COALESCE(_txid, '') = '') AS untagged, MIN(_txid) AS txid, MAX(_pos) AS last FROM "+
		treeOf(p.localLake(t), ns, "t")+" WHERE _op <> 'r'")
	r := rows[0]
	t.Logf("stream records %s, transaction ids %s (%s), without one %s, commit times %s", r["n"], r["txids"], r["txid"], r["untagged"], r["times"])
	if r["txids"] != "1" || r["untagged"] != "0" || r["times"] != "1" {
		t.Errorf("the transaction's records carry %s transaction ids (%q), %s none, and %s commit times: want one id on every record and one time", r["txids"], r["txid"], r["untagged"], r["times"])
	}
	if killedAt != nil && killedAt.String() >= r["last"] {
		t.Errorf("the kill did not fall inside the transaction: committed %s, last record %s", killedAt, r["last"])
	}
}

// TestSavepointTransactionKeepsOneTxidAcrossAKill: a transaction with SAVEPOINT,
// ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT, delivered in many batches; connectd
// is killed after part of it is committed and resumes inside it. Every record of it
// has one _txid and one commit time, and the lake equals the table.
func TestSavepointTransactionKeepsOneTxidAcrossAKill(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2esave; CREATE TABLE e2esave.t (id int PRIMARY KEY, n int, s varchar(20))")
	seed(t, db, "e2esave.t", 1000)
	p := newPipe(t, "e2e_save", "e2esave", false)
	p.flush = "{rows: 700, bytes: 16MiB, interval: 200ms}"
	p.write(t)
	p.sync(t)
	start := binlogEnd(t, db)
	mustExec(t, db, `BEGIN;
INSERT INTO e2esave.t SELECT seq, 1, 'first' FROM e2esave.seq_1001_to_11000;
SAVEPOINT a;
INSERT INTO e2esave.t SELECT seq, 2, 'undone' FROM e2esave.seq_11001_to_16000;
UPDATE e2esave.t SET n = 99 WHERE id <= 500;
ROLLBACK TO SAVEPOINT a;
UPDATE e2esave.t SET n = n + 10, s = 'after a' WHERE id BETWEEN 200 AND 2200;
SAVEPOINT b;
DELETE FROM e2esave.t WHERE id BETWEEN 300 AND 400;
RELEASE SAVEPOINT b;
INSERT INTO e2esave.t SELECT seq, 3, 'last' FROM e2esave.seq_20001_to_30000;
COMMIT`)
	killedAt := killWhenResumingAt(t, p, start)
	p.sync(t)
	checkRebuild(t, db, p, "e2esave", "t")
	txnShape(t, p, "e2esave", killedAt)
}

// xaPrepare runs an XA transaction up to XA PREPARE on a connection of its own,
// then disconnects: the transaction stays prepared on the server.
func xaPrepare(t *testing.T, db *sql.DB, xid, body string) {
	t.Helper()
	conn := openDB(t)
	conn.SetMaxOpenConns(1)
	for _, q := range []string{"XA START '" + xid + "'", body, "XA END '" + xid + "'", "XA PREPARE '" + xid + "'"} {
		mustExec(t, conn, q)
	}
	conn.Close()
	for _, r := range query(t, db, "XA RECOVER") {
		if r["data"] == xid {
			return
		}
	}
	t.Fatalf("XA %s is not prepared after XA PREPARE", xid)
}

// xaFinish runs XA COMMIT or XA ROLLBACK, retrying while the server has not yet
// detached the prepared transaction from its closed session (XAER_NOTA).
func xaFinish(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	for i := 0; ; i++ {
		_, err := db.Exec(q)
		if err == nil {
			return
		}
		if i == 100 || !strings.Contains(err.Error(), "XAER_NOTA") {
			t.Fatalf("mariadb: %s: %v", q, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestXALandsOnlyAtXACommit: XA transactions are prepared (their rows are in the
// binlog from then), other transactions commit, a sync runs while they are still
// prepared and commits a position after them; then one is committed and one rolled
// back. The lake has the committed one's rows (with the XA COMMIT's transaction id),
// never the rolled-back one's, nothing before its XA COMMIT; then a large XA
// transaction is delivered with a kill in the middle.
func TestXALandsOnlyAtXACommit(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2exa; CREATE TABLE e2exa.t (id int PRIMARY KEY, n int, s varchar(20)); CREATE TABLE e2exa.u (id int PRIMARY KEY)")
	seed(t, db, "e2exa.t", 10)
	p := newPipe(t, "e2e_xa", "e2exa", false)
	p.flush = "{rows: 700, bytes: 16MiB, interval: 200ms}"
	p.write(t)
	p.sync(t)
	xaPrepare(t, db, "keep", "INSERT INTO e2exa.t VALUES (100, 1, 'xa keep'), (101, 1, 'xa keep'); UPDATE e2exa.t SET n = 5, s = 'xa keep' WHERE id = 1")
	xaPrepare(t, db, "drop", "INSERT INTO e2exa.t VALUES (200, 1, 'xa drop'); DELETE FROM e2exa.t WHERE id = 2")
	mustExec(t, db, "INSERT INTO e2exa.t VALUES (30, 0, 'plain')")
	p.sync(t) // commits the plain insert's position, after both XA PREPAREs
	ids := func() string {
		var got []string
		for _, r := range lakeRows(t, p.localLake(t), "e2exa", "t", "CAST(id AS VARCHAR) AS id") {
			if r["_op"] != "r" {
				got = append(got, r["_op"]+r["id"])
			}
		}
		return strings.Join(got, " ")
	}
	if got := ids(); got != "c30" {
		t.Fatalf("stream records while the XA transactions are prepared: %q, want only c30", got)
	}
	xaFinish(t, db, "XA ROLLBACK 'drop'")
	mustExec(t, db, "INSERT INTO e2exa.t VALUES (31, 0, 'plain')")
	xaFinish(t, db, "XA COMMIT 'keep'")
	p.sync(t) // resumes after c30, yet must deliver what XA 'keep' prepared before it
	if got, want := ids(), "c30 c31 c100 c101 u1"; got != want {
		t.Errorf("stream records: %q, want %q", got, want)
	}
	checkRebuild(t, db, p, "e2exa", "t")
	var commitGTID string
	if err := db.QueryRow("SELECT @@gtid_binlog_pos").Scan(&commitGTID); err != nil {
		t.Fatal(err)
	}
	txids := query(t, lakeDuck(t), "SELECT DISTINCT _txid FROM "+treeOf(p.localLake(t), "e2exa", "t")+" WHERE CAST(id AS INT) IN (100, 101, 1) AND _op <> 'r'")
	if len(txids) != 1 || txids[0]["_txid"] != commitGTID {
		t.Errorf("XA 'keep' records carry transaction ids %v, want the XA COMMIT's %s", txids, commitGTID)
	}

	// A large XA transaction, killed while its records are being delivered.
	mustExec(t, db, "DELETE FROM e2exa.t WHERE id > 1000")
	p.sync(t)
	start := binlogEnd(t, db)
	xaPrepare(t, db, "big", "INSERT INTO e2exa.t SELECT seq, 7, 'xa big' FROM e2exa.seq_1001_to_21000; UPDATE e2exa.t SET n = n + 1 WHERE id <= 1500")
	mustExec(t, db, "INSERT INTO e2exa.u VALUES (1)") // commits while 'big' is prepared
	xaFinish(t, db, "XA COMMIT 'big'")
	killedAt := killWhenResumingAt(t, p, start)
	p.sync(t)
	checkRebuild(t, db, p, "e2exa", "t")
	if off, _ := resumeOffset(killedAt); off != start {
		t.Errorf("the kill did not fall while the XA transaction was pending or delivered")
	}
}

// setTables rewrites the connector's tables patterns.
func setTables(t *testing.T, p *pipe, patterns string) {
	t.Helper()
	cfg, err := os.ReadFile(p.config)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("tables: [\"%s.*\"]", p.db)
	if !strings.Contains(string(cfg), old) {
		t.Fatalf("config has no %s", old)
	}
	if err := os.WriteFile(p.config, []byte(strings.Replace(string(cfg), old, "tables: "+patterns, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTablesCreatedLaterAreStreamedFromTheirCreate: tables matching the pattern are
// created while `connectd run` streams (one by CREATE TABLE with rows inserted right
// after it, one by CREATE TABLE ... SELECT), connectd is killed, more rows and a table
// are created while it is down, and a sync delivers the rest: every table rebuilt
// from the lake equals MariaDB's. A table renamed into the pattern then stops the
// connector, naming the table and the reset.
func TestTablesCreatedLaterAreStreamedFromTheirCreate(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE e2enew;
CREATE TABLE e2enew.line_a (id int PRIMARY KEY, n int, s varchar(20));
CREATE TABLE e2enew.staging (id int PRIMARY KEY, n int, s varchar(20))`)
	seed(t, db, "e2enew.line_a", 100)
	seed(t, db, "e2enew.staging", 50)
	p := newPipe(t, "e2e_new", "e2enew", false)
	p.flush = "{rows: 300, bytes: 16MiB, interval: 200ms}"
	p.write(t)
	setTables(t, p, `["e2enew.line_*"]`)
	p.sync(t)

	d := p.start(t)
	time.Sleep(time.Second)
	mustExec(t, db, "CREATE TABLE e2enew.line_b (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2enew.line_b VALUES (1, 1, 'right after')")
	for i := 0; i < 10; i++ {
		mustExec(t, db, fmt.Sprintf("INSERT INTO e2enew.line_b SELECT seq, %d, 'b' FROM e2enew.seq_%d_to_%d", i, 2+i*200, 201+i*200))
	}
	mustExec(t, db, "CREATE TABLE e2enew.line_c (PRIMARY KEY (id)) SELECT * FROM e2enew.staging; UPDATE e2enew.line_c SET n = 9 WHERE id < 10")
	mustExec(t, db, "UPDATE e2enew.line_b SET s = 'updated' WHERE id % 7 = 0; DELETE FROM e2enew.line_b WHERE id % 11 = 0")
	time.Sleep(300 * time.Millisecond)
	d.kill()
	mustExec(t, db, "CREATE TABLE e2enew.line_d (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2enew.line_d VALUES (1, 0, 'd'), (2, 0, 'd'); INSERT INTO e2enew.line_b VALUES (5000, 0, 'while down'); INSERT INTO e2enew.line_c VALUES (1000, 0, 'while down')")
	p.sync(t)
	for _, table := range []string{"line_a", "line_b", "line_c", "line_d"} {
		checkRebuild(t, db, p, "e2enew", table)
	}
	if lake := lakeRows(t, p.localLake(t), "e2enew", "staging"); len(lake) != 0 {
		t.Errorf("the unselected table staging has %d records in the lake", len(lake))
	}

	mustExec(t, db, "RENAME TABLE e2enew.staging TO e2enew.line_s")
	r := connectd(t, 60*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "e2enew.line_s") || !strings.Contains(r.stderr, "connectd offsets reset e2e_new") {
		t.Fatalf("sync after a table was renamed into the pattern: want a failure naming it and the reset, got %s", r)
	}
	t.Logf("sync after the rename: %s", lastLine(r.stderr, "line_s"))
}

// TestPatternsNowSelectingAnOldTableStop: the tables patterns are widened to a table
// that existed all along; the next sync fails naming it (its rows were never read)
// instead of streaming only its changes from now on.
func TestPatternsNowSelectingAnOldTableStop(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE e2epat;
CREATE TABLE e2epat.t (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2epat.t VALUES (1, 0, 'a');
CREATE TABLE e2epat.other (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2epat.other VALUES (1, 0, 'old')`)
	p := newPipe(t, "e2e_pat", "e2epat", false)
	setTables(t, p, `["e2epat.t"]`)
	p.sync(t)
	mustExec(t, db, "INSERT INTO e2epat.t VALUES (2, 0, 'b'); CREATE TABLE e2epat.later (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2epat.later VALUES (1, 0, 'x')")
	p.sync(t)
	p.write(t) // tables: e2epat.*: selects other (old) and later (created after the position)
	r := connectd(t, 60*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "e2epat.other") || strings.Contains(r.stderr, "e2epat.later,") ||
		!strings.Contains(r.stderr, "connectd offsets reset e2e_pat") {
		t.Fatalf("sync with widened patterns: want a failure naming e2epat.other (only) and the reset, got %s", r)
	}
	t.Logf("sync with widened patterns: %s", lastLine(r.stderr, "e2epat.other"))
	checkRebuild(t, db, p, "e2epat", "t")

	// A database the patterns did not cover: its tables have no schema history.
	mustExec(t, db, "CREATE DATABASE e2epat2; CREATE TABLE e2epat2.x (id int PRIMARY KEY); INSERT INTO e2epat2.x VALUES (1)")
	setTables(t, p, `["e2epat.t", "e2epat2.*"]`)
	r = connectd(t, 60*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "e2epat2.x") {
		t.Fatalf("sync with a newly covered database: want a failure naming e2epat2.x, got %s", r)
	}
}

// TestResumedSnapshotDeliversNoRowTwice: `connectd run` is killed inside the
// snapshot of two tables while a workload inserts, updates and deletes in both; the
// resumed snapshot leaves out the rows the binlog changed since the snapshot's
// point (the stream delivers them), so no key arrives both as 'r' and as 'c', none
// twice as 'r', and the lake rebuilt equals the tables.
func TestResumedSnapshotDeliversNoRowTwice(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2eresume; CREATE TABLE e2eresume.t (id int PRIMARY KEY, n int, s varchar(20)); CREATE TABLE e2eresume.u (id int PRIMARY KEY, n int, s varchar(20))")
	seed(t, db, "e2eresume.t", 120000)
	seed(t, db, "e2eresume.u", 60000)
	p := newPipe(t, "e2e_resume", "e2eresume", false)
	p.flush = "{rows: 20000, bytes: 16MiB, interval: 300ms}" // commits inside the snapshot
	p.write(t)
	wt := &workload{db: db, table: "e2eresume.t", rnd: rand.New(rand.NewSource(3)), next: 120000}
	wu := &workload{db: db, table: "e2eresume.u", rnd: rand.New(rand.NewSource(4)), next: 60000}
	wt.run()
	wu.run()
	defer wt.stop(t)
	defer wu.stop(t)

	store, err := offsets.NewFile(p.offsets)
	if err != nil {
		t.Fatal(err)
	}
	d := p.start(t)
	deadline := time.Now().Add(90 * time.Second)
	for {
		pos, err := store.Load(context.Background(), p.name)
		if err == nil && len(pos) > 17 && pos[0] == 0x01 && pos[17] != 0xff {
			break // a committed position inside the snapshot
		}
		if time.Now().After(deadline) {
			t.Fatalf("no committed position inside the snapshot\n%s", tail(d.stderr.String(), 30))
		}
		time.Sleep(2 * time.Millisecond)
	}
	d.kill()
	time.Sleep(500 * time.Millisecond) // more changes between the snapshot's point and the resumed read
	d = p.start(t)
	deadline = time.Now().Add(90 * time.Second)
	for !strings.Contains(d.stderr.String(), "streaming binlog") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted run did not reach the stream\n%s", tail(d.stderr.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	wt.stop(t)
	wu.stop(t)
	d.proc.Signal(syscall.SIGTERM)
	<-d.proc.Done()
	if !strings.Contains(d.stderr.String(), "resuming the interrupted snapshot") {
		t.Errorf("the second run did not resume the snapshot:\n%s", tail(d.stderr.String(), 30))
	}
	t.Logf("resume: %s", lastLine(d.stderr.String(), "resuming the interrupted snapshot"))
	p.sync(t)
	for _, table := range []string{"t", "u"} {
		lake := checkRebuild(t, db, p, "e2eresume", table)
		ops := map[string]map[string]int{}
		for _, r := range lake {
			if ops[r["id"]] == nil {
				ops[r["id"]] = map[string]int{}
			}
			ops[r["id"]][r["_op"]]++
		}
		both, twice := 0, 0
		for _, o := range ops {
			if o["r"] > 0 && o["c"] > 0 {
				both++
			}
			if o["r"] > 1 {
				twice++
			}
		}
		t.Logf("%s: %d lake records, %d keys", table, len(lake), len(ops))
		if both > 0 || twice > 0 {
			t.Errorf("%s: %d keys arrived as 'r' and as 'c', %d as 'r' twice", table, both, twice)
		}
	}
}

// TestResumedSnapshotWithItsRemainingTablesDeselectedFinishes: the snapshot is
// killed while reading its first table, and the config then drops the second table
// from the patterns: the next sync finishes the snapshot without it (no position
// going backwards, no retry loop), streams, and the kept table reconciles.
func TestResumedSnapshotWithItsRemainingTablesDeselectedFinishes(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2edesel; CREATE TABLE e2edesel.a (id int PRIMARY KEY, n int, s varchar(20)); CREATE TABLE e2edesel.b (id int PRIMARY KEY, n int, s varchar(20))")
	seed(t, db, "e2edesel.a", 150000)
	seed(t, db, "e2edesel.b", 1000)
	p := newPipe(t, "e2e_desel", "e2edesel", false)
	p.flush = "{rows: 20000, bytes: 16MiB, interval: 300ms}"
	p.write(t)
	store, err := offsets.NewFile(p.offsets)
	if err != nil {
		t.Fatal(err)
	}
	d := p.start(t)
	deadline := time.Now().Add(90 * time.Second)
	for {
		pos, err := store.Load(context.Background(), p.name)
		if err == nil && len(pos) > 17 && pos[0] == 0x01 && pos[17] != 0xff && binary.BigEndian.Uint32(pos[5:9]) == 0 {
			break // inside table #0, a
		}
		if time.Now().After(deadline) {
			t.Fatalf("no committed position inside table a\n%s", tail(d.stderr.String(), 30))
		}
		time.Sleep(2 * time.Millisecond)
	}
	d.kill()
	setTables(t, p, `["e2edesel.a"]`)
	mustExec(t, db, "INSERT INTO e2edesel.a VALUES (200000, 1, 'after'); INSERT INTO e2edesel.b VALUES (200000, 1, 'after')")
	r := p.sync(t)
	if !strings.Contains(r.stderr, "no longer selected") {
		t.Errorf("the resumed snapshot did not say it leaves out the deselected table:\n%s", r)
	}
	mustExec(t, db, "UPDATE e2edesel.a SET n = 2 WHERE id = 200000")
	p.sync(t)
	checkRebuild(t, db, p, "e2edesel", "a")
	if lake := lakeRows(t, p.localLake(t), "e2edesel", "b"); len(lake) != 0 {
		t.Errorf("the deselected table has %d records in the lake", len(lake))
	}
}

// TestRenameFromAnUntrackedDatabaseStops: a table of a database no pattern covers is
// renamed into a selected database: the sync fails naming it and the reset instead of
// streaming it without the rows it had.
func TestRenameFromAnUntrackedDatabaseStops(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, `CREATE DATABASE e2erenx; CREATE TABLE e2erenx.t (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2erenx.t VALUES (1, 0, 'a');
CREATE DATABASE e2eoutside; CREATE TABLE e2eoutside.src (id int PRIMARY KEY, n int, s varchar(20)); INSERT INTO e2eoutside.src VALUES (1, 0, 'never read'), (2, 0, 'never read')`)
	p := newPipe(t, "e2e_renx", "e2erenx", false)
	p.sync(t)
	mustExec(t, db, "INSERT INTO e2erenx.t VALUES (2, 0, 'b'); RENAME TABLE e2eoutside.src TO e2erenx.moved; INSERT INTO e2erenx.moved VALUES (3, 0, 'after')")
	r := connectd(t, 60*time.Second, "sync", "-c", p.config)
	if r.code == 0 || !strings.Contains(r.stderr, "e2erenx.moved") || !strings.Contains(r.stderr, "connectd offsets reset e2e_renx") {
		t.Fatalf("sync after a rename from an untracked database: want a failure naming e2erenx.moved and the reset, got %s", r)
	}
	t.Logf("sync after the rename: %s", lastLine(r.stderr, "e2erenx.moved"))
	if lake := lakeRows(t, p.localLake(t), "e2erenx", "moved"); len(lake) != 0 {
		t.Errorf("the renamed table has %d records in the lake", len(lake))
	}
}
