package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// batchSize bounds the records handed to emit at once (snapshot and stream).
const batchSize = 1000

// defaultSnapshotChunk is how many rows one snapshot query reads. The config has no
// key for it (Config); a resumed snapshot re-reads nothing already
// committed, so the chunk size only sets how long one query runs.
const defaultSnapshotChunk = 50000

// snapStateKey names the snapshot's saved state in the connector's state store.
const snapStateKey = "mysql-snapshot"

// snapState is what a snapshot saves before it emits its first record, so that a
// restart inside it can resume instead of starting again: where the stream starts
// (fixed for the snapshot's life), the commit_ts its records carry, the chunk size
// and the table ordinals of its positions.
type snapState struct {
	Version  int         `json:"version"`
	Epoch    uint32      `json:"epoch"`
	File     string      `json:"file"`
	Offset   uint64      `json:"offset"`
	GTID     string      `json:"gtid"`
	CommitTS time.Time   `json:"commit_ts"`
	Chunk    uint32      `json:"chunk"`
	Tables   [][2]string `json:"tables"` // ordinal -> database, table
	// Complete says the snapshot finished but no record was left after the committed
	// position to carry the completion marker: every table was empty, or the rows
	// still to read were deleted before a resume. Without it nothing would say the
	// snapshot is done, and the next run would take another one, folding the changes
	// made since into 'r' rows (and losing deletes).
	Complete bool `json:"complete,omitempty"`
}

func (st *snapState) start() coords { return coords{file: st.File, offset: st.Offset, gtid: st.GTID} }

func (st *snapState) table(i uint32) tableName {
	return tableName{db: st.Tables[i][0], name: st.Tables[i][1]}
}

func (s *Source) loadSnapState(ctx context.Context) (*snapState, error) {
	if s.state == nil {
		return nil, nil
	}
	data, err := s.state.Load(ctx, snapStateKey)
	if err != nil {
		return nil, fmt.Errorf("mysql: load snapshot state: %w", err)
	}
	if len(data) == 0 {
		return nil, nil
	}
	var st snapState
	if err := json.Unmarshal(data, &st); err != nil {
		s.log.Warn("saved snapshot state is unreadable; ignoring it", "err", err)
		return nil, nil
	}
	if st.Version != 1 {
		return nil, nil
	}
	return &st, nil
}

func (s *Source) saveSnapState(ctx context.Context, st *snapState) error {
	if s.state == nil {
		return nil
	}
	data := []byte("{}") // cleared
	if st != nil {
		var err error
		if data, err = json.Marshal(st); err != nil {
			return fmt.Errorf("mysql: encode snapshot state: %w", err)
		}
	}
	if err := s.state.Save(ctx, snapStateKey, data); err != nil {
		return fmt.Errorf("mysql: save snapshot state: %w", err)
	}
	return nil
}

// snapshotThenStream takes a new consistent snapshot, reads every selected table in
// it, then streams from the binlog coordinates of that snapshot.
func (s *Source) snapshotThenStream(ctx context.Context, epoch uint32, target *coords, emit connector.EmitFunc) error {
	s.status.SetPhase("snapshot")
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return classify("open snapshot connection", err)
	}
	defer conn.Close()
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	start, ts, base, err := s.snapshotWithDefinitions(ctx, conn)
	if err != nil {
		return err
	}
	s.log.Info("consistent snapshot taken", "binlog", start.String(), "at", ts.Format(time.RFC3339Nano), "epoch", epoch)
	if err := s.hist.reset(ctx, base); err != nil {
		return err
	}
	if s.cat, err = s.hist.replay(s.st); err != nil {
		return err
	}
	if err := s.saveSelection(ctx); err != nil {
		return err
	}
	s.schemas = map[tableName]*tableSchema{} // built from the catalog just replaced
	st := &snapState{Version: 1, Epoch: epoch, File: start.file, Offset: start.offset, GTID: start.gtid,
		CommitTS: ts.UTC().Truncate(time.Microsecond), Chunk: s.chunk}
	for _, e := range base {
		d, err := parseDDL(e.SQL, e.DB)
		if err == nil && d.kind == stmtCreate && s.st.selected(d.table) {
			st.Tables = append(st.Tables, [2]string{d.table.db, d.table.name})
		}
	}
	if len(st.Tables) == 0 {
		s.log.Warn("no table matches the tables patterns", "patterns", fmt.Sprint(s.st.patterns))
	}
	if s.state == nil {
		s.log.Warn("the offset store keeps no source state: if this snapshot is interrupted it is taken again from the start")
	}
	// Saved before the first record goes out: a committed snapshot position is only
	// usable together with it.
	if err := s.saveSnapState(ctx, st); err != nil {
		return err
	}
	if err := s.readSnapshot(ctx, conn, st, nil, nil, nil, emit); err != nil {
		return err
	}
	return s.afterSnapshot(ctx, st, target, emit)
}

// snapshotWithDefinitions opens the consistent snapshot on conn and reads the
// table definitions it starts with, taking it again while DDL on the tracked
// databases ran in between (see ddlSince).
func (s *Source) snapshotWithDefinitions(ctx context.Context, conn *sql.Conn) (coords, time.Time, []histEntry, error) {
	for attempt := 1; ; attempt++ {
		start, ts, err := s.beginSnapshot(ctx, conn, true)
		if err != nil {
			return coords{}, time.Time{}, nil, err
		}
		if s.beforeDefinitions != nil {
			s.beforeDefinitions(attempt)
		}
		base, err := s.baseDefinitions(ctx, conn)
		if err != nil {
			return coords{}, time.Time{}, nil, err
		}
		stmt, err := s.ddlSince(ctx, start)
		if err != nil {
			return coords{}, time.Time{}, nil, err
		}
		if stmt == "" {
			return start, ts, base, nil
		}
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			return coords{}, time.Time{}, nil, classify("end snapshot transaction", err)
		}
		if attempt == snapshotAttempts {
			return coords{}, time.Time{}, nil, fmt.Errorf("mysql: DDL on the tracked databases ran while each of %d snapshots read its table definitions (last: %s); retrying later", attempt, stmt)
		}
		s.log.Warn("a DDL ran between taking the snapshot and reading the table definitions; taking the snapshot again", "statement", stmt, "attempt", attempt)
	}
}

// afterSnapshot streams from where a complete snapshot began, unless the config or
// the sync target says to stop.
func (s *Source) afterSnapshot(ctx context.Context, st *snapState, target *coords, emit connector.EmitFunc) error {
	if s.st.snapshot == config.SnapshotInitialOnly {
		return nil
	}
	start := st.start()
	if target != nil && !before(start, *target) {
		return nil
	}
	return s.stream(ctx, start, nil, target, emit)
}

// resumeSnapshot continues the interrupted snapshot st after the committed position
// from, inside a new consistent-snapshot transaction, then streams from where the
// original snapshot began. Rows read now may be newer than the snapshot's point, but
// every change since that point comes again from the binlog, with positions after
// every snapshot position (README: "Resuming an interrupted snapshot"). restart is
// true when the snapshot cannot continue and must be taken again.
func (s *Source) resumeSnapshot(ctx context.Context, st *snapState, from decodedPos, target *coords, emit connector.EmitFunc) (restart bool, err error) {
	found, err := s.hist.load(ctx, from.prefix)
	if err != nil {
		return false, err
	}
	if !found {
		s.log.Warn("the interrupted snapshot cannot be resumed: no schema history stored")
		return true, nil
	}
	if s.cat, err = s.hist.replay(s.st); err != nil {
		return false, err
	}
	s.schemas = map[tableName]*tableSchema{}
	s.status.SetPhase("snapshot")
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, classify("open snapshot connection", err)
	}
	defer conn.Close()
	now, _, err := s.beginSnapshot(ctx, conn, true)
	if err != nil {
		return false, err
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") }()
	// The records keep the schema of the snapshot's point; a table whose definition
	// changed since cannot be read under it.
	gone := map[tableName]bool{}
	for i := from.table; i < uint32(len(st.Tables)); i++ {
		t := st.table(i)
		ddl, err := showCreate(ctx, conn, t)
		if err != nil {
			return false, err
		}
		if ddl == "" {
			gone[t] = true
			continue
		}
		then, err := s.schemaOf(t)
		if err != nil {
			s.log.Warn("the interrupted snapshot cannot be resumed: a table's definition is unknown", "table", t.String(), "err", err)
			return true, nil
		}
		d, err := parseDDL(ddl, t.db)
		if err != nil || d.kind != stmtCreate {
			s.log.Warn("the interrupted snapshot cannot be resumed: the current definition of a table does not parse", "table", t.String(), "err", err)
			return true, nil
		}
		now, err := buildSchema(t, d.def, s.st.types)
		if err != nil || now.schema.Fingerprint() != then.schema.Fingerprint() || !sameSourceTypes(now.schema, then.schema) {
			s.log.Warn("the interrupted snapshot cannot be resumed: a table it has still to read changed its definition since the snapshot began", "table", t.String())
			return true, nil
		}
	}
	changed, err := s.changedSince(ctx, st, from.table, now)
	if err != nil {
		return false, err
	}
	if changed == nil {
		return true, nil
	}
	after := from.prefix
	if from.key != nil {
		after = withKey(from.prefix, from.key)
	}
	s.log.Info("resuming the interrupted snapshot", "after", describePos(after), "epoch", st.Epoch, "stream_from", st.start().String(),
		"keys_left_to_the_stream", changed.size())
	if err := s.readSnapshot(ctx, conn, st, &from, gone, changed, emit); err != nil {
		return false, err
	}
	return false, s.afterSnapshot(ctx, st, target, emit)
}

// beginSnapshot opens a consistent-snapshot transaction on conn and, when withPos,
// returns the binlog coordinates it corresponds to and the server time.
func (s *Source) beginSnapshot(ctx context.Context, conn *sql.Conn, withPos bool) (coords, time.Time, error) {
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
	switch {
	case !withPos:
		if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return coords{}, time.Time{}, classify("START TRANSACTION WITH CONSISTENT SNAPSHOT", err)
		}
		return coords{}, time.Time{}, nil
	case s.flavor == "mariadb":
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
				_, _ = fmt.Sscan(v, &start.offset) // a bad value leaves 0, which the position check refuses
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
	default:
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

// snapSink collects snapshot records and emits them in batches, one record behind,
// so that the snapshot's very last record can still become the completion marker.
// The last record of every emitted batch carries its key (a resume point).
type snapSink struct {
	ctx     context.Context
	emit    connector.EmitFunc
	pending []record.Record
	keys    [][][]byte // the key of each pending record; nil for a table read in one piece
}

func (k *snapSink) add(r record.Record, key [][]byte) error {
	k.pending = append(k.pending, r)
	k.keys = append(k.keys, key)
	if len(k.pending) <= batchSize {
		return nil
	}
	n := len(k.pending) - 1
	batch := k.pending[:n]
	if key := k.keys[n-1]; key != nil {
		batch[n-1].Pos = withKey(batch[n-1].Pos, key)
	}
	if err := k.emit(k.ctx, batch); err != nil {
		return err
	}
	last, lastKey := k.pending[n], k.keys[n]
	k.pending = append(make([]record.Record, 0, batchSize+1), last)
	k.keys = append(make([][][]byte, 0, batchSize+1), lastKey)
	return nil
}

// readSnapshot reads the tables of st (after the committed position from, when
// resuming) on conn, whose consistent-snapshot transaction it ends, and marks the
// snapshot complete.
func (s *Source) readSnapshot(ctx context.Context, conn *sql.Conn, st *snapState, from *decodedPos, gone map[tableName]bool, changed keySet, emit connector.EmitFunc) error {
	sink := &snapSink{ctx: ctx, emit: emit}
	started := time.Now()
	var total int64
	for i := range st.Tables {
		ord := uint32(i)
		var resume *decodedPos
		if from != nil {
			if ord < from.table {
				continue
			}
			if ord == from.table {
				resume = from
			}
		}
		t := st.table(ord)
		if !s.st.selected(t) {
			s.log.Warn("a table of the interrupted snapshot is no longer selected; its remaining rows are not read", "table", t.String())
			continue
		}
		if _, ok := s.cat.tables[t]; !ok || gone[t] {
			s.log.Warn("a table of the interrupted snapshot no longer exists; its remaining rows are not read", "table", t.String())
			continue
		}
		n, err := s.snapshotTable(ctx, conn, sink, st, ord, t, resume, changed[t.String()])
		if err != nil {
			return err
		}
		total += n
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return classify("end snapshot transaction", err)
	}
	if n := len(sink.pending); n > 0 {
		sink.pending[n-1].Pos = markSnapshotDone(sink.pending[n-1].Pos, st.start())
		if err := emit(ctx, sink.pending); err != nil {
			return err
		}
	} else {
		// Nothing left to carry the marker: say so in the state, so that the next
		// run streams from the snapshot's point instead of snapshotting again.
		st.Complete = true
		if err := s.saveSnapState(ctx, st); err != nil {
			return err
		}
		s.mu.Lock()
		s.completeInState = true
		s.mu.Unlock()
	}
	s.log.Info("snapshot complete", "tables", len(st.Tables), "rows", total, "elapsed", time.Since(started).Round(time.Millisecond))
	return nil
}

// chunkable lists the column types a snapshot can page through in key order: those
// whose comparison with a literal orders exactly as ORDER BY does. Tables keyed on
// anything else (ENUM orders by index, FLOAT compares approximately) are read in
// one piece.
var chunkable = map[string]bool{
	"bool": true, "tinyint": true, "smallint": true, "mediumint": true, "int": true, "bigint": true, "serial": true,
	"year": true, "decimal": true, "char": true, "varchar": true, "binary": true, "varbinary": true,
	"date": true, "datetime": true, "timestamp": true,
}

// chunkKey returns the schema indexes of the primary-key columns in key order, or
// nil when the table must be read in one piece.
func chunkKey(sch *tableSchema, def *tableDef) []int {
	if len(def.Key) == 0 {
		return nil
	}
	out := make([]int, 0, len(def.Key))
	for _, k := range def.Key {
		i := def.index(k)
		if i < 0 || !chunkable[sch.cols[i].base] {
			return nil
		}
		out = append(out, i)
	}
	return out
}

var (
	intText = regexp.MustCompile(`^-?[0-9]+$`)
	decText = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

// afterKey is the WHERE condition "key > vals" in key order, written so that the
// range optimizer uses the primary key: k1 >= v1 AND (k1 > v1 OR k1 = v1 AND k2 > v2 ...).
// Numbers are written as literals (a string compared with an integer column would be
// compared as a double); other values are parameters, interpolated by the driver.
func afterKey(sch *tableSchema, key []int, vals [][]byte) (string, []any, error) {
	lits := make([]string, len(key))
	vargs := make([]any, len(key))
	for j, i := range key {
		v := vals[j]
		switch ct := sch.cols[i]; {
		case ct.base == "decimal":
			if !decText.Match(v) {
				return "", nil, fmt.Errorf("resume key %q is not a decimal", v)
			}
			lits[j] = string(v)
		case ct.typ.Kind == record.KindBytes:
			lits[j], vargs[j] = "?", append([]byte(nil), v...)
		case ct.base == "char" || ct.base == "varchar" || ct.base == "date" || ct.base == "datetime" || ct.base == "timestamp":
			lits[j], vargs[j] = "?", string(v)
		default:
			if !intText.Match(v) {
				return "", nil, fmt.Errorf("resume key %q is not an integer", v)
			}
			lits[j] = string(v)
		}
	}
	var args []any
	lit := func(j int) string {
		if lits[j] == "?" {
			args = append(args, vargs[j])
		}
		return lits[j]
	}
	col := func(j int) string { return quoteIdent(sch.schema.Columns[key[j]].Name) }
	var b strings.Builder
	if len(key) > 1 {
		b.WriteString(col(0) + " >= " + lit(0) + " AND (")
	}
	for j := range key {
		if j > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(")
		for k := 0; k < j; k++ {
			b.WriteString(col(k) + " = " + lit(k) + " AND ")
		}
		b.WriteString(col(j) + " > " + lit(j) + ")")
	}
	if len(key) > 1 {
		b.WriteString(")")
	}
	return b.String(), args, nil
}

// snapshotTable reads one table, chunk by chunk in primary-key order, from the start
// or after the committed position from. It returns the rows it read.
func (s *Source) snapshotTable(ctx context.Context, conn *sql.Conn, sink *snapSink, st *snapState, ordinal uint32, t tableName,
	from *decodedPos, changed map[string]bool) (int64, error) {
	sch, err := s.schemaOf(t)
	if err != nil {
		return 0, err
	}
	key := chunkKey(sch, s.cat.tables[t])
	name := t.String()
	chunk, row := uint32(0), uint32(0)
	var after [][]byte
	if from != nil {
		if key != nil && len(from.key) == len(key) {
			chunk, row, after = from.chunk, from.row, from.key
		} else {
			// Without a key there is no telling which rows were delivered: read the
			// table again under a higher chunk number, so no position repeats.
			chunk = from.chunk + 1
			s.log.Warn("the snapshot was interrupted inside a table read in one piece (no usable primary key); reading that table again, so its rows delivered before the interruption appear twice (with new positions)",
				"table", name, "chunk", from.chunk, "row", from.row)
		}
	}
	var total int64
	_ = conn.QueryRowContext(ctx, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.db, t.name).Scan(&total)
	sel := selectAll(sch, t)
	var order string
	if key != nil {
		ks := make([]string, len(key))
		for j, i := range key {
			ks[j] = quoteIdent(sch.schema.Columns[i].Name)
		}
		order = " ORDER BY " + strings.Join(ks, ", ")
	}
	read := int64(chunk)*int64(st.Chunk) + int64(row)
	r := &chunkReader{s: s, sink: sink, sch: sch, key: key, epoch: st.Epoch, ordinal: ordinal, commit: st.CommitTS, name: name, total: total,
		changed: changed}
	for {
		q, args := sel, []any(nil)
		limit := uint32(math.MaxUint32)
		if key != nil {
			if row >= st.Chunk {
				chunk, row = chunk+1, 0
			}
			limit = st.Chunk - row
			if after != nil {
				cond, a, err := afterKey(sch, key, after)
				if err != nil {
					return 0, connector.Permanent(fmt.Errorf("mysql: snapshot %s: %w", name, err))
				}
				q, args = q+" WHERE "+cond, a
			}
			q += order + " LIMIT " + strconv.FormatUint(uint64(limit), 10)
		}
		r.read = read
		n, last, err := r.query(ctx, conn, q, args, chunk, row)
		if err != nil {
			return 0, err
		}
		read += int64(n)
		s.status.SnapshotProgress(name, read, max(total, read))
		if key == nil || n < limit {
			break
		}
		after = last
		chunk, row = chunk+1, 0
	}
	s.log.Info("table snapshot read", "table", name, "rows", read)
	return read, nil
}

// selectAll is the query reading every column of t in the form fromText decodes;
// verify's scan (verify.go) reads with it too.
func selectAll(sch *tableSchema, t tableName) string {
	cols := make([]string, len(sch.cols))
	for i, c := range sch.schema.Columns {
		cols[i] = quoteIdent(c.Name)
		if sch.cols[i].typ.Kind == record.KindFloat32 {
			// FLOAT prints with 6 digits; widened to DOUBLE it prints exactly.
			cols[i] = cols[i] + " + 0e0"
		}
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteName(t)
}

// chunkReader turns the rows of one snapshot query into records.
type chunkReader struct {
	s              *Source
	sink           *snapSink
	sch            *tableSchema
	key            []int
	epoch, ordinal uint32
	commit         time.Time
	name           string
	read, total    int64 // rows of the table before this query, estimated rows
	// changed holds the keys (keyString) the binlog changed between the snapshot's
	// point and a resumed read: the stream delivers them, the snapshot must not.
	changed map[string]bool
}

// query reads the rows of q, numbering them after row in chunk; it returns how many
// it read and the key of the last one.
func (r *chunkReader) query(ctx context.Context, conn *sql.Conn, q string, args []any, chunk, row uint32) (uint32, [][]byte, error) {
	rows, err := conn.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, nil, classify("snapshot "+r.name, err)
	}
	defer rows.Close()
	raw := make([]sql.RawBytes, len(r.sch.cols))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	var n uint32
	var last [][]byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, nil, classify("snapshot "+r.name, err)
		}
		after := make([]record.Value, len(raw))
		for i, b := range raw {
			if b == nil {
				continue
			}
			v, w, err := r.sch.cols[i].fromText(b)
			if err != nil {
				return 0, nil, connector.Permanent(fmt.Errorf("mysql: snapshot %s column %s: %w", r.name, r.sch.schema.Columns[i].Name, err))
			}
			if w != warnNone {
				r.s.warnValue(r.sch, i, w)
			}
			after[i] = v
		}
		var key [][]byte
		if r.key != nil {
			key = make([][]byte, len(r.key))
			for j, i := range r.key {
				key[j] = append([]byte{}, raw[i]...)
			}
			last = key
		}
		if row == math.MaxUint32 {
			// A table read in one piece with more rows than a chunk can number.
			chunk, row = chunk+1, 0
		}
		row++
		n++
		if n%batchSize == 0 {
			done := r.read + int64(n)
			r.s.status.SnapshotProgress(r.name, done, max(r.total, done))
		}
		if len(r.changed) > 0 && len(r.sch.key) > 0 && r.changed[keyString(r.sch.key, after)] {
			continue
		}
		rec := record.Record{Op: record.OpRead, Schema: r.sch.schema, After: after,
			Pos: snapshotPos(r.epoch, r.ordinal, chunk, row), CommitTS: r.commit}
		if err := r.sink.add(rec, key); err != nil {
			return 0, nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, classify("snapshot "+r.name, err)
	}
	return n, last, nil
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
