package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// batchSize bounds the records handed to emit at once (snapshot and stream).
const batchSize = 1000

// snapshotThenStream reads every selected table inside one consistent snapshot, then
// streams from the binlog coordinates of that snapshot.
func (s *Source) snapshotThenStream(ctx context.Context, epoch uint32, target *coords, emit connector.EmitFunc) error {
	s.status.SetPhase("snapshot")
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return classify("open snapshot connection", err)
	}
	defer conn.Close()
	start, ts, err := s.beginSnapshot(ctx, conn)
	if err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	s.log.Info("consistent snapshot taken", "binlog", start.String(), "at", ts.Format(time.RFC3339Nano))

	base, err := s.baseDefinitions(ctx, conn)
	if err != nil {
		return err
	}
	if err := s.hist.reset(ctx, base); err != nil {
		return err
	}
	if s.cat, err = s.hist.replay(s.st.tracked); err != nil {
		return err
	}
	var tables []tableName
	for _, e := range base {
		d, err := parseDDL(e.SQL, e.DB)
		if err == nil && d.kind == stmtCreate && s.st.selected(d.table) {
			tables = append(tables, d.table)
		}
	}
	if len(tables) == 0 {
		s.log.Warn("no table matches the tables patterns", "patterns", fmt.Sprint(s.st.patterns))
	}

	var pending []record.Record
	for i, t := range tables {
		if err := s.snapshotTable(ctx, conn, epoch, uint32(i), t, ts, &pending, emit); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return classify("end snapshot transaction", err)
	}
	if n := len(pending); n > 0 {
		pending[n-1].Pos = markSnapshotDone(pending[n-1].Pos, start)
		if err := emit(ctx, pending); err != nil {
			return err
		}
	}
	s.log.Info("snapshot complete", "tables", len(tables))
	if s.st.snapshot == config.SnapshotInitialOnly {
		return nil
	}
	if target != nil && !before(start, *target) {
		return nil
	}
	return s.stream(ctx, start, nil, target, emit)
}

// beginSnapshot opens a consistent-snapshot transaction on conn and returns the
// binlog coordinates it corresponds to and the server time.
func (s *Source) beginSnapshot(ctx context.Context, conn *sql.Conn) (coords, time.Time, error) {
	for _, q := range []string{
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		// Under backpressure the client may not read for a while; do not let the
		// server give up on the result set.
		"SET SESSION net_write_timeout = 86400",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return coords{}, time.Time{}, classify(q, err)
		}
	}
	var start coords
	if s.flavor == "mariadb" {
		// MariaDB reports the binlog position matching the snapshot, no lock needed.
		if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return coords{}, time.Time{}, classify("START TRANSACTION WITH CONSISTENT SNAPSHOT", err)
		}
		rows, err := conn.QueryContext(ctx, "SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			return coords{}, time.Time{}, classify("SHOW STATUS LIKE 'binlog_snapshot_%'", err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return coords{}, time.Time{}, classify("read binlog_snapshot status", err)
			}
			switch strings.ToLower(k) {
			case "binlog_snapshot_file":
				start.file = v
			case "binlog_snapshot_position":
				fmt.Sscan(v, &start.offset)
			}
		}
		rows.Close()
		if start.file == "" {
			return coords{}, time.Time{}, connector.Permanent(errors.New("mysql: the server reports no binlog_snapshot_file: is the binary log on?"))
		}
		var g sql.NullString
		if err := conn.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", start.file, start.offset).Scan(&g); err != nil {
			return coords{}, time.Time{}, classify("BINLOG_GTID_POS", err)
		}
		start.gtid = g.String
	} else {
		// MySQL: block commits just long enough to pair the snapshot with a position.
		if _, err := conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
			return coords{}, time.Time{}, classify("FLUSH TABLES WITH READ LOCK (needs the RELOAD privilege)", err)
		}
		_, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
		if err == nil {
			start, err = masterStatus(ctx, conn)
		}
		if _, uerr := conn.ExecContext(ctx, "UNLOCK TABLES"); err == nil && uerr != nil {
			err = classify("UNLOCK TABLES", uerr)
		}
		if err != nil {
			return coords{}, time.Time{}, classify("take consistent snapshot", err)
		}
	}
	var ts time.Time
	var raw string
	if err := conn.QueryRowContext(ctx, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f')").Scan(&raw); err != nil {
		return coords{}, time.Time{}, classify("read snapshot time", err)
	}
	ts, err := time.ParseInLocation("2006-01-02 15:04:05.000000", raw, time.UTC)
	if err != nil {
		return coords{}, time.Time{}, fmt.Errorf("mysql: snapshot time %q: %w", raw, err)
	}
	return start, ts, nil
}

// snapshotTable reads one table. Records are emitted in batches, one batch behind,
// so the very last record of the snapshot can still become the completion marker.
func (s *Source) snapshotTable(ctx context.Context, conn *sql.Conn, epoch, ordinal uint32, t tableName, ts time.Time,
	pending *[]record.Record, emit connector.EmitFunc) error {
	sch, err := s.schemaOf(t)
	if err != nil {
		return err
	}
	var total int64
	_ = conn.QueryRowContext(ctx, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.db, t.name).Scan(&total)
	cols := make([]string, len(sch.cols))
	for i, c := range sch.schema.Columns {
		cols[i] = quoteIdent(c.Name)
		if sch.cols[i].typ.Kind == record.KindFloat32 {
			// FLOAT prints with 6 digits; widened to DOUBLE it prints exactly.
			cols[i] = cols[i] + " + 0e0"
		}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteName(t)
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return classify("snapshot "+t.String(), err)
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	commit := ts.UTC().Truncate(time.Microsecond)
	var n uint64
	name := t.String()
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return classify("snapshot "+name, err)
		}
		after := make([]record.Value, len(raw))
		for i, b := range raw {
			if b == nil {
				continue
			}
			v, w, err := sch.cols[i].fromText(b)
			if err != nil {
				return connector.Permanent(fmt.Errorf("mysql: snapshot %s column %s: %w", name, sch.schema.Columns[i].Name, err))
			}
			if w != warnNone {
				s.warnValue(sch, i, w)
			}
			after[i] = v
		}
		n++
		*pending = append(*pending, record.Record{Op: record.OpRead, Schema: sch.schema, After: after,
			Pos: snapshotPos(epoch, ordinal, n), CommitTS: commit})
		if len(*pending) > batchSize {
			last := (*pending)[len(*pending)-1]
			if err := emit(ctx, (*pending)[:len(*pending)-1]); err != nil {
				return err
			}
			*pending = []record.Record{last}
			s.status.SnapshotProgress(name, int64(n), total)
		}
	}
	if err := rows.Err(); err != nil {
		return classify("snapshot "+name, err)
	}
	s.status.SnapshotProgress(name, int64(n), max(total, int64(n)))
	s.log.Info("table snapshot read", "table", name, "rows", n)
	return nil
}

// before reports whether binlog coordinates a come before b.
func before(a, b coords) bool {
	fa, err1 := fileNumber(a.file)
	fb, err2 := fileNumber(b.file)
	if err1 != nil || err2 != nil {
		return a.file < b.file || a.file == b.file && a.offset < b.offset
	}
	return fa < fb || fa == fb && a.offset < b.offset
}
