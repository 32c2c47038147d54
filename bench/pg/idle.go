package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// idleResult is the retained-WAL figure (docs/benchmarks.md): two `connectd run` processes
// watch an idle table, one with heartbeats and one without, while another database
// on the same server writes.
type idleResult struct {
	window     time.Duration
	heartbeat  string
	started    time.Time
	walWritten int64 // WAL the other database wrote during the window
	with       idleSlot
	without    idleSlot
	// series holds the retained WAL of each slot at every sample, in MiB.
	series []idleSample
}

type idleSample struct {
	at        time.Duration
	with, out float64
}

type idleSlot struct {
	maxRetained   int64 // pg_current_wal_lsn() - restart_lsn, highest sample
	finalRetained int64 // the same at the end of the window
	finalLag      int64 // pg_current_wal_lsn() - confirmed_flush_lsn at the end
	rss           float64
	exitErr       error
}

const idleHeartbeat = "10s"

func (b *bench) idlePhase(ctx context.Context) error {
	r := &idleResult{window: b.o.idle, heartbeat: idleHeartbeat}
	b.idle = r
	for _, stmt := range []string{
		"CREATE SCHEMA IF NOT EXISTS bench",
		"CREATE TABLE bench.idle_hb (id bigint PRIMARY KEY, v text)",
		"CREATE TABLE bench.idle_nohb (id bigint PRIMARY KEY, v text)",
		"INSERT INTO bench.idle_hb VALUES (1, 'one')",
		"INSERT INTO bench.idle_nohb VALUES (1, 'one')",
		"CREATE DATABASE busy",
	} {
		if _, err := b.exec(ctx, stmt); err != nil {
			return err
		}
	}
	busyDSN := strings.Replace(b.pg.DSN, "/postgres?", "/busy?", 1)
	busy, err := pgx.Connect(ctx, busyDSN)
	if err != nil {
		return fmt.Errorf("connect %s: %w", busyDSN, err)
	}
	defer busy.Close(context.Background())
	if _, err := busy.Exec(ctx, "CREATE TABLE writes (id bigserial PRIMARY KEY, payload text)"); err != nil {
		return fmt.Errorf("create busy.writes: %w", err)
	}

	logf("idle: connectd run on two idle tables (heartbeat %s and none) while database busy writes, for %s", idleHeartbeat, r.window)
	withCmd, _, err := b.startConnectd(ctx, connectorConfig{name: "idle_hb", table: "bench.idle_hb", snapshot: "never", heartbeat: idleHeartbeat}, "run")
	if err != nil {
		return err
	}
	withoutCmd, _, err := b.startConnectd(ctx, connectorConfig{name: "idle_nohb", table: "bench.idle_nohb", snapshot: "never"}, "run")
	if err != nil {
		_ = withCmd.Process.Signal(syscall.SIGTERM)
		_ = withCmd.Wait()
		return err
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, c := range []*exec.Cmd{withCmd, withoutCmd} {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		r.with.exitErr = withCmd.Wait()
		r.without.exitErr = withoutCmd.Wait()
		r.with.rss = usage(withCmd).rssMiB()
		r.without.rss = usage(withoutCmd).rssMiB()
	}
	defer stop()

	if err := b.waitSlots(ctx, "connectd_idle_hb", "connectd_idle_nohb"); err != nil {
		return err
	}
	startLSN, err := b.walLSN(ctx)
	if err != nil {
		return err
	}
	r.started = time.Now()
	deadline := time.Now().Add(r.window)
	nextSample := time.Now()
	for time.Now().Before(deadline) {
		if _, err := busy.Exec(ctx, "INSERT INTO writes (payload) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 500) AS g"); err != nil {
			return fmt.Errorf("write to database busy: %w", err)
		}
		if time.Now().After(nextSample) {
			nextSample = time.Now().Add(5 * time.Second)
			if err := b.sampleIdle(ctx, r, false); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	endLSN, err := b.walLSN(ctx)
	if err != nil {
		return err
	}
	if r.walWritten, err = b.walDiff(ctx, startLSN, endLSN); err != nil {
		return err
	}
	if err := b.sampleIdle(ctx, r, true); err != nil {
		return err
	}
	stop()
	logf("  %.0f MiB of WAL written; retained by the slot with heartbeat: max %.1f MiB, end %.1f MiB; without: max %.1f MiB, end %.1f MiB",
		mib(r.walWritten), mib(r.with.maxRetained), mib(r.with.finalRetained), mib(r.without.maxRetained), mib(r.without.finalRetained))
	for name, e := range map[string]error{"idle_hb": r.with.exitErr, "idle_nohb": r.without.exitErr} {
		if e != nil {
			b.notes = append(b.notes, fmt.Sprintf("idle: connectd run %s did not exit 0 on SIGTERM: %v (log: %s)", name, e, b.tmp+"/"+name+"/run.log"))
		}
	}
	return nil
}

// waitSlots waits until connectd has created its slots and is streaming.
func (b *bench) waitSlots(ctx context.Context, slots ...string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n, err := b.queryInt(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = ANY($1) AND active", slots)
		if err != nil {
			return err
		}
		if n == int64(len(slots)) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("connectd did not start streaming on " + strings.Join(slots, ", ") + " within 2 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *bench) sampleIdle(ctx context.Context, r *idleResult, final bool) error {
	rows, err := b.conn.Query(ctx, `SELECT slot_name,
		pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8,
		pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8
		FROM pg_replication_slots WHERE slot_name IN ('connectd_idle_hb', 'connectd_idle_nohb')`)
	if err != nil {
		return fmt.Errorf("sample pg_replication_slots: %w", err)
	}
	defer rows.Close()
	smp := idleSample{at: time.Since(r.started).Round(time.Second)}
	defer func() { r.series = append(r.series, smp) }()
	for rows.Next() {
		var name string
		var retained, lag int64
		if err := rows.Scan(&name, &retained, &lag); err != nil {
			return err
		}
		s := &r.without
		if name == "connectd_idle_hb" {
			s = &r.with
			smp.with = mib(retained)
		} else {
			smp.out = mib(retained)
		}
		s.maxRetained = max(s.maxRetained, retained)
		if final {
			s.finalRetained, s.finalLag = retained, lag
		}
	}
	return rows.Err()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
