package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Tables that begin to match `tables` after the first snapshot (created later, or
// selected by an edited config) are snapshotted while the stream runs, with the
// watermark method (README: "Tables added later"):
//
//   - the table is added to the publication first, so its changes from then on are
//     in the stream;
//   - it is read in chunks in key order. For each chunk a low watermark is written
//     into the WAL (pg_logical_emit_message, transactional), then one statement reads
//     the chunk and writes it, as the body of the high watermark, into the WAL too;
//   - the stream sees low, then the table's changes, then high. Rows the stream
//     changed between the two are dropped from the chunk (the stream carries them,
//     newer); the rest become op r records at the high watermark's position.
//
// Because the chunk's rows travel inside the WAL, a replay after a crash re-reads
// exactly the same chunks with the same windows and gives the same records at the
// same positions. The slot never confirms past a low watermark whose chunk is not
// durable yet (acks.hold), so a replay always sees a whole window.

// incrStateKey names the saved state of the tables connectd covers.
const incrStateKey = "postgres.tables"

// watermarkPrefix is the logical message prefix of watermarks.
const watermarkPrefix = "connectd_watermark"

// maxIncrChunk bounds the rows of one chunk: a chunk is one WAL message and is held
// in memory by the walsender and by connectd.
const maxIncrChunk = 10000

// incrState is saved in the state store: which tables (by oid, so a table dropped
// and created again counts as new) are covered, and the snapshots still to run.
type incrState struct {
	Version int               `json:"version"`
	Known   map[string]uint32 `json:"known"`
	Queue   []incrTable       `json:"queue"` // the first is in progress
	// Taken and Done are the ids of the snapshots requested (request.go) that were
	// queued, and that were read completely; the last keepDone of each.
	Taken []string `json:"taken,omitempty"`
	Done  []string `json:"done,omitempty"`
}

// incrTable is one table's snapshot while streaming.
type incrTable struct {
	ID    string   `json:"id"` // names its watermarks
	Table string   `json:"table"`
	OID   uint32   `json:"oid"`
	Chunk uint32   `json:"chunk"`           // the next chunk to read
	After []string `json:"after,omitempty"` // the key the next chunk reads after
	Rows  int64    `json:"rows"`            // rows emitted so far
	// Where restricts a requested snapshot to the rows it matches (SQL, on the table).
	Where     string `json:"where,omitempty"`
	Requested bool   `json:"requested,omitempty"` // by `connectd snapshot`, not a new table
}

// watermark is the header line of a watermark message.
type watermark struct {
	Kind  string `json:"kind"` // low | high
	ID    string `json:"id"`
	Table string `json:"table"`
	Chunk uint32 `json:"chunk"`
	Nonce string `json:"nonce"` // which read of the chunk: the driver waits for its own
	// Limit is the chunk's row limit; 0: the whole table in one chunk (no key).
	Limit   uint32   `json:"limit,omitempty"`
	Columns []string `json:"columns,omitempty"` // high: the columns of each body line
	Order   []int    `json:"order,omitempty"`   // high: schema indexes of the key, in read order
}

// window is an open low watermark: the keys the stream changed since.
type window struct {
	table string
	lsn   pglogrepl.LSN // commit LSN of the low watermark's transaction
	keys  map[string]struct{}
	// truncated: every row read before is gone, and rows added after are in the
	// stream (drop the whole chunk). unknown: a change whose key is not known
	// (no key, or an unchanged TOASTed key column): read the chunk again.
	truncated, unknown bool
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Source) loadIncr(ctx context.Context) (*incrState, error) {
	if s.state == nil {
		return nil, nil
	}
	data, err := s.state.Load(ctx, incrStateKey)
	if err != nil {
		return nil, fmt.Errorf("postgres: load table state: %w", err)
	}
	if data == nil {
		return nil, nil
	}
	var st incrState
	if err := json.Unmarshal(data, &st); err != nil || st.Known == nil {
		s.log.Warn("saved table state is unreadable; taking the publication's tables as covered", "err", err)
		return nil, nil
	}
	return &st, nil
}

func (s *Source) saveIncr(ctx context.Context) error {
	if s.state == nil || s.incr == nil {
		return nil
	}
	data, err := json.Marshal(s.incr)
	if err != nil {
		return fmt.Errorf("postgres: encode table state: %w", err)
	}
	if err := s.state.Save(ctx, incrStateKey, data); err != nil {
		return fmt.Errorf("postgres: save table state: %w", err)
	}
	return nil
}

// planTables loads which tables are covered and queues a snapshot of each selected
// table that is not, before the publication is changed to include it. Without saved
// state (no state store, or a connector older than it), the tables already in the
// publication count as covered; on a first start every table does, since the
// initial snapshot (or snapshot: never) covers them.
func (s *Source) planTables(ctx context.Context, tables []table, pub publication, start record.Position) error {
	st, err := s.loadIncr(ctx)
	if err != nil {
		return err
	}
	if st == nil || start == nil {
		fresh := &incrState{Version: 1, Known: map[string]uint32{}}
		if st != nil { // the requests taken stay taken
			fresh.Taken, fresh.Done = st.Taken, st.Done
		}
		st = fresh
		for _, t := range tables {
			if start == nil || (pub.exists && (pub.allTables || pub.tables[t.oid])) {
				st.Known[t.qualified()] = t.oid
			}
		}
	}
	s.incr = st
	if len(st.Queue) > 0 {
		q := st.Queue[0]
		s.log.Info("the snapshot of a table added later continues", "table", q.Table, "chunk", q.Chunk, "rows", q.Rows, "queued", len(st.Queue))
	}
	return s.adoptTables(ctx, tables)
}

// coverAll marks every selected table covered: a new initial snapshot reads them.
func (s *Source) coverAll(ctx context.Context, tables []table) error {
	prev := s.incr
	s.incr = &incrState{Version: 1, Known: map[string]uint32{}}
	if prev != nil { // the requests taken stay taken
		s.incr.Taken, s.incr.Done = prev.Taken, prev.Done
	}
	for _, t := range tables {
		s.incr.Known[t.qualified()] = t.oid
	}
	return s.saveIncr(ctx)
}

// adoptTables queues a snapshot for each of tables not covered yet and saves the
// state. With snapshot: never the table is only streamed, as the first tables were.
func (s *Source) adoptTables(ctx context.Context, tables []table) error {
	changed := false
	for _, t := range tables {
		name := t.qualified()
		if oid, ok := s.incr.Known[name]; ok && oid == t.oid {
			continue
		}
		changed = true
		s.incr.Known[name] = t.oid
		q := s.incr.Queue[:0]
		for _, e := range s.incr.Queue {
			if e.Table != name {
				q = append(q, e)
			}
		}
		s.incr.Queue = q
		if s.st.snapshot == config.SnapshotNever {
			s.log.Warn("table newly selected; snapshot: never, so only its changes from now on are delivered", "table", name)
			continue
		}
		s.incr.Queue = append(s.incr.Queue, incrTable{ID: newID(), Table: name, OID: t.oid})
		s.log.Info("table newly selected; it is added to the publication and snapshotted while the stream runs", "table", name)
	}
	if !changed {
		return nil
	}
	return s.saveIncr(ctx)
}

// incrBusy reports whether a table snapshot is still to run.
func (s *Source) incrBusy() bool { return s.incr != nil && len(s.incr.Queue) > 0 }

// discover queues the snapshots requested since the last time (request.go), and reads
// the catalog for tables that began to match the patterns, makes them selected,
// queues their snapshots and adds them to the publication.
func (s *Source) discover(ctx context.Context) error {
	if err := s.takeRequests(ctx); err != nil {
		return err
	}
	all, err := s.cat.allTables(ctx)
	if err != nil {
		return err
	}
	matched, _, _ := matchTables(all, s.st.tables)
	var fresh []table
	for _, t := range matched {
		if oid, ok := s.incr.Known[t.qualified()]; !ok || oid != t.oid {
			fresh = append(fresh, t)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var problems []error
	for _, t := range fresh {
		cols, err := s.cat.columns(ctx, t)
		if err != nil {
			return err
		}
		key, err := keyColumns(t, cols)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		sh, err := s.cat.shape(ctx, t.schema, t.name, cols, key)
		if err != nil {
			return err
		}
		s.adoptShape(sh)
		s.tables[t.qualified()] = t
		s.selected[t.qualified()] = true
	}
	if len(problems) > 0 {
		return connector.Permanent(fmt.Errorf("a table created after the start matches `tables`: %w", errors.Join(problems...)))
	}
	s.selGen++
	if err := s.adoptTables(ctx, fresh); err != nil {
		return err
	}
	if changed, err := s.cat.ensurePublication(ctx, s.st.publication, matched); err != nil {
		return err
	} else if changed != "" {
		s.log.Info("publication "+changed, "publication", s.st.publication, "tables", len(matched))
	}
	return nil
}

// incrIdle reports whether no table snapshot is running or waiting.
func (st *streamer) incrIdle() bool {
	return !st.s.incrBusy() && st.inflight == "" && len(st.windows) == 0
}

// drive reads the next chunk of the table snapshot in progress, unless one is
// already on its way through the stream.
func (st *streamer) drive(ctx context.Context) error {
	s := st.s
	if !s.incrBusy() || st.inflight != "" {
		return nil
	}
	q := &s.incr.Queue[0]
	t, ok := s.tables[q.Table]
	sh := s.shapes[q.Table]
	if !ok || sh == nil || t.oid != q.OID {
		s.log.Warn("a table queued for a snapshot is no longer selected or was dropped; its snapshot is abandoned", "table", q.Table)
		return st.finishTable(ctx)
	}
	if s.cat.version < 140000 {
		return permanentf("table %s was selected after the first snapshot, and snapshotting it while streaming needs logical decoding messages (PostgreSQL 14 or later, server is %d); fix: run `connectd offsets reset` to take a new snapshot that includes it", q.Table, s.cat.version)
	}
	order, ok := st.orders[q.Table]
	if !ok {
		var err error
		if order, err = s.cat.keyOrder(ctx, t, sh); err != nil {
			return err
		}
		st.orders[q.Table] = order
	}
	if q.Chunk == 0 && q.After == nil {
		s.log.Info("snapshotting a table while streaming", "table", q.Table, "rows_estimate", t.estimate)
		s.status.SetPhase("streaming, snapshotting " + q.Table)
	}
	limit := uint32(0)
	if order != nil {
		limit = min(s.st.chunk, maxIncrChunk)
	}
	w := watermark{Kind: "low", ID: q.ID, Table: q.Table, Chunk: q.Chunk, Nonce: newID()}
	low, _ := json.Marshal(w)
	if _, err := s.conn.Exec(ctx, "SELECT pg_catalog.pg_logical_emit_message(true, '"+watermarkPrefix+"', $1::text)", string(low)); err != nil {
		return watermarkError(q.Table, err)
	}
	w.Kind, w.Limit, w.Order = "high", limit, order
	for _, c := range sh.schema.Columns {
		w.Columns = append(w.Columns, c.Name)
	}
	high, _ := json.Marshal(w)
	if _, err := s.conn.Exec(ctx, chunkSQL(t, sh, order, q.After, q.Where, limit), string(high)+"\n"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			s.log.Warn("a table being snapshotted was dropped; its snapshot is abandoned", "table", q.Table)
			return st.finishTable(ctx)
		}
		return watermarkError(q.Table, err)
	}
	st.inflight = w.Nonce
	return nil
}

func watermarkError(table string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" {
		return connector.Permanent(fmt.Errorf("postgres: snapshot of %s while streaming: %w; fix: GRANT EXECUTE ON FUNCTION pg_catalog.pg_logical_emit_message(boolean, text, text) TO the connector's role, and GRANT SELECT ON the table", table, err))
	}
	return classify("snapshot of "+table+" while streaming", err)
}

// chunkSQL reads one chunk in key order (or the whole table when order is nil) and
// writes it as the body of the high watermark ($1 is its header line): one line
// per row, COPY text format, each value its type's output text (format's %s), as
// pgoutput sends it.
func chunkSQL(t table, sh *tableShape, order []int, after []string, where string, limit uint32) string {
	cols := make([]string, len(sh.schema.Columns))
	fields := make([]string, len(cols))
	for i, c := range sh.schema.Columns {
		cols[i] = pgx.Identifier{c.Name}.Sanitize()
		v := "c." + cols[i]
		fields[i] = `CASE WHEN pg_catalog.num_nulls(` + v + `) > 0 THEN E'\\N' ELSE ` +
			`replace(replace(replace(replace(pg_catalog.format('%s', ` + v + `), E'\\', E'\\\\'), E'\n', E'\\n'), E'\r', E'\\r'), E'\t', E'\\t') END`
	}
	line := strings.Join(fields, ` || E'\t' || `)
	inner := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.ident()
	agg := "string_agg(" + line + ", E'\\n')"
	var conds []string
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	if order == nil && len(conds) > 0 {
		inner += " WHERE " + conds[0]
	}
	if order != nil {
		keys := make([]string, len(order))
		outer := make([]string, len(order))
		lits := make([]string, len(order))
		for j, i := range order {
			keys[j] = cols[i]
			outer[j] = "c." + cols[i]
			if j < len(after) {
				lits[j] = textLiteral(after[j]) + "::" + sh.schema.Columns[i].SourceType
			}
		}
		if after != nil {
			conds = append(conds, "("+strings.Join(keys, ", ")+") > ("+strings.Join(lits, ", ")+")")
		}
		if len(conds) > 0 {
			inner += " WHERE " + strings.Join(conds, " AND ")
		}
		inner += fmt.Sprintf(" ORDER BY %s LIMIT %d", strings.Join(keys, ", "), limit)
		agg = "string_agg(" + line + ", E'\\n' ORDER BY " + strings.Join(outer, ", ") + ")"
	}
	return "SELECT pg_catalog.pg_logical_emit_message(true, '" + watermarkPrefix + "', $1::text || coalesce(" + agg + ", '')) FROM (" + inner + ") AS c"
}

// finishTable ends the snapshot in progress and saves the state.
func (st *streamer) finishTable(ctx context.Context) error {
	s := st.s
	if q := s.incr.Queue[0]; q.Requested {
		s.incr.Done = lastN(append(s.incr.Done, q.ID), keepDone)
		s.log.Info("requested snapshot complete", "table", q.Table, "where", q.Where, "rows", q.Rows, "request", q.ID)
	}
	s.incr.Queue = s.incr.Queue[1:]
	if !s.incrBusy() {
		s.status.SetPhase("streaming")
	}
	return s.saveIncr(ctx)
}

// logicalMessage handles a pgoutput Message: watermarks; every other one is ignored.
func (st *streamer) logicalMessage(ctx context.Context, data []byte) error {
	var m logicalMsg
	if err := m.decode(data); err != nil {
		return fmt.Errorf("postgres: decode logical message: %w", err)
	}
	if m.prefix != watermarkPrefix || !m.transactional || !st.inTxn {
		return nil
	}
	header, body := m.content, []byte(nil)
	if i := bytes.IndexByte(header, '\n'); i >= 0 {
		header, body = header[:i], header[i+1:]
	}
	var w watermark
	if err := json.Unmarshal(header, &w); err != nil {
		st.s.log.Warn("ignoring a malformed watermark", "lsn", st.txLSN.String(), "err", err)
		return nil
	}
	key := fmt.Sprintf("%s/%d/%s", w.ID, w.Chunk, w.Nonce)
	switch w.Kind {
	case "low":
		st.windows[key] = &window{table: w.Table, lsn: st.txLSN, keys: map[string]struct{}{}}
		st.s.ack.hold(st.txLSN)
	case "high":
		win := st.windows[key]
		delete(st.windows, key)
		err := st.highWatermark(ctx, w, win, body)
		if win != nil {
			var until record.Position
			if n := len(st.pending); n > 0 {
				until = st.pending[n-1].Pos
			}
			st.s.ack.release(win.lsn, until)
		}
		return err
	}
	return nil
}

// highWatermark emits the rows of a chunk the stream did not change inside its
// window, and moves the table's snapshot on when the chunk is the one it waits for.
func (st *streamer) highWatermark(ctx context.Context, w watermark, win *window, body []byte) error {
	s := st.s
	if w.Nonce == st.inflight {
		st.inflight = ""
	}
	sh := s.shapes[w.Table]
	if sh == nil || !s.selected[w.Table] {
		return nil
	}
	cols := sh.schema.Columns
	retry := len(w.Columns) != len(cols)
	for i := 0; !retry && i < len(cols); i++ {
		retry = w.Columns[i] != cols[i].Name
	}
	if win == nil {
		// Only a window opened before the slot's restart point can be missing, and the
		// acks hold keeps that from happening; read the chunk again to be safe.
		retry = true
	}
	keyIdx := sh.schema.KeyIndexes()
	var lines, dropped int64
	var last []byte
	if !retry && len(body) > 0 {
		// A change without a known key could be any row of the chunk.
		retry = win.unknown
		for !retry && len(body) > 0 {
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			lines++
			last = line
			st.fields = pgvalue.SplitCopyLine(line, st.fields)
			if len(st.fields) != len(cols) {
				return connector.Permanent(fmt.Errorf("postgres: snapshot of %s while streaming: chunk %d row has %d fields, want %d", w.Table, w.Chunk, len(st.fields), len(cols)))
			}
			if win.truncated || win.has(rowKeyOf(st.fields, keyIdx, &st.keyBuf)) {
				dropped++
				continue
			}
			if st.skipNext() {
				continue
			}
			vals := st.vals.Take(len(cols))
			for i, f := range st.fields {
				raw, null := pgvalue.UnescapeCopyText(f)
				if null {
					continue
				}
				v, err := sh.codecs[i].DecodeWith(&st.alloc, raw)
				if err != nil {
					return connector.Permanent(fmt.Errorf("postgres: snapshot of %s while streaming, column %s at lsn %s: %w", w.Table, cols[i].Name, st.txLSN, err))
				}
				vals[i] = v
			}
			if err := st.add(ctx, record.Record{Op: record.OpRead, Schema: sh.schema, After: vals}); err != nil {
				return err
			}
		}
	}
	if dropped > 0 {
		s.log.Debug("chunk rows changed by the stream inside the window were dropped", "table", w.Table, "chunk", w.Chunk, "dropped", dropped)
	}
	if !s.incrBusy() {
		return nil
	}
	q := &s.incr.Queue[0]
	if q.ID != w.ID || w.Chunk < q.Chunk {
		return nil // an earlier read of a chunk, replayed: its records are out, nothing to move
	}
	if retry {
		s.log.Info("reading a chunk again: the stream changed the table inside its window", "table", w.Table, "chunk", w.Chunk)
		return nil
	}
	q.Chunk = w.Chunk + 1
	q.Rows += lines - dropped
	if last != nil && w.Order != nil {
		st.fields = pgvalue.SplitCopyLine(last, st.fields)
		q.After = make([]string, len(w.Order))
		for j, i := range w.Order {
			raw, _ := pgvalue.UnescapeCopyText(st.fields[i])
			q.After[j] = string(raw)
		}
	}
	s.status.SnapshotProgress(w.Table, q.Rows, max(s.tables[w.Table].estimate, q.Rows))
	if w.Limit == 0 || lines < int64(w.Limit) {
		s.log.Info("table snapshot while streaming complete", "table", w.Table, "rows", q.Rows, "chunks", q.Chunk)
		return st.finishTable(ctx)
	}
	return s.saveIncr(ctx)
}

func (w *window) has(key []byte) bool {
	_, ok := w.keys[string(key)]
	return ok
}

// rowKeyOf is the key of a chunk line (COPY fields) in the form watch builds
// from stream tuples: each key column's text, length-prefixed.
func rowKeyOf(fields [][]byte, keyIdx []int, buf *[]byte) []byte {
	b := (*buf)[:0]
	for _, i := range keyIdx {
		raw, _ := pgvalue.UnescapeCopyText(fields[i])
		b = binary.BigEndian.AppendUint32(b, uint32(len(raw)))
		b = append(b, raw...)
	}
	*buf = b
	return b
}

// watch records, in every open window of rel's table, the key of a changed row.
func (st *streamer) watch(rel *relation, cols []tupleCol) {
	if len(st.windows) == 0 {
		return
	}
	for _, win := range st.windows {
		if win.table != rel.name {
			continue
		}
		if cols == nil {
			win.truncated = true
			continue
		}
		if rel.rowKey {
			win.unknown = true
			continue
		}
		b, known := st.keyBuf[:0], true
		for _, i := range rel.key {
			if i >= len(cols) || cols[i].kind != 't' {
				known = false
				break
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(cols[i].data)))
			b = append(b, cols[i].data...)
		}
		st.keyBuf = b
		if !known {
			win.unknown = true
			continue
		}
		win.keys[string(b)] = struct{}{}
	}
}

// logicalMsg is a pgoutput logical decoding message; content aliases the buffer.
type logicalMsg struct {
	transactional bool
	prefix        string
	content       []byte
}

// decode parses flags (int8), LSN (int64), prefix (cstring), length (int32), content.
func (m *logicalMsg) decode(b []byte) error {
	if len(b) < 9 {
		return errors.New("message too short")
	}
	m.transactional = b[0]&1 != 0
	b = b[9:]
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return errors.New("prefix not terminated")
	}
	m.prefix = string(b[:i])
	b = b[i+1:]
	if len(b) < 4 {
		return errors.New("content length missing")
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b)) {
		return errors.New("content cut short")
	}
	m.content = b[:n]
	return nil
}

// discoverDue reports whether the catalog should be read for new tables now.
func (st *streamer) discoverDue() bool {
	return !st.sync && time.Since(st.discovered) >= st.s.st.discovery
}

// partitionRoot names the selected partitioned table a relation is a partition
// of, or "" when it is none.
func (st *streamer) partitionRoot(ctx context.Context, oid uint32) (string, error) {
	root, ok := st.roots[oid]
	if !ok {
		var err error
		if root, err = st.s.cat.partitionRoot(ctx, oid); err != nil {
			return "", err
		}
		st.roots[oid] = root
	}
	if root == "" || !st.s.selected[root] {
		return "", nil
	}
	return root, nil
}
