package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pgx/v5"
)

// snapshotBatch is how many records one emit call carries during a snapshot, and
// snapshotBatchBytes how many bytes of COPY lines at most, so that large rows make
// small batches (at least two records: the last is held back).
const (
	snapshotBatch      = 2048
	snapshotBatchBytes = 4 << 20
)

// snapStateKey names the snapshot's saved state in the connector's state store.
const snapStateKey = "postgres.snapshot"

// snapState is what a snapshot saves before it emits its first record, so that a
// restart inside it can resume instead of starting again: the table ordinals of its
// positions, the commit_ts and txid its records carry, and the slot it belongs to.
type snapState struct {
	Version int    `json:"version"`
	Slot    string `json:"slot"`
	Epoch   uint32 `json:"epoch"`
	// ConsistentPoint is the slot's LSN when the snapshot was exported; "" for the
	// temporary slot of initial_only, which does not outlive the run.
	ConsistentPoint string    `json:"consistent_point"`
	CommitTS        time.Time `json:"commit_ts"`
	TxID            string    `json:"txid"`
	Chunk           uint32    `json:"chunk"`  // rows per chunk, fixed for the snapshot's life
	Tables          []string  `json:"tables"` // ordinal -> schema.table
}

// snapTable is one table a snapshot reads.
type snapTable struct {
	ordinal uint32
	t       table
	sh      *tableShape
	// key holds the schema indexes of the key columns in the order of the index that
	// backs them; nil when the whole row is the key (REPLICA IDENTITY FULL without
	// a primary key): such a table is read in one piece.
	key []int
}

// snapPlan is one snapshot run: a new one inside an exported snapshot, or the rest
// of an interrupted one.
type snapPlan struct {
	snapName string // exported snapshot to import; "" when resuming
	state    snapState
	tables   []snapTable
	resume   *snapshotPos // the committed position to continue after; nil: from the start
	// skip holds, per table ordinal, the keys a resume leaves out (resume.go).
	skip map[uint32]map[string]bool
	// imported runs once the snapshot is imported; nil when nothing waits for it.
	imported func()
}

func (s *Source) loadSnapState(ctx context.Context) (*snapState, error) {
	if s.state == nil {
		return nil, nil
	}
	data, err := s.state.Load(ctx, snapStateKey)
	if err != nil {
		return nil, fmt.Errorf("postgres: load snapshot state: %w", err)
	}
	if data == nil {
		return nil, nil
	}
	var st snapState
	if err := json.Unmarshal(data, &st); err != nil {
		s.log.Warn("saved snapshot state is unreadable; ignoring it", "err", err)
		return nil, nil
	}
	return &st, nil
}

func (s *Source) saveSnapState(ctx context.Context, st snapState) error {
	if s.state == nil {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("postgres: encode snapshot state: %w", err)
	}
	if err := s.state.Save(ctx, snapStateKey, data); err != nil {
		return fmt.Errorf("postgres: save snapshot state: %w", err)
	}
	return nil
}

// snapTables pairs the ordinals of names with the selected tables and finds the
// order of each key. Names no longer selected are skipped; selected tables missing
// from names are not part of this snapshot.
func (s *Source) snapTables(ctx context.Context, names []string, tables []table) ([]snapTable, error) {
	byName := map[string]table{}
	for _, t := range tables {
		byName[t.qualified()] = t
	}
	inSnap := map[string]bool{}
	var out []snapTable
	for i, name := range names {
		inSnap[name] = true
		t, ok := byName[name]
		if !ok {
			s.log.Warn("a table of the interrupted snapshot is no longer selected or no longer exists; its remaining rows are not read", "table", name)
			continue
		}
		sh := s.shapes[name]
		key, err := s.cat.keyOrder(ctx, t, sh)
		if err != nil {
			return nil, err
		}
		out = append(out, snapTable{ordinal: uint32(i), t: t, sh: sh, key: key})
	}
	for _, t := range tables {
		if !inSnap[t.qualified()] {
			s.log.Warn("table selected after the interrupted snapshot began: it is streamed, not snapshotted", "table", t.qualified())
		}
	}
	return out, nil
}

// snapshot reads the plan's tables in one REPEATABLE READ transaction (inside the
// slot's exported snapshot for a new one) and emits op 'r' records. The replication
// connection stays idle meanwhile: the exported snapshot lives only until it runs
// its next command, and once SET TRANSACTION SNAPSHOT has run the transaction holds
// it on its own.
func (s *Source) snapshot(ctx context.Context, plan snapPlan, emit connector.EmitFunc) error {
	s.status.SetPhase("snapshot")
	if _, err := s.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return classify("begin snapshot transaction", err)
	}
	committed := false
	defer func() {
		if !committed && !s.conn.IsClosed() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = s.conn.Exec(rctx, "ROLLBACK")
		}
	}()
	if plan.snapName != "" {
		if _, err := s.conn.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(plan.snapName, "'", "''")+"'"); err != nil {
			return classify("import snapshot "+plan.snapName, err)
		}
		if plan.imported != nil {
			plan.imported()
		}
	}
	st := plan.state
	if st.CommitTS.IsZero() {
		var now time.Time
		if err := s.conn.QueryRow(ctx, "SELECT now(), txid_current()::text").Scan(&now, &st.TxID); err != nil {
			return classify("read snapshot time", err)
		}
		st.CommitTS = now.UTC().Truncate(time.Microsecond)
		// Saved before the first record goes out: a committed snapshot position
		// is only usable together with it.
		if err := s.saveSnapState(ctx, st); err != nil {
			return err
		}
	}
	sink := &copySink{
		ctx: ctx, emit: emit, status: s.status, acks: &s.ack, epoch: st.Epoch, chunkRows: st.Chunk,
		commitTS: st.CommitTS, txid: st.TxID, vals: record.ValueSlab{Rows: snapshotBatch / 4}, skips: plan.skip,
	}
	if r := plan.resume; r != nil {
		// Until a table is read the sink stands at the committed position, so that
		// a resume with nothing left to read (its remaining tables no longer
		// selected or dropped, or every remaining row deleted) still ends with a
		// completion marker after it, never before it.
		sink.ordinal, sink.chunk, sink.row = r.table, r.chunk, r.row
	}
	started := time.Now()
	var total int64
	for _, tb := range plan.tables {
		var from *snapshotPos
		if r := plan.resume; r != nil {
			if tb.ordinal < r.table {
				continue
			}
			if tb.ordinal == r.table {
				from = r
			}
		}
		n, err := s.snapshotTable(ctx, sink, tb, from)
		if err != nil {
			return err
		}
		total += n
	}
	if err := sink.finish(); err != nil {
		return err
	}
	if _, err := s.conn.Exec(ctx, "COMMIT"); err != nil {
		return classify("commit snapshot transaction", err)
	}
	committed = true
	s.log.Info("snapshot complete", "tables", len(plan.tables), "rows", total, "elapsed", time.Since(started).Round(time.Millisecond))
	return nil
}

// snapshotTable reads one table, chunk by chunk in key order, from the start or
// after the committed position from. It returns the rows it read.
func (s *Source) snapshotTable(ctx context.Context, w *copySink, tb snapTable, from *snapshotPos) (int64, error) {
	chunk, row := uint32(0), uint32(0)
	var after []string
	if from != nil {
		if tb.key != nil && len(from.key) == len(tb.key) {
			chunk, row, after = from.chunk, from.row, from.key
		} else {
			// Without a key there is no telling which rows were delivered: read the
			// table again under higher chunk numbers, so no position repeats.
			chunk = from.chunk + 1
			s.log.Warn("the snapshot was interrupted inside a table without a key, which cannot be resumed by key: reading the WHOLE table again, so its rows delivered before the interruption appear twice in the lake (as r, with new positions; the whole row is its key, so latest _pos per key keeps one); give the table a primary key to avoid this",
				"table", tb.t.qualified(), "chunk", from.chunk, "row", from.row)
		}
	}
	if row >= w.chunkRows {
		chunk, row = chunk+1, 0
	}
	w.startTable(tb, chunk, row)
	cols := make([]string, len(tb.sh.schema.Columns))
	for j, c := range tb.sh.schema.Columns {
		cols[j] = pgx.Identifier{c.Name}.Sanitize()
	}
	list := strings.Join(cols, ", ")
	if tb.key == nil {
		if err := s.copyChunk(ctx, w, tb, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", list, tb.t.ident())); err != nil {
			return 0, err
		}
		return w.endTable(), nil
	}
	keys := make([]string, len(tb.key))
	types := make([]string, len(tb.key))
	for j, i := range tb.key {
		keys[j] = cols[i]
		types[j] = tb.sh.schema.Columns[i].SourceType
	}
	order := strings.Join(keys, ", ")
	for {
		limit := int64(w.chunkRows - w.row)
		where := ""
		if after != nil {
			lits := make([]string, len(after))
			for j, v := range after {
				lits[j] = textLiteral(v) + "::" + types[j]
			}
			where = fmt.Sprintf(" WHERE (%s) > (%s)", order, strings.Join(lits, ", "))
		}
		before := w.tableRows
		sql := fmt.Sprintf("COPY (SELECT %s FROM %s%s ORDER BY %s LIMIT %d) TO STDOUT", list, tb.t.ident(), where, order, limit)
		if err := s.copyChunk(ctx, w, tb, sql); err != nil {
			return 0, err
		}
		if w.tableRows-before < limit {
			break
		}
		after = w.lastKey()
		w.nextChunk()
		s.reportRetained(ctx)
	}
	return w.endTable(), nil
}

func (s *Source) copyChunk(ctx context.Context, w *copySink, tb snapTable, sql string) error {
	if _, err := s.conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		if w.err != nil {
			return w.err
		}
		return classify("snapshot "+tb.t.qualified(), err)
	}
	return w.endCopy()
}

// textLiteral quotes v as an escape string constant, which reads the same whatever
// standard_conforming_strings says.
func textLiteral(v string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(v) + "'"
}

// copySink is the io.Writer COPY TO STDOUT writes into. It splits lines, decodes the
// fields and emits records in batches. The server sends one row per CopyData message,
// but a line split across writes is still reassembled.
type copySink struct {
	ctx       context.Context
	emit      connector.EmitFunc
	status    connector.Status
	acks      *acks
	epoch     uint32
	chunkRows uint32
	commitTS  time.Time
	txid      string

	// The current table.
	ordinal   uint32
	name      string
	estimate  int64
	schema    *record.Schema
	codecs    []*pgvalue.Codec
	key       []int  // key columns in index order; nil: no key
	chunk     uint32 // current chunk
	row       uint32 // rows of the current chunk so far (a position's row counts from 1)
	tableRows int64  // rows of the table so far, for progress

	// The key fields (still COPY-escaped, each as length uint32 + bytes) of the last
	// line and of the one before, which ends a batch: the last record read is held
	// back (it may be the snapshot's last), so a batch ends at the line before.
	curKey, prevKey     []byte
	curKeyed, prevKeyed bool

	recs   []record.Record
	bytes  int              // of the lines of recs
	vals   record.ValueSlab // where the After slices are cut from
	poss   []byte           // block the next positions are cut from
	fields [][]byte
	alloc  pgvalue.Alloc // decoded values come from its blocks, not one allocation each
	lines  copyLines
	err    error // why the sink stopped the COPY

	// A resume leaves out the rows whose key changed after the consistent point
	// (resume.go): skips per table ordinal, skip and skipCols for this table.
	skips    map[uint32]map[string]bool
	skip     map[string]bool
	skipCols []int
	keyParts [][]byte
}

func (w *copySink) startTable(tb snapTable, chunk, row uint32) {
	w.ordinal, w.name, w.estimate = tb.ordinal, tb.t.qualified(), tb.t.estimate
	w.schema, w.codecs, w.key = tb.sh.schema, tb.sh.codecs, tb.key
	w.chunk, w.row = chunk, row
	w.skip, w.skipCols = w.skips[tb.ordinal], snapKey(&tb)
	w.tableRows = int64(chunk)*int64(w.chunkRows) + int64(row)
	w.lines.reset()
}

func (w *copySink) nextChunk() {
	w.chunk++
	w.row = 0
}

// Write implements io.Writer for pgconn's CopyTo; p is only valid during the call.
func (w *copySink) Write(p []byte) (int, error) {
	if err := w.lines.feed(p, w); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *copySink) line(line []byte) error {
	ncols := len(w.codecs)
	w.prevKey, w.curKey = w.curKey, w.prevKey[:0]
	w.prevKeyed, w.curKeyed = w.curKeyed, w.key != nil
	if ncols > 0 {
		w.fields = pgvalue.SplitCopyLine(line, w.fields)
		if len(w.fields) != ncols {
			w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s row %d: got %d fields, want %d", w.name, w.tableRows+1, len(w.fields), ncols))
			return w.err
		}
		for _, i := range w.key {
			w.curKey = binary.BigEndian.AppendUint32(w.curKey, uint32(len(w.fields[i])))
			w.curKey = append(w.curKey, w.fields[i]...)
		}
	}
	if ncols > 0 && !w.keep() {
		// The stream delivers this row's changes since the consistent point; its
		// number is used up all the same, so chunks end where they would.
		if w.row == math.MaxUint32 {
			w.nextChunk()
		}
		w.row++
		w.tableRows++
		return nil
	}
	vals := w.vals.Take(ncols)
	if ncols > 0 {
		if i, err := decodeCopyRow(w.fields, w.codecs, &w.alloc, vals); err != nil {
			w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s row %d column %s: %w", w.name, w.tableRows+1, w.schema.Columns[i].Name, err))
			return w.err
		}
	}
	if w.row == math.MaxUint32 {
		// Only a table read in one piece gets here: keep positions unique.
		w.nextChunk()
	}
	w.row++
	w.tableRows++
	if len(w.poss) < snapshotPosLen {
		w.poss = make([]byte, snapshotPosLen*snapshotBatch)
	}
	pos := w.poss[:snapshotPosLen:snapshotPosLen]
	w.poss = w.poss[snapshotPosLen:]
	putSnapshotPos(pos, w.epoch, w.ordinal, w.chunk, w.row)
	if w.recs == nil {
		w.recs = make([]record.Record, 0, snapshotBatch)
	}
	w.recs = append(w.recs, record.Record{
		Op: record.OpRead, Schema: w.schema, After: vals, Pos: pos, CommitTS: w.commitTS, TxID: w.txid,
	})
	w.bytes += len(line)
	if len(w.recs) == snapshotBatch || (w.bytes >= snapshotBatchBytes && len(w.recs) > 1) {
		// Hold the last record back: it may turn out to be the snapshot's very last
		// one, which carries the completion marker.
		last := w.recs[len(w.recs)-1]
		batch := w.recs[:len(w.recs)-1]
		w.recs = make([]record.Record, 1, snapshotBatch)
		w.recs[0] = last
		w.bytes = len(line)
		end := &batch[len(batch)-1]
		if w.prevKeyed {
			// The runtime commits whole batches: the key on a batch's last position
			// is where a restart continues.
			end.Pos = withKey(end.Pos, unescapeKey(w.prevKey))
		}
		w.acks.setEmitted(end.Pos)
		if err := w.emit(w.ctx, batch); err != nil {
			w.err = fmt.Errorf("postgres: snapshot %s: emit: %w", w.name, err)
			return w.err
		}
		w.status.SnapshotProgress(w.name, w.tableRows, max(w.estimate, w.tableRows))
	}
	return nil
}

// decodeCopyRow decodes the fields of one COPY text line into vals, leaving NULLs
// nil; verify's scan (verify.go) decodes through it too, so that its values are the
// snapshot's. On error it returns the index of the column that failed.
func decodeCopyRow(fields [][]byte, codecs []*pgvalue.Codec, alloc *pgvalue.Alloc, vals []record.Value) (int, error) {
	for i, f := range fields {
		raw, null := pgvalue.UnescapeCopyText(f)
		if null {
			vals[i] = nil
			continue
		}
		v, err := codecs[i].DecodeWith(alloc, raw)
		if err != nil {
			return i, err
		}
		vals[i] = v
	}
	return 0, nil
}

// unescapeKey turns key fields kept by line into their text.
func unescapeKey(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		f := b[4 : 4+n]
		b = b[4+n:]
		raw, _ := pgvalue.UnescapeCopyText(f) // key columns are never null
		out = append(out, append([]byte(nil), raw...))
	}
	return out
}

// lastKey is the key of the last line read, as text.
func (w *copySink) lastKey() []string {
	var out []string
	for _, k := range unescapeKey(w.curKey) {
		out = append(out, string(k))
	}
	return out
}

// endCopy reads a last line that came without its newline.
func (w *copySink) endCopy() error { return w.lines.finish(w) }

// copyLines cuts COPY text output, which pgconn hands over in pieces of any size,
// into lines: the part of a line a piece ends in is kept for the next one. The
// snapshot's sink and verify's share it.
type copyLines struct {
	carry []byte // an incomplete line from the previous piece
}

// lineReader takes one COPY line (without its newline); the line is only valid
// during the call.
type lineReader interface {
	line(line []byte) error
}

// feed hands every complete line of p to r.
func (c *copyLines) feed(p []byte, r lineReader) error {
	if len(c.carry) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.carry = append(c.carry, p...)
			return nil
		}
		c.carry = append(c.carry, p[:i]...)
		if err := r.line(c.carry); err != nil {
			return err
		}
		c.carry = c.carry[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.carry = append(c.carry, p...)
			break
		}
		if err := r.line(p[:i]); err != nil {
			return err
		}
		p = p[i+1:]
	}
	return nil
}

// finish hands r a last line that came without its newline.
func (c *copyLines) finish(r lineReader) error {
	if len(c.carry) == 0 {
		return nil
	}
	err := r.line(c.carry)
	c.carry = c.carry[:0]
	return err
}

func (c *copyLines) reset() { c.carry = c.carry[:0] }

// endTable reports the table done and returns its rows.
func (w *copySink) endTable() int64 {
	w.status.SnapshotProgress(w.name, w.tableRows, w.tableRows)
	return w.tableRows
}

// finish emits what is left, the last record extended by the completion marker.
func (w *copySink) finish() error {
	if len(w.recs) == 0 {
		// Nothing was read (every table empty, or every row already committed): a
		// checkpoint still records that the snapshot is complete, or the next run
		// would find no position, take a new slot, and lose what changed meanwhile.
		pos := make(record.Position, snapshotPosLen)
		putSnapshotPos(pos, w.epoch, w.ordinal, w.chunk, w.row)
		w.recs = append(w.recs, record.Record{
			Op:       record.OpCheckpoint,
			Pos:      pos,
			CommitTS: w.commitTS,
			TxID:     w.txid,
		})
	}
	last := &w.recs[len(w.recs)-1]
	done := make(record.Position, snapshotDoneLen)
	copy(done, last.Pos[:snapshotPosLen])
	done[snapshotDoneLen-1] = snapshotDoneByte
	last.Pos = done
	batch := w.recs
	w.recs, w.bytes = nil, 0
	w.acks.setEmitted(done)
	if err := w.emit(w.ctx, batch); err != nil {
		return fmt.Errorf("postgres: snapshot: emit: %w", err)
	}
	return nil
}
