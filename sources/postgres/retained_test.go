package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/jackc/pglogrepl"
)

// TestIdleSourceSlotFollowsOtherDatabasesWrites is the idle-source protection
// (README.md, "Retained WAL"): the connector's tables see no writes while another
// database of the server writes a lot of WAL; the slot must still confirm past it,
// and release it, and the retained figure the status receives must stay below what
// was written.
func TestIdleSourceSlotFollowsOtherDatabasesWrites(t *testing.T) {
	conn := dbConn(t, pgServer(t).DSN)
	exec(t, conn, `CREATE TABLE idle_t (id int PRIMARY KEY)`, `CREATE DATABASE idle_other`)
	other := dbConn(t, strings.Replace(pgServer(t).DSN, "/postgres?", "/idle_other?", 1))
	exec(t, other, `CREATE TABLE busy (id int, pad text)`)

	p := params(t, "idle", pgServer(t).DSN, []string{"public.idle_t"}, config.SnapshotNever, connector.ModeStream)
	p.Config.Config.(*Config).Heartbeat = 200 * time.Millisecond
	src := openSource(t, p)
	src.retainedEvery = 100 * time.Millisecond
	r := startRead(t, src, nil)
	r.waitPhase(t, "streaming")

	lsn := func() pglogrepl.LSN {
		var s string
		if err := conn.QueryRow(testCtx(t), `SELECT pg_current_wal_lsn()::text`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		l, err := pglogrepl.ParseLSN(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	w0 := lsn()
	for i := 0; i < 8; i++ {
		exec(t, other, `INSERT INTO busy SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`)
	}
	// A checkpoint logs the running transactions, a point the slot's restart_lsn
	// can move to once it has confirmed past it.
	exec(t, conn, `CHECKPOINT`)
	w1 := lsn()
	written := int64(w1 - w0)
	t.Logf("the other database wrote %d bytes of WAL", written)

	var restart, confirmed pglogrepl.LSN
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var rs, cs string
		if err := conn.QueryRow(testCtx(t), `SELECT restart_lsn::text, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'connectd_idle'`).Scan(&rs, &cs); err != nil {
			t.Fatal(err)
		}
		restart, _ = pglogrepl.ParseLSN(rs)
		confirmed, _ = pglogrepl.ParseLSN(cs)
		if confirmed >= w1 && restart >= w1-pglogrepl.LSN(written/4) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot stuck: restart_lsn %s confirmed_flush_lsn %s; WAL written from %s to %s", restart, confirmed, w0, w1)
		}
	}
	// The status must have seen a figure well below what was written.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		figs := src.status.(*testStatus).retainedFigures()
		if len(figs) > 0 && figs[len(figs)-1] < written/2 {
			t.Logf("retained WAL reported: %d bytes (of %d written)", figs[len(figs)-1], written)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retained WAL reported %v, want one below %d", figs, written/2)
		}
	}
	if n := len(r.snapshot()); n != 0 {
		t.Fatalf("the idle source emitted %d records", n)
	}
}
