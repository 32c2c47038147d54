// Package postgres is the `postgres` source: an initial snapshot read in chunks with
// COPY on several connections inside the exported snapshot of a new logical
// replication slot (snapshot.go, chunks.go), then the slot's changes
// streamed with pgoutput (protocol 1, text values), one record per row change.
// See README.md for what it creates on the server and how positions are laid out.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Kind is the postgres source kind; register it as "postgres".
type Kind struct{}

// Open validates the config; Read connects.
func (Kind) Open(_ context.Context, p connector.SourceParams) (connector.Source, error) {
	st, err := settingsFrom(p)
	if err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	status := p.Status
	if status == nil {
		status = connector.NopStatus{}
	}
	return &Source{
		st:     st,
		mode:   p.Mode,
		log:    log.With("source", "postgres", "slot", st.slot),
		status: status,
		state:  p.State,
		stop:   make(chan struct{}),

		retainedEvery: retainedInterval,
	}, nil
}

// Source reads one connector's tables. Read runs on one goroutine; Ack, Close and
// DescribePosition may be called from others.
type Source struct {
	st     settings
	mode   connector.Mode
	log    *slog.Logger
	status connector.Status
	state  connector.StateStore // nil: an interrupted snapshot cannot be resumed

	// Owned by the Read goroutine.
	conn     *pgx.Conn
	cat      *catalog
	shapes   map[string]*tableShape // latest shape per qualified table name
	selected map[string]bool        // qualified names of the selected tables
	selGen   int                    // counts changes of selected
	tables   map[string]table       // the selected tables by qualified name
	incr     *incrState             // tables covered, snapshots of tables added later
	warned   map[string]bool        // columns already warned about (unknown type)

	retainedEvery time.Duration // how often the slot's retained WAL is measured
	retainedAt    time.Time     // when it last was

	mu         sync.Mutex // guards tableNames
	tableNames []string   // snapshot table ordinals -> names, for DescribePosition

	ack acks

	// sendMu serialises writes on the replication connection: the reader answers
	// keepalives, Ack confirms, and the keeper goroutine reports every statusInterval.
	sendMu    sync.Mutex
	repl      *pgconn.PgConn
	streaming bool // repl is in COPY BOTH mode: status updates may be sent
	closed    bool
	keeperOn  bool
	stop      chan struct{}
	// statusSent counts standby status updates sent, so tests can tell a quiet
	// exchange from a keepalive ping-pong.
	statusSent atomic.Int64
}

// statusInterval bounds the time between standby status updates. The keeper sends
// them even while emit blocks, so wal_sender_timeout never fires under backpressure.
const statusInterval = 10 * time.Second

// DescribePosition renders pos for `connectd offsets show`.
func (s *Source) DescribePosition(pos record.Position) string {
	return describePosition(pos, func(i uint32) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		if int(i) < len(s.tableNames) {
			return s.tableNames[i]
		}
		return ""
	})
}

// Read delivers the snapshot (when due) and then the stream; see the package doc.
func (s *Source) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	if err := s.open(ctx); err != nil {
		return err
	}
	var target pglogrepl.LSN
	if s.mode == connector.ModeSync {
		var err error
		if target, err = s.syncTarget(ctx); err != nil {
			return err
		}
	}
	level, err := s.cat.walLevel(ctx)
	if err != nil {
		return err
	}
	if level != "logical" {
		return permanentf("wal_level is %q, logical decoding needs \"logical\"; fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL", level)
	}
	tables, err := s.selectTables(ctx)
	if err != nil {
		return err
	}
	pub, err := s.cat.publication(ctx, s.st.publication)
	if err != nil {
		return err
	}
	// Tables not covered yet are queued (and saved) before the publication
	// takes them in, so that a crash in between cannot forget them.
	if err := s.planTables(ctx, tables, pub, start); err != nil {
		return err
	}
	if err := s.takeRequests(ctx); err != nil {
		return err
	}
	if changed, err := s.cat.ensurePublication(ctx, s.st.publication, tables); err != nil {
		return err
	} else if changed != "" {
		s.log.Info("publication "+changed, "publication", s.st.publication, "tables", len(tables))
	}
	slot, err := s.cat.slot(ctx, s.st.slot)
	if err != nil {
		return err
	}
	if slot.exists && (slot.slotType != "logical" || slot.plugin != "pgoutput" || slot.database != s.conn.Config().Database) {
		return permanentf("replication slot %s exists but is a %s slot for plugin %q in database %q; connectd needs a logical pgoutput slot in %q: drop it (SELECT pg_drop_replication_slot('%s');) or choose another slot name",
			s.st.slot, slot.slotType, slot.plugin, slot.database, s.conn.Config().Database, s.st.slot)
	}

	snapshot, epoch := false, uint32(1)
	var resume *snapshotPos
	var resumeState *snapState
	switch sp, isSnap := parseSnapshotPos(start); {
	case start == nil:
		snapshot = s.st.wantsSnapshot()
		if snapshot && slot.exists {
			s.log.Info("dropping the replication slot an earlier run left behind without committing anything; it is created again for a new snapshot")
		}
	case isSnap && sp.done:
		if s.st.snapshot == config.SnapshotInitialOnly {
			s.log.Info("snapshot already complete; snapshot: initial_only streams nothing")
			return nil
		}
		if !slot.exists {
			return s.slotGone(start)
		}
		if err := s.checkSlotNotAhead(ctx, start, slot); err != nil {
			return err
		}
	case isSnap:
		st, why, err := s.resumable(ctx, sp, slot)
		if err != nil {
			return err
		}
		if st != nil {
			resume, resumeState = &sp, st
			break
		}
		snapshot, epoch = true, sp.epoch+1
		s.log.Warn("the previous snapshot was interrupted and cannot be resumed ("+why+"); taking it again from the start, so rows it already delivered appear again (with new positions)",
			"interrupted_at", s.DescribePosition(start), "epoch", epoch)
	default:
		if _, ok := coveredLSN(start); !ok {
			return permanentf("position %s is not a postgres source position; run `connectd offsets reset` to start again", start)
		}
		if !slot.exists {
			return s.slotGone(start)
		}
		if err := s.checkSlotNotAhead(ctx, start, slot); err != nil {
			return err
		}
	}

	switch {
	case resume != nil:
		s.mu.Lock()
		s.tableNames = resumeState.Tables
		s.mu.Unlock()
		s.log.Info("resuming the interrupted snapshot", "after", s.DescribePosition(start))
		plan := snapPlan{state: *resumeState, resume: resume}
		if plan.tables, err = s.snapTables(ctx, resumeState.Tables, tables); err != nil {
			return err
		}
		if s.st.snapshot != config.SnapshotInitialOnly {
			rs, err := s.exportResumeSnapshot(ctx, plan.tables)
			if err != nil {
				return err
			}
			plan.snapName, plan.skip, plan.imported = rs.name, rs.skip, rs.close
			defer rs.close()
		}
		if err := s.snapshot(ctx, plan, emit); err != nil {
			return err
		}
		if s.st.snapshot == config.SnapshotInitialOnly {
			return nil
		}
		// The slot is still at the snapshot's consistent point (resumable checked).
		start = nil
	case snapshot:
		if slot.exists {
			if err := pglogrepl.DropReplicationSlot(ctx, s.repl, s.st.slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
				return classify("drop replication slot "+s.st.slot, err)
			}
		}
		temporary := s.st.snapshot == config.SnapshotInitialOnly
		res, err := pglogrepl.CreateReplicationSlot(ctx, s.repl, s.st.slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
			Mode:           pglogrepl.LogicalReplication,
			SnapshotAction: "EXPORT_SNAPSHOT",
			// initial_only never streams, so its slot must not outlive the snapshot
			// and hold WAL back.
			Temporary: temporary,
		})
		if err != nil {
			return classify("create replication slot "+s.st.slot, err)
		}
		cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return fmt.Errorf("postgres: slot %s consistent point %q: %w", s.st.slot, res.ConsistentPoint, err)
		}
		s.log.Info("replication slot created", "consistent_point", cp.String(), "snapshot", res.SnapshotName)
		if err := s.coverAll(ctx, tables); err != nil {
			return err
		}
		if s.state == nil {
			s.log.Warn("the offset store keeps no source state: if this snapshot is interrupted it is taken again from the start")
		}
		slot = slotInfo{exists: true, confirmed: cp}
		names := make([]string, len(tables))
		for i, t := range tables {
			names[i] = t.qualified()
		}
		plan := snapPlan{snapName: res.SnapshotName, state: snapState{
			Version: snapStateVersion, Slot: s.st.slot, Epoch: epoch, Chunk: s.st.chunk, Tables: names,
		}}
		if !temporary {
			plan.state.ConsistentPoint = cp.String()
		}
		// Catalog queries on the normal connection leave the exported snapshot alone.
		if plan.tables, err = s.snapTables(ctx, names, tables); err != nil {
			return err
		}
		if err := s.snapshot(ctx, plan, emit); err != nil {
			return err
		}
		if temporary {
			return nil
		}
		start = nil
	case !slot.exists:
		res, err := pglogrepl.CreateReplicationSlot(ctx, s.repl, s.st.slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
			Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT",
		})
		if err != nil {
			return classify("create replication slot "+s.st.slot, err)
		}
		cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return fmt.Errorf("postgres: slot %s consistent point %q: %w", s.st.slot, res.ConsistentPoint, err)
		}
		s.log.Info("replication slot created (no snapshot)", "consistent_point", cp.String())
		slot = slotInfo{exists: true, confirmed: cp}
	}

	s.log.Debug("sync target", "target", target.String(), "confirmed", slot.confirmed.String())
	if s.mode == connector.ModeSync && slot.confirmed >= target && !s.incrBusy() {
		// Everything committed before target is at or before the slot's confirmed
		// point, so it was delivered (by the snapshot or an earlier run).
		return nil
	}
	return s.stream(ctx, start, slot.confirmed, target, emit)
}

// syncTarget is where the server's WAL ends now: every transaction committed so far
// has its commit record before it. The insert position is used, not the write
// position, which lags behind asynchronous commits.
//
// The target must also be flushed, or the walsender (which reads only flushed WAL)
// may never reach it on a quiet server: when the last record is not a commit (a
// running-transactions record, a non-transactional logical message), nothing flushes
// it until something else writes. So the position is read inside a transaction that
// takes an xid (txid_current(), no privilege needed) and commits with
// synchronous_commit on: its commit record comes after the target and is flushed,
// which flushes all WAL before it. pg_current_wal_flush_lsn() alone would not help,
// and a transaction without an xid writes no commit record. Where that transaction
// fails (a read-only server), the target is taken as before and the sync waits for
// the server's own flushes.
func (s *Source) syncTarget(ctx context.Context) (pglogrepl.LSN, error) {
	var lsn string
	var block int64
	const q = "SELECT pg_catalog.pg_current_wal_insert_lsn()::text, current_setting('wal_block_size')::int8"
	err := pgx.BeginTxFunc(ctx, s.conn, pgx.TxOptions{AccessMode: pgx.ReadWrite}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, q).Scan(&lsn, &block); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_catalog.txid_current()")
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		s.log.Debug("could not flush the WAL up to the sync target; taking it without", "err", err)
		if err := s.conn.QueryRow(ctx, q).Scan(&lsn, &block); err != nil {
			return 0, classify("read pg_current_wal_insert_lsn()", err)
		}
	}
	target, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		return 0, fmt.Errorf("postgres: parse wal lsn %q: %w", lsn, err)
	}
	// When the last record ends on a page boundary the insert position points past
	// the next page's header, where the walsender, which reports record ends, never
	// arrives while the server is idle. No record lives in a page header.
	const maxPageHeader = 40 // SizeOfXLogLongPHD
	if block > 0 {
		if off := pglogrepl.LSN(uint64(target) % uint64(block)); off <= maxPageHeader {
			target -= off
		}
	}
	return target, nil
}

// resumable returns the saved state of the interrupted snapshot that committed
// position sp is inside, when the snapshot can continue after it; otherwise nil and
// why not. Streaming after a resumed snapshot needs the slot it was taken with,
// still at its consistent point, so that every change since then is delivered.
func (s *Source) resumable(ctx context.Context, sp snapshotPos, slot slotInfo) (*snapState, string, error) {
	if s.state == nil {
		return nil, "the offset store keeps no source state", nil
	}
	st, err := s.loadSnapState(ctx)
	if err != nil {
		return nil, "", err
	}
	switch {
	case st == nil:
		return nil, "no saved snapshot state", nil
	case st.Version < snapStateVersion:
		return nil, "it was taken by an earlier connectd, which saved no chunk plan", nil
	case st.Epoch != sp.epoch || st.Slot != s.st.slot || st.Chunk == 0 || int(sp.table) >= len(st.Tables):
		return nil, "the saved snapshot state belongs to another snapshot", nil
	case s.st.snapshot == config.SnapshotInitialOnly:
		return st, "", nil // nothing streams after it: no slot needed
	case st.ConsistentPoint == "":
		return nil, "it was taken for initial_only, without a lasting slot", nil
	case !slot.exists:
		return nil, "its replication slot is gone", nil
	}
	cp, err := pglogrepl.ParseLSN(st.ConsistentPoint)
	if err != nil || slot.confirmed != cp {
		return nil, fmt.Sprintf("the slot is at %s, not at the snapshot's consistent point %s", slot.confirmed, st.ConsistentPoint), nil
	}
	return st, "", nil
}

// checkSlotNotAhead stops the connector when the slot has confirmed WAL beyond what
// the committed position start covers. The slot confirms only what is committed
// (a transaction's records, or a mark: position.go), so a slot further on was moved
// by someone else: advanced by hand (pg_replication_slot_advance), dropped and
// created again, or the offsets were restored from an older backup. Streaming from
// it would silently skip every change in between.
func (s *Source) checkSlotNotAhead(ctx context.Context, start record.Position, slot slotInfo) error {
	covered, ok := coveredLSN(start)
	if !ok {
		// A completed snapshot: the slot stays at its consistent point until the
		// stream commits something.
		sp, _ := parseSnapshotPos(start)
		st, err := s.loadSnapState(ctx)
		if err != nil {
			return err
		}
		if st == nil || st.Slot != s.st.slot || st.Epoch != sp.epoch || st.ConsistentPoint == "" {
			s.log.Debug("no saved consistent point for the completed snapshot; the slot's position cannot be checked")
			return nil
		}
		if covered, err = pglogrepl.ParseLSN(st.ConsistentPoint); err != nil {
			return nil
		}
	}
	if slot.confirmed <= covered {
		return nil
	}
	return permanentf("replication slot %s has confirmed WAL up to %s, but the committed position (%s) covers it only up to %s: "+
		"%d bytes of WAL in between were never delivered, and streaming would skip every change in them "+
		"(the slot was advanced by hand, dropped and created again, or the offsets were restored from an older backup); "+
		"those changes can no longer be read from the slot: run `connectd offsets reset %s` to take a new snapshot",
		s.st.slot, slot.confirmed, s.DescribePosition(start), covered, uint64(slot.confirmed-covered), s.st.name)
}

func (s *Source) slotGone(start record.Position) error {
	return permanentf("replication slot %s is gone; positions since %s are lost; run `connectd offsets reset` to snapshot again", s.st.slot, s.DescribePosition(start))
}

// open connects both connections, closing any left by an earlier Read.
func (s *Source) open(ctx context.Context) error {
	s.closeConns(ctx)
	conn, err := connect(ctx, s.st)
	if err != nil {
		return err
	}
	cat, err := newCatalog(ctx, conn)
	if err != nil {
		conn.Close(ctx)
		return err
	}
	if cat.version < 100000 {
		conn.Close(ctx)
		return permanentf("server version %d is too old: logical replication with pgoutput needs PostgreSQL 10 or later", cat.version)
	}
	repl, err := connectReplication(ctx, s.st)
	if err != nil {
		conn.Close(ctx)
		return err
	}
	s.conn, s.cat = conn, cat
	s.sendMu.Lock()
	s.repl, s.streaming = repl, false
	s.sendMu.Unlock()
	if s.shapes == nil {
		s.shapes = map[string]*tableShape{}
		s.warned = map[string]bool{}
	}
	return nil
}

// selectTables resolves the configured patterns, checks every table can be
// streamed, and builds the snapshot schemas.
func (s *Source) selectTables(ctx context.Context) ([]table, error) {
	all, err := s.cat.allTables(ctx)
	if err != nil {
		return nil, err
	}
	tables, perPattern, err := matchTables(all, s.st.tables)
	if err != nil {
		return nil, err
	}
	for i, hits := range perPattern {
		if len(hits) == 0 {
			s.log.Warn("pattern matches no table yet; tables created later that match are picked up while streaming", "pattern", s.st.tables[i])
		}
	}
	var problems []error
	names := make([]string, len(tables))
	s.selected = map[string]bool{}
	s.tables = map[string]table{}
	s.selGen++
	for i, t := range tables {
		names[i] = t.qualified()
		s.selected[names[i]] = true
		s.tables[names[i]] = t
		cols, err := s.cat.columns(ctx, t)
		if err != nil {
			return nil, err
		}
		key, err := keyColumns(t, cols)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		sh, err := s.cat.shape(ctx, t.schema, t.name, cols, key)
		if err != nil {
			return nil, err
		}
		s.adoptShape(sh)
	}
	if len(problems) > 0 {
		return nil, connector.Permanent(errors.Join(problems...))
	}
	s.mu.Lock()
	s.tableNames = names
	s.mu.Unlock()
	return tables, nil
}

// adoptShape makes sh the table's current shape, keeping the previous *Schema when
// nothing changed and counting versions otherwise. It returns the shape in use.
func (s *Source) adoptShape(sh *tableShape) *tableShape {
	name := sh.schema.QualifiedName()
	if old, ok := s.shapes[name]; ok {
		if sameShape(old.schema, sh.schema) {
			return old
		}
		sh.schema.Version = old.schema.Version + 1
		s.log.Info("schema changed", "table", name, "version", sh.schema.Version)
	}
	for i, known := range sh.known {
		col := sh.schema.Columns[i]
		if key := name + "." + col.Name; !known && !s.warned[key] {
			s.warned[key] = true
			s.log.Warn("column type has no mapping; its values are kept as the server's text", "table", name, "column", col.Name, "type", col.SourceType)
		}
	}
	s.shapes[name] = sh
	return sh
}

// Ack confirms to the slot the end of every transaction delivered up to pos. A
// failed send is only logged: the keeper retries while the connection lives, and
// after a restart the skip of already delivered records makes a late confirm safe.
func (s *Source) Ack(ctx context.Context, pos record.Position) error {
	if s.ack.ack(pos) {
		if err := s.sendStatus(ctx, false); err != nil {
			s.log.Warn("confirming to the slot failed; it will be retried", "err", err)
		}
	}
	return nil
}

// sendStatus reports the confirmable LSN (as written, flushed and applied).
func (s *Source) sendStatus(ctx context.Context, reply bool) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if !s.streaming || s.closed || s.repl == nil {
		return nil
	}
	lsn := s.ack.confirmed()
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn, ReplyRequested: reply,
	})
	if err != nil {
		return fmt.Errorf("postgres: send standby status update (confirm %s): %w", lsn, err)
	}
	s.statusSent.Add(1)
	return nil
}

// keeperInterval is how often the keeper reports: every statusInterval, or a third
// of the server's wal_sender_timeout when that is shorter.
func (s *Source) keeperInterval(ctx context.Context) time.Duration {
	var ms int64
	err := s.conn.QueryRow(ctx, "SELECT setting::int8 FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout'").Scan(&ms)
	if err != nil || ms <= 0 {
		return statusInterval
	}
	return min(statusInterval, max(100*time.Millisecond, time.Duration(ms)*time.Millisecond/3))
}

// startKeeper runs the goroutine that reports status every interval until Close.
func (s *Source) startKeeper(interval time.Duration) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.keeperOn || s.closed {
		return
	}
	s.keeperOn = true
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if err := s.sendStatus(context.Background(), false); err != nil {
					s.log.Debug("periodic status update failed", "err", err)
				}
			}
		}
	}()
}

// Close closes both connections. The slot and the publication stay: they are the
// connector's position on the server.
func (s *Source) Close(ctx context.Context) error {
	s.sendMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.sendMu.Unlock()
	s.closeConns(ctx)
	return nil
}

func (s *Source) closeConns(ctx context.Context) {
	s.sendMu.Lock()
	repl := s.repl
	s.repl, s.streaming = nil, false
	s.sendMu.Unlock()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if repl != nil {
		_ = repl.Close(cctx)
	}
	if s.conn != nil {
		_ = s.conn.Close(cctx)
		s.conn = nil
	}
}
