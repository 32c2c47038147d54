package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
)

// scanRows scans table in snap into key -> fmt of the row, keyed like rowKey.
func scanRows(t *testing.T, snap connector.Snapshot, table string) map[string]string {
	t.Helper()
	var sch *record.Schema
	for _, s := range snap.Tables() {
		if s.QualifiedName() == table {
			sch = s
		}
	}
	if sch == nil {
		t.Fatalf("table %s not in the snapshot", table)
	}
	out := map[string]string{}
	err := snap.Scan(testCtx(t), sch, func(row []record.Value) error {
		var parts []string
		for _, i := range sch.KeyIndexes() {
			parts = append(parts, fmt.Sprint(row[i]))
		}
		out[sch.Table+":"+strings.Join(parts, ",")] = fmt.Sprint(row)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyBoundaryUnderLoad opens verify snapshots while a writer changes the table
// in many small transactions and the connector streams them, and checks that the
// records below each snapshot's boundary rebuild exactly what the snapshot scanned.
func TestVerifyBoundaryUnderLoad(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE TABLE vload (id int PRIMARY KEY, v int NOT NULL, s text)`,
		`INSERT INTO vload SELECT g, g, 'row ' || g FROM generate_series(1, 200) g`)
	p := params(t, "vload", dsn, []string{"public.vload"}, config.SnapshotInitial, connector.ModeStream)
	r := startRead(t, openSource(t, p), nil)
	r.waitPhase(t, "streaming")

	wconn := dbConn(t, dsn)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		next := 201
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			werr = pgx.BeginFunc(ctx, wconn, func(tx pgx.Tx) error {
				for n := 1 + rng.Intn(3); n > 0; n-- {
					var err error
					switch rng.Intn(3) {
					case 0:
						_, err = tx.Exec(ctx, "INSERT INTO vload VALUES ($1, $1, 'new')", next)
						next++
					case 1:
						_, err = tx.Exec(ctx, "UPDATE vload SET v = v + 1, s = s || '+' WHERE id = $1", 1+rng.Intn(next))
					default:
						_, err = tx.Exec(ctx, "DELETE FROM vload WHERE id = $1", 1+rng.Intn(next))
					}
					if err != nil {
						return err
					}
				}
				return nil
			})
			if werr != nil {
				return
			}
		}
	}()

	type taken struct {
		boundary record.Position
		rows     map[string]string
	}
	var snaps []taken
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		snap, err := Kind{}.OpenSnapshot(testCtx(t), p)
		if err != nil {
			t.Fatal(err)
		}
		rows := scanRows(t, snap, "public.vload")
		snaps = append(snaps, taken{boundary: snap.Boundary(), rows: rows})
		t.Logf("snapshot %d at %s: %d rows", i, snap.DescribeBoundary(), len(rows))
		if err := snap.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	// A last row tells when the stream has delivered everything before it.
	exec(t, conn, `INSERT INTO vload VALUES (-1, -1, 'end')`)
	var recs []record.Record
	deadline := time.Now().Add(60 * time.Second)
	for done := false; !done; {
		if time.Now().After(deadline) {
			t.Fatal("the last row did not arrive")
		}
		recs = r.snapshot()
		for _, rec := range recs {
			if rec.Op == record.OpCreate && rec.After[0] == int32(-1) {
				done = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.stop()

	for i, s := range snaps {
		var below []record.Record
		streamBelow, above := 0, 0
		for _, rec := range recs {
			if rec.Pos.Compare(s.boundary) < 0 {
				below = append(below, rec)
				if _, _, ok := parseStreamPos(rec.Pos); ok {
					streamBelow++
				}
			} else {
				above++
			}
		}
		if streamBelow == 0 || above == 0 {
			t.Fatalf("snapshot %d: %d streamed changes below the boundary, %d at or above: the load did not straddle it", i, streamBelow, above)
		}
		want := rebuild(below)
		if !reflect.DeepEqual(want, s.rows) {
			for k, v := range want {
				if s.rows[k] != v {
					t.Errorf("snapshot %d: %s: lake below boundary %q, scan %q", i, k, v, s.rows[k])
				}
			}
			for k, v := range s.rows {
				if _, ok := want[k]; !ok {
					t.Errorf("snapshot %d: %s: only in the scan: %q", i, k, v)
				}
			}
		}
	}
}

// sameValue compares decoded values, NaN equal to itself.
func sameValue(a, b record.Value) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b) && fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// TestVerifyScanValuesEqualTheSnapshots reads a table of every mapped type through
// the source's snapshot and through verify's Scan, and compares value by value.
func TestVerifyScanValuesEqualTheSnapshots(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE TYPE vmood AS ENUM ('sad', 'happy')`, `CREATE TABLE vtyp (
 id int PRIMARY KEY, c_smallint smallint, c_int integer, c_bigint bigint, c_num102 numeric(10,2),
 c_num numeric, c_numnan numeric, c_real real, c_double double precision, c_dinf double precision,
 c_bool boolean, c_text text, c_varchar varchar(20), c_char char(5), c_bytea bytea, c_date date,
 c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz, c_tsinf timestamptz,
 c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_enum vmood, c_intarr int[],
 c_textarr text[], c_inet inet, c_cidr cidr, c_bit bit(4), c_varbit varbit, c_point point, c_null text)`,
		`INSERT INTO vtyp VALUES (1, `+typesRow+`)`,
		`INSERT INTO vtyp (id) VALUES (2)`,
		`INSERT INTO vtyp (id, c_text, c_bytea, c_textarr, c_num) VALUES (3, '', '', '{}', '-0.000')`)

	p := params(t, "vtyp", dsn, []string{"public.vtyp"}, config.SnapshotInitialOnly, connector.ModeStream)
	src := openSource(t, p)
	var recs []record.Record
	err := src.Read(testCtx(t), nil, func(_ context.Context, batch []record.Record) error {
		for _, r := range batch {
			if r.Op == record.OpRead {
				recs = append(recs, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = src.Close(context.Background())
	if len(recs) != 3 {
		t.Fatalf("snapshot gave %d records, want 3", len(recs))
	}

	snap, err := Kind{}.OpenSnapshot(testCtx(t), p)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close(context.Background())
	tables := snap.Tables()
	if len(tables) != 1 {
		t.Fatalf("tables %v", tables)
	}
	sch := tables[0]
	if !reflect.DeepEqual(sch.Columns, recs[0].Schema.Columns) {
		t.Errorf("verify's columns differ from the snapshot's:\n%+v\n%+v", sch.Columns, recs[0].Schema.Columns)
	}
	byID := map[int32]record.Record{}
	for _, r := range recs {
		byID[r.After[0].(int32)] = r
	}
	n := 0
	err = snap.Scan(testCtx(t), sch, func(row []record.Value) error {
		n++
		want, ok := byID[row[0].(int32)]
		if !ok {
			t.Errorf("scan row %v not in the snapshot", row[0])
			return nil
		}
		for i, c := range sch.Columns {
			if !sameValue(row[i], want.After[i]) {
				t.Errorf("id %v column %s: scan %#v (%T), snapshot %#v (%T)", row[0], c.Name, row[i], row[i], want.After[i], want.After[i])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("scan gave %d rows, want 3", n)
	}
	if est, err := snap.EstimateRows(testCtx(t), sch); err != nil || est < 0 {
		t.Errorf("EstimateRows = %d, %v", est, err)
	}
	// An error from fn ends the scan and comes back as is; pgconn cuts the COPY off
	// by closing the connection, so the snapshot then says it is gone.
	stop := errors.New("stop")
	if err := snap.Scan(testCtx(t), sch, func([]record.Value) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("Scan returned %v, want fn's error", err)
	}
	if err := snap.Scan(testCtx(t), sch, func([]record.Value) error { return nil }); err == nil || !strings.Contains(err.Error(), "open a new snapshot") {
		t.Errorf("Scan after a failed one: %v", err)
	}
	if err := snap.Close(testCtx(t)); err != nil {
		t.Errorf("Close after a failed scan: %v", err)
	}
}

type slotRow struct {
	name, confirmed, restart string
	active                   bool
}

func slotRows(t *testing.T, conn *pgx.Conn) []slotRow {
	t.Helper()
	rows, err := conn.Query(testCtx(t), `SELECT slot_name::text, coalesce(confirmed_flush_lsn::text, ''), coalesce(restart_lsn::text, ''), active
FROM pg_replication_slots ORDER BY slot_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []slotRow
	for rows.Next() {
		var s slotRow
		if err := rows.Scan(&s.name, &s.confirmed, &s.restart, &s.active); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyLeavesTheConnectorsSlotAndPublication opens and closes a verify snapshot
// beside an idle connector and checks that no slot or publication changed and no
// temporary slot is left; a table without a key comes without key columns.
func TestVerifyLeavesTheConnectorsSlotAndPublication(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE TABLE vkeep (id int PRIMARY KEY, v text)`, `INSERT INTO vkeep VALUES (1, 'a')`,
		`CREATE TABLE vkeep_nokey (v text)`, `INSERT INTO vkeep_nokey VALUES ('x'), ('x')`)
	p := params(t, "vkeep", dsn, []string{"public.vkeep"}, config.SnapshotInitial, connector.ModeStream)
	r := startRead(t, openSource(t, p), nil)
	r.wait(t, 1)
	r.waitPhase(t, "streaming")
	// Idle: let the slot settle where the stream stands.
	time.Sleep(500 * time.Millisecond)
	before := slotRows(t, conn)
	var pubBefore string
	pubQ := `SELECT coalesce(string_agg(schemaname || '.' || tablename, ',' ORDER BY tablename), '') FROM pg_publication_tables WHERE pubname = $1`
	if err := conn.QueryRow(testCtx(t), pubQ, r.src.st.publication).Scan(&pubBefore); err != nil {
		t.Fatal(err)
	}

	vp := params(t, "vkeep", dsn, []string{"public.vkeep*"}, config.SnapshotInitial, connector.ModeStream)
	snap, err := Kind{}.OpenSnapshot(testCtx(t), vp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range snap.Tables() {
		names = append(names, s.QualifiedName()+fmt.Sprint(s.KeyIndexes()))
	}
	if got := strings.Join(names, " "); got != "public.vkeep[0] public.vkeep_nokey[]" {
		t.Errorf("tables %q", got)
	}
	rows := scanRows(t, snap, "public.vkeep")
	if len(rows) != 1 {
		t.Errorf("scan %v", rows)
	}
	if err := snap.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(testCtx(t)); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The temporary slot goes when its walsender ends, a moment after its connection.
	var after []slotRow
	deadline := time.Now().Add(20 * time.Second)
	for {
		after = slotRows(t, conn)
		if reflect.DeepEqual(after, before) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !reflect.DeepEqual(after, before) {
		t.Errorf("replication slots changed:\nbefore %+v\nafter  %+v", before, after)
	}
	var pubAfter string
	if err := conn.QueryRow(testCtx(t), pubQ, r.src.st.publication).Scan(&pubAfter); err != nil {
		t.Fatal(err)
	}
	if pubAfter != pubBefore || pubAfter != "public.vkeep" {
		t.Errorf("publication tables %q, before %q", pubAfter, pubBefore)
	}
}

// TestVerifyWithoutReplicationPrivilegeSaysHowToFixIt verifies as a role that may
// not open replication connections.
func TestVerifyWithoutReplicationPrivilegeSaysHowToFixIt(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE ROLE vnorepl LOGIN NOREPLICATION`, `CREATE TABLE vpriv (id int PRIMARY KEY)`,
		`GRANT SELECT ON vpriv TO vnorepl`)
	userDSN := strings.Replace(dsn, "postgres://postgres@", "postgres://vnorepl@", 1)
	p := params(t, "vpriv", userDSN, []string{"public.vpriv"}, config.SnapshotInitial, connector.ModeStream)
	_, err := Kind{}.OpenSnapshot(testCtx(t), p)
	if err == nil {
		t.Fatal("OpenSnapshot succeeded without REPLICATION")
	}
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "ALTER ROLE <user> WITH REPLICATION") {
		t.Errorf("error %v (permanent %v) does not name the fix", err, connector.IsPermanent(err))
	}
}

// TestVerifyWithEverySlotInUseSaysHowToFixIt fills max_replication_slots with
// temporary physical slots (gone with their session) and opens a verify snapshot.
func TestVerifyWithEverySlotInUseSaysHowToFixIt(t *testing.T) {
	testenv.NeedServers(t)
	dsn := pgServer(t).DSN
	conn := dbConn(t, dsn)
	exec(t, conn, `CREATE TABLE vslots (id int PRIMARY KEY)`)
	holder := dbConn(t, dsn)
	var free int
	err := conn.QueryRow(testCtx(t), `SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)`).Scan(&free)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < free; i++ {
		exec(t, holder, fmt.Sprintf(`SELECT pg_create_physical_replication_slot('vslots_fill_%d', false, true)`, i))
	}
	p := params(t, "vslots", dsn, []string{"public.vslots"}, config.SnapshotInitial, connector.ModeStream)
	_, err = Kind{}.OpenSnapshot(testCtx(t), p)
	if err == nil {
		t.Fatal("OpenSnapshot succeeded with every slot in use")
	}
	if !connector.IsPermanent(err) || !strings.Contains(err.Error(), "raise max_replication_slots") {
		t.Errorf("error %v (permanent %v) does not name the fix", err, connector.IsPermanent(err))
	}
	holder.Close(context.Background())
	waitNoSlot := time.Now().Add(20 * time.Second)
	for time.Now().Before(waitNoSlot) {
		var n int
		if err := conn.QueryRow(testCtx(t), `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'vslots_fill_%'`).Scan(&n); err != nil || n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	snap, err := Kind{}.OpenSnapshot(testCtx(t), p)
	if err != nil {
		t.Fatalf("with the slots free again: %v", err)
	}
	if err := snap.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}
