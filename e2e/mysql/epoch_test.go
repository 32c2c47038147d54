package mysqle2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestResetStartsANewEpochAfterEverythingInTheLake: snapshot and stream from
// MariaDB into an s3:// lake, `offsets reset` with changes before and after it, sync
// again, more changes, then two resets in a row. Each reset's full copy sorts after
// everything already in the lake: rebuilt by latest _pos per key the lake equals the
// source, and no _pos repeats across epochs.
func TestResetStartsANewEpochAfterEverythingInTheLake(t *testing.T) {
	db := openDB(t)
	mustExec(t, db, "CREATE DATABASE e2eepoch; CREATE TABLE e2eepoch.t (id int PRIMARY KEY, n int, s varchar(40))")
	seed(t, db, "e2eepoch.t", 30)
	p := newPipe(t, "e2e_epoch", "e2eepoch", true)
	read := func() []row {
		return lakeRows(t, p.localLake(t), "e2eepoch", "t", "CAST(id AS VARCHAR) AS id", "CAST(n AS VARCHAR) AS n", "s")
	}
	source := func() []string {
		return sourceRows(t, db, "SELECT CAST(id AS CHAR) AS id, CAST(n AS CHAR) AS n, s FROM e2eepoch.t", "id", "n", "s")
	}
	reconcile := func(step string, epoch int) []row {
		t.Helper()
		rows := read()
		checkPositions(t, rows)
		for i := 1; i < len(rows); i++ {
			if rows[i]["_pos"] <= rows[i-1]["_pos"] {
				t.Errorf("%s: _pos %s not after %s", step, rows[i]["_pos"], rows[i-1]["_pos"])
			}
		}
		// The latest epoch is a full copy: rebuilt alone it is the source exactly.
		compareLines(t, step+" (latest epoch)", rebuild(inEpoch(rows, epoch), "id", "n", "s"), source())
		if t.Failed() {
			t.FailNow()
		}
		return rows
	}

	p.sync(t)
	mustExec(t, db, "INSERT INTO e2eepoch.t VALUES (31, 31, 'new'), (32, 32, 'new')")
	mustExec(t, db, "UPDATE e2eepoch.t SET n = id WHERE id BETWEEN 5 AND 9")
	mustExec(t, db, "DELETE FROM e2eepoch.t WHERE id IN (1, 2)")
	p.sync(t)
	rows := reconcile("epoch 0", 0)
	compareLines(t, "epoch 0 (whole lake)", rebuild(rows, "id", "n", "s"), source())

	// Changed after the last sync and before the reset: never streamed, so only the
	// new snapshot carries it, and it must win over the older rows of the same key.
	mustExec(t, db, "UPDATE e2eepoch.t SET s = 'before reset' WHERE id IN (10, 11)")
	reset(t, p, 1)
	mustExec(t, db, "UPDATE e2eepoch.t SET s = 'after reset' WHERE id IN (11, 12)")
	p.sync(t)
	rows = reconcile("epoch 1 snapshot", 1)
	for _, r := range inEpoch(rows, 1) {
		if r["_op"] != "r" {
			t.Errorf("epoch 1 before any change holds %v", r)
		}
	}
	// Nothing was deleted between the epochs, so the whole lake rebuilds too.
	compareLines(t, "epoch 1 snapshot (whole lake)", rebuild(rows, "id", "n", "s"), source())

	mustExec(t, db, "UPDATE e2eepoch.t SET n = 7 WHERE id BETWEEN 20 AND 25")
	mustExec(t, db, "DELETE FROM e2eepoch.t WHERE id IN (3, 31)")
	mustExec(t, db, "INSERT INTO e2eepoch.t VALUES (33, 33, 'new')")
	p.sync(t)
	rows = reconcile("epoch 1 stream", 1)
	compareLines(t, "epoch 1 stream (whole lake)", rebuild(rows, "id", "n", "s"), source())
	ops := map[string]int{}
	for _, r := range inEpoch(rows, 1) {
		ops[r["_op"]]++
	}
	if ops["u"] != 6 || ops["d"] != 2 || ops["c"] != 1 {
		t.Errorf("epoch 1 streamed %v, want 6 u, 2 d, 1 c", ops)
	}

	reset(t, p, 2)
	reset(t, p, 3)
	mustExec(t, db, "UPDATE e2eepoch.t SET s = 'epoch 3' WHERE id = 4")
	p.sync(t)
	rows = reconcile("epoch 3", 3)
	compareLines(t, "epoch 3 (whole lake)", rebuild(rows, "id", "n", "s"), source())
	if n := len(inEpoch(rows, 2)); n != 0 {
		t.Errorf("epoch 2, reset again before any run, holds %d rows", n)
	}
	show := connectd(t, 30*time.Second, "offsets", "show", "-c", p.config, p.name)
	if show.code != 0 || !strings.Contains(show.stdout, "reset epoch 3, ") {
		t.Errorf("offsets show after the epoch-3 sync: %s", show)
	}
}

// reset runs `connectd offsets reset` and checks the epoch it reports and shows.
func reset(t *testing.T, p *pipe, epoch int) {
	t.Helper()
	r := connectd(t, 30*time.Second, "offsets", "reset", "-c", p.config, p.name)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("in reset epoch %d,", epoch)) {
		t.Fatalf("offsets reset to epoch %d: %s", epoch, r)
	}
	show := connectd(t, 30*time.Second, "offsets", "show", "-c", p.config, p.name)
	if want := fmt.Sprintf("reset epoch %d, start of the epoch", epoch); show.code != 0 || !strings.Contains(show.stdout, want) {
		t.Fatalf("offsets show after a reset: want %q in %s", want, show)
	}
}

// inEpoch keeps the rows whose _pos (hex) belongs to the reset epoch (0: never
// reset): epoch n >= 1 prefixes positions with ff and n as 4 bytes (pipeline/epoch.go).
func inEpoch(rows []row, epoch int) []row {
	var out []row
	for _, r := range rows {
		e := 0
		if pos := r["_pos"]; strings.HasPrefix(pos, "ff") && len(pos) >= 10 {
			if _, err := fmt.Sscanf(pos[2:10], "%x", &e); err != nil {
				e = -1
			}
		}
		if e == epoch {
			out = append(out, r)
		}
	}
	return out
}
