package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/bench/internal/proc"
	"github.com/connectd/connectd/internal/testenv"
)

// bench holds one run's servers and results.
type bench struct {
	o     options
	pg    *testenv.Postgres
	conn  *pgx.Conn
	bin   string
	tmp   string
	facts facts

	snap   *snapResult
	fire   *fireResult
	stream *streamResult
	bigtx  *streamResult
	oltp   *streamResult
	idle   *idleResult
	verify []*verifyResult
	notes  []string
}

type snapResult struct {
	rows      int64
	tableSize int64
	loadTime  time.Duration
	copyBest  time.Duration
	copyRuns  []time.Duration
	connectd  procResult
	// CPU time of the best COPY run: the server backend's and this client's.
	copyServerCPU, copyClientCPU time.Duration
	// Every PostgreSQL process's CPU during connectd's sync (see serverCPU).
	syncServerCPU time.Duration
}

type streamResult struct {
	changes           int64
	inserts, upd, del int64
	txns              int64
	singleTxns        int64 // transactions of one row change (oltp)
	walBytes          int64
	workload          time.Duration
	recvlogical       time.Duration
	recvUser, recvSys time.Duration // pg_recvlogical's CPU (wait4)
	connectd          procResult
	// CPU time of the walsender serving each consumer.
	recvSenderCPU, connectdSenderCPU time.Duration
}

// The benchmark table: a realistic mix of types. Text is 20-39 characters.
const tableDDL = `CREATE TABLE %s (
  id         bigint PRIMARY KEY,
  account_id integer NOT NULL,
  amount     numeric(12,2) NOT NULL,
  note       text NOT NULL,
  created_at timestamptz NOT NULL,
  active     boolean NOT NULL,
  ref        uuid NOT NULL,
  attrs      jsonb
)`

// rowExpr builds a row from the bigint i.
const rowExpr = `i, (i * 7919 % 100000)::int, round(((i * 37) % 100000) / 100.0 + 0.01, 2),
  'note ' || substr(md5(i::text), 1, 15 + (i % 20)::int),
  timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second', i % 3 <> 0,
  md5(i::text)::uuid, jsonb_build_object('k', i % 100, 'tag', 't' || (i % 7))`

func (b *bench) connect(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.pg.DSN)
	if err != nil {
		return fmt.Errorf("connect %s: %w", b.pg.DSN, err)
	}
	b.conn = conn
	return nil
}

func (b *bench) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := b.conn.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", firstLine(sql), err)
	}
	return tag.RowsAffected(), nil
}

func (b *bench) queryString(ctx context.Context, sql string, args ...any) (string, error) {
	var s string
	if err := b.conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		return "", fmt.Errorf("%s: %w", firstLine(sql), err)
	}
	return s, nil
}

func (b *bench) queryInt(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	if err := b.conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", firstLine(sql), err)
	}
	return n, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

// loadRows inserts ids [from, to] into table in chunks of a million rows, each its
// own transaction.
func (b *bench) loadRows(ctx context.Context, table string, from, to int64) error {
	const chunk = 1_000_000
	for lo := from; lo <= to; lo += chunk {
		hi := min(lo+chunk-1, to)
		if _, err := b.exec(ctx, "INSERT INTO "+table+" SELECT "+rowExpr+" FROM generate_series($1::int8, $2::int8) AS i", lo, hi); err != nil {
			return err
		}
		logf("  loaded %s rows %d..%d", table, lo, hi)
	}
	return nil
}

func (b *bench) snapshotPhase(ctx context.Context) error {
	r := &snapResult{rows: b.o.rows}
	b.snap = r
	logf("snapshot: loading bench.snap with %d rows", r.rows)
	if _, err := b.exec(ctx, "CREATE SCHEMA IF NOT EXISTS bench"); err != nil {
		return err
	}
	if _, err := b.exec(ctx, fmt.Sprintf(tableDDL, "bench.snap")); err != nil {
		return err
	}
	t0 := time.Now()
	if err := b.loadRows(ctx, "bench.snap", 1, r.rows); err != nil {
		return err
	}
	if _, err := b.exec(ctx, "VACUUM ANALYZE bench.snap"); err != nil {
		return err
	}
	r.loadTime = time.Since(t0)
	var err error
	if r.tableSize, err = b.queryInt(ctx, "SELECT pg_table_size('bench.snap')"); err != nil {
		return err
	}

	// The limit: the server producing the same rows in COPY text format, and a client
	// reading them. Run twice; the first also warms the cache.
	backend, err := b.queryInt(ctx, "SELECT pg_backend_pid()")
	if err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		srv0, _ := proc.CPU(int(backend))
		cli0 := proc.Self()
		t := time.Now()
		tag, err := b.conn.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT * FROM bench.snap) TO STDOUT")
		if err != nil {
			return fmt.Errorf("COPY bench.snap TO STDOUT: %w", err)
		}
		d := time.Since(t)
		srv1, _ := proc.CPU(int(backend))
		cli1 := proc.Self()
		if tag.RowsAffected() != r.rows {
			return fmt.Errorf("COPY returned %d rows, want %d", tag.RowsAffected(), r.rows)
		}
		r.copyRuns = append(r.copyRuns, d)
		logf("  COPY TO STDOUT run %d: %s (%.0f rows/s)", i+1, d.Round(time.Millisecond), perSec(r.rows, d))
		if r.copyBest == 0 || d < r.copyBest {
			r.copyBest = d
			r.copyServerCPU, r.copyClientCPU = srv1-srv0, cli1-cli0
		}
	}

	logf("snapshot: connectd sync (snapshot: initial_only)")
	srv0, before, err := serverCPU(ctx, b.pg, nil)
	if err != nil {
		return err
	}
	res, err := b.syncConnectd(ctx, connectorConfig{name: "snap", table: "bench.snap", snapshot: "initial_only"})
	if err != nil {
		return err
	}
	srv1, _, err := serverCPU(ctx, b.pg, before)
	if err != nil {
		return err
	}
	r.connectd, r.syncServerCPU = res, srv1-srv0
	logf("  connectd: %s wall (%.0f rows/s), snapshot log elapsed %s, peak RSS %.0f MiB, lake %d rows in %d files",
		res.wall.Round(time.Millisecond), perSec(r.rows, res.wall), res.snapshotElapsed, res.rssMiB(), res.lakeRows, res.files)
	if res.lakeRows != r.rows {
		return fmt.Errorf("lake holds %d rows, the table %d", res.lakeRows, r.rows)
	}
	// Verify needs the table and the lake the sync made; it is its own phase to skip.
	if b.o.skip["verify"] {
		b.notes = append(b.notes, "verify: skipped (-skip)")
	} else if err := b.verifyPhase(ctx); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	// The streaming phases decode every later WAL record; the snapshot table is done.
	_, err = b.exec(ctx, "DROP TABLE bench.snap")
	return err
}

// createSlots makes the publication connectd would make, connectd's slot under the
// name it expects, and pg_recvlogical's slot, before any change is made.
func (b *bench) createSlots(ctx context.Context, name, table, recvSlot string) error {
	stmts := []string{
		fmt.Sprintf("CREATE PUBLICATION connectd_%s FOR TABLE %s WITH (publish_via_partition_root = true)", name, table),
		fmt.Sprintf("SELECT pg_create_logical_replication_slot('connectd_%s', 'pgoutput')", name),
		fmt.Sprintf("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')", recvSlot),
	}
	for _, s := range stmts {
		if _, err := b.exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) dropSlots(ctx context.Context, slots ...string) error {
	for _, s := range slots {
		if _, err := b.exec(ctx, "SELECT pg_drop_replication_slot($1)", s); err != nil {
			return err
		}
	}
	return nil
}

// recvlogical drains a slot with pg_recvlogical (pgoutput, protocol 1, the same
// options connectd uses) into /dev/null up to endpos.
func (b *bench) recvlogical(ctx context.Context, slot, publication, endpos string) (time.Duration, procResult, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(b.pg.BinDir, "pg_recvlogical"),
		"-d", b.pg.DSN, "--slot", slot, "--start", "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+publication,
		"--endpos", endpos, "-F", "0", "-f", "/dev/null")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	t := time.Now()
	err := cmd.Run()
	d := time.Since(t)
	if err != nil {
		return d, procResult{}, fmt.Errorf("pg_recvlogical --slot %s: %w: %s", slot, err, out.String())
	}
	return d, usage(cmd), nil
}

// fence commits a tiny transaction on an unpublished table with synchronous_commit
// on, which flushes all WAL written so far. Without it the tail of the WAL can hold
// a record that is inserted but not flushed (a bgwriter running-xacts record: the
// walwriter flushes partial pages only for asynchronous commits), and a consumer
// waiting for the server's flush position to reach the insert position waits until
// something else flushes, up to ~15 s on an idle server. That wait is reported
// separately (see docs/benchmarks.md); the figures measure the draining.
func (b *bench) fence(ctx context.Context) error {
	if !b.o.fence {
		return nil
	}
	if _, err := b.exec(ctx, "CREATE TABLE IF NOT EXISTS bench_fence (at timestamptz)"); err != nil {
		return err
	}
	tx, err := b.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO bench_fence VALUES (now())"); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	return tx.Commit(ctx)
}

func (b *bench) walLSN(ctx context.Context) (string, error) {
	return b.queryString(ctx, "SELECT pg_current_wal_insert_lsn()::text")
}

// walSince makes the workload's WAL durable (fence) and records in r how much was
// written since startLSN; it returns the end LSN the consumers drain to.
func (b *bench) walSince(ctx context.Context, r *streamResult, startLSN string) (string, error) {
	if err := b.fence(ctx); err != nil {
		return "", err
	}
	endLSN, err := b.walLSN(ctx)
	if err != nil {
		return "", err
	}
	r.walBytes, err = b.walDiff(ctx, startLSN, endLSN)
	return endLSN, err
}

func (b *bench) walDiff(ctx context.Context, from, to string) (int64, error) {
	return b.queryInt(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::int8", to, from)
}

func (b *bench) streamPhase(ctx context.Context) error {
	r := &streamResult{}
	b.stream = r
	logf("stream: preloading bench.stream with %d rows", b.o.preload)
	if _, err := b.exec(ctx, "CREATE SCHEMA IF NOT EXISTS bench"); err != nil {
		return err
	}
	if _, err := b.exec(ctx, fmt.Sprintf(tableDDL, "bench.stream")); err != nil {
		return err
	}
	if err := b.loadRows(ctx, "bench.stream", 1, b.o.preload); err != nil {
		return err
	}
	if _, err := b.exec(ctx, "VACUUM ANALYZE bench.stream"); err != nil {
		return err
	}
	if err := b.createSlots(ctx, "stream", "bench.stream", "bench_recvlogical"); err != nil {
		return err
	}
	startLSN, err := b.walLSN(ctx)
	if err != nil {
		return err
	}

	logf("stream: workload of %d changes", b.o.changes)
	t0 := time.Now()
	if err := b.workload(ctx, r, b.o.preload+1); err != nil {
		return err
	}
	r.workload = time.Since(t0)
	endLSN, err := b.walSince(ctx, r, startLSN)
	if err != nil {
		return err
	}
	logf("  %d changes (%d inserts, %d updates, %d deletes) in %d transactions, %s, %.0f MiB of WAL, end LSN %s",
		r.changes, r.inserts, r.upd, r.del, r.txns, r.workload.Round(time.Millisecond), float64(r.walBytes)/(1<<20), endLSN)

	if err := b.drain(ctx, "stream", r, connectorConfig{name: "stream", table: "bench.stream", snapshot: "never"}, "bench_recvlogical", endLSN); err != nil {
		return err
	}
	_, err = b.exec(ctx, "DROP TABLE bench.stream")
	return err
}

// workload runs transactions of 200-3000 row changes (about 45% inserts, 40% updates,
// 15% deletes, each a set-based statement) until b.o.changes changes are made. Live
// ids are the contiguous range [lo, hi): inserts extend it, deletes take its oldest.
func (b *bench) workload(ctx context.Context, r *streamResult, hi int64) error {
	rng := rand.New(rand.NewPCG(42, 2))
	lo := int64(1)
	for r.changes < b.o.changes {
		size := 200 + rng.Int64N(2801)
		size = min(size, b.o.changes-r.changes)
		ins := size * 45 / 100
		upd := size * 40 / 100
		del := size - ins - upd
		live := hi - lo
		upd = min(upd, live/2)
		del = min(del, live/4)
		ins = size - upd - del
		tx, err := b.conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		n := func(sql string, args ...any) int64 {
			if err != nil {
				return 0
			}
			var tag, e = tx.Exec(ctx, sql, args...)
			err = e
			return tag.RowsAffected()
		}
		if upd > 0 {
			from := lo + del + rng.Int64N(max(live-del-upd, 1))
			r.upd += n(`UPDATE bench.stream SET amount = amount + 1.25, active = NOT active,
				note = 'upd ' || substr(md5(id::text || $3::int8::text), 1, 16 + (id % 20)::int),
				attrs = attrs || jsonb_build_object('v', $3::int8)
				WHERE id >= $1 AND id < $2`, from, from+upd, r.txns)
		}
		if ins > 0 {
			r.inserts += n("INSERT INTO bench.stream SELECT "+rowExpr+" FROM generate_series($1::int8, $2::int8) AS i", hi, hi+ins-1)
			hi += ins
		}
		if del > 0 {
			r.del += n("DELETE FROM bench.stream WHERE id >= $1 AND id < $2", lo, lo+del)
			lo += del
		}
		if err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("workload transaction %d: %w", r.txns, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit workload transaction %d: %w", r.txns, err)
		}
		r.txns++
		r.changes = r.inserts + r.upd + r.del
	}
	return nil
}

func (b *bench) bigTxPhase(ctx context.Context) error {
	r := &streamResult{}
	b.bigtx = r
	if _, err := b.exec(ctx, "CREATE SCHEMA IF NOT EXISTS bench"); err != nil {
		return err
	}
	if _, err := b.exec(ctx, fmt.Sprintf(tableDDL, "bench.bigtx")); err != nil {
		return err
	}
	if err := b.createSlots(ctx, "bigtx", "bench.bigtx", "bench_recvlogical_bigtx"); err != nil {
		return err
	}
	startLSN, err := b.walLSN(ctx)
	if err != nil {
		return err
	}
	logf("bigtx: one transaction inserting %d rows", b.o.bigtx)
	t0 := time.Now()
	if r.inserts, err = b.exec(ctx, "INSERT INTO bench.bigtx SELECT "+rowExpr+" FROM generate_series(1, $1::int8) AS i", b.o.bigtx); err != nil {
		return err
	}
	r.workload = time.Since(t0)
	r.changes, r.txns = r.inserts, 1
	endLSN, err := b.walSince(ctx, r, startLSN)
	if err != nil {
		return err
	}
	logf("  %s, %.0f MiB of WAL", r.workload.Round(time.Millisecond), float64(r.walBytes)/(1<<20))

	if err := b.drain(ctx, "bigtx", r, connectorConfig{name: "bigtx", table: "bench.bigtx", snapshot: "never"}, "bench_recvlogical_bigtx", endLSN); err != nil {
		return err
	}
	_, err = b.exec(ctx, "DROP TABLE bench.bigtx")
	return err
}

// drain reads the changes up to endLSN twice: with pg_recvlogical from recvSlot and
// with connectd sync from its own slot (in that order unless -connectd-first), each
// after a fence, each with the CPU of the
// walsender serving it; the lake must hold exactly r.changes records. Both slots are
// dropped after.
func (b *bench) drain(ctx context.Context, phase string, r *streamResult, c connectorConfig, recvSlot, endLSN string) error {
	slot := "connectd_" + c.name
	recv := func() error {
		logf("%s: pg_recvlogical", phase)
		if err := b.fence(ctx); err != nil {
			return err
		}
		stopCPU := b.watchSlotCPU(ctx, recvSlot)
		d, u, err := b.recvlogical(ctx, recvSlot, slot, endLSN)
		r.recvSenderCPU = stopCPU()
		if err != nil {
			return err
		}
		r.recvlogical, r.recvUser, r.recvSys = d, u.cpuUser, u.cpuSys
		logf("  pg_recvlogical: %s (%.0f changes/s), CPU user %s sys %s", d.Round(time.Millisecond), perSec(r.changes, d),
			u.cpuUser.Round(time.Millisecond), u.cpuSys.Round(time.Millisecond))
		return nil
	}
	sync := func() error {
		logf("%s: connectd sync (snapshot: never)", phase)
		if err := b.fence(ctx); err != nil {
			return err
		}
		stopCPU := b.watchSlotCPU(ctx, slot)
		var err error
		r.connectd, err = b.syncConnectd(ctx, c)
		r.connectdSenderCPU = stopCPU()
		if err != nil {
			return err
		}
		res := r.connectd
		logf("  connectd: %s wall (%.0f changes/s), streaming part %s, CPU user %s sys %s, peak RSS %.0f MiB, lake %d records in %d files",
			res.wall.Round(time.Millisecond), perSec(r.changes, res.wall), res.streamElapsed.Round(time.Millisecond),
			res.cpuUser.Round(time.Millisecond), res.cpuSys.Round(time.Millisecond), res.rssMiB(), res.lakeRows, res.files)
		if res.lakeRows != r.changes {
			return fmt.Errorf("lake holds %d records, the workload made %d changes", res.lakeRows, r.changes)
		}
		return nil
	}
	order := []func() error{recv, sync}
	if b.o.connectdFirst {
		order = []func() error{sync, recv}
	}
	for _, f := range order {
		if err := f(); err != nil {
			return err
		}
	}
	return b.dropSlots(ctx, slot, recvSlot)
}

func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// watchSlotCPU follows the CPU time of the walsender serving slot (its active_pid)
// until stop is called, which returns the last value seen: the server's cost of
// decoding for that consumer.
func (b *bench) watchSlotCPU(ctx context.Context, slot string) (stop func() time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan time.Duration, 1)
	go func() {
		var last time.Duration
		defer func() { done <- last }()
		conn, err := pgx.Connect(ctx, b.pg.DSN)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		pid := 0
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if pid == 0 {
				var p *int32
				if err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&p); err == nil && p != nil {
					pid = int(*p)
				}
			}
			if pid != 0 {
				if c, ok := proc.CPU(pid); ok {
					last = c
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() time.Duration {
		cancel()
		return <-done
	}
}
