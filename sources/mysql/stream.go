package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"
)

// streamer is the state of one binlog read.
type streamer struct {
	s      *Source
	emit   connector.EmitFunc
	skip   []byte  // ordering prefix of the committed position: records at or before it were delivered
	target *coords // ModeSync: stop at the first transaction boundary at or past it

	file   string
	fileNo uint32
	gset   gmysql.GTIDSet // executed GTIDs, including the current transaction's
	txn    coords         // where the current transaction starts, with the GTID set before it
	txid   string
	commit time.Time
	inTxn  bool
	batch  []record.Record
	// due ends the wait for more records to fill a non-empty batch (flushDelay
	// after its first one); nil while the batch is empty.
	due       context.Context
	cancelDue context.CancelFunc

	scan    bool               // rows only: no DDL applied (resumeSnapshot's look-ahead)
	only    map[tableName]bool // scan: the tables whose rows are wanted
	xa      *xaTxn             // the XA transaction whose prepared part is being read
	pending []*xaTxn           // prepared XA transactions awaiting XA COMMIT or ROLLBACK, oldest first

	// Slabs that row values and positions are cut from: a few allocations per
	// thousand records instead of two per record. A slab is never reused; the
	// records cut from it keep it alive.
	vals record.ValueSlab
	pos  []byte
}

// position returns the stream position of a record, cut from the slab.
func (st *streamer) position(offset uint64, seq uint32) record.Position {
	resume := st.resumePoint()
	n := streamPrefix + 9 + min(len(resume.file), 255) + len(resume.gtid)
	if cap(st.pos)-len(st.pos) < n {
		st.pos = make([]byte, 0, max(n, 32<<10))
	}
	start := len(st.pos)
	st.pos = appendStreamPos(st.pos, st.fileNo, offset, seq, resume)
	return record.Position(st.pos[start:len(st.pos):len(st.pos)])
}

// stream reads the binlog from the transaction starting at from.
func (s *Source) stream(ctx context.Context, from coords, skip []byte, target *coords, emit connector.EmitFunc) error {
	s.status.SetPhase("streaming")
	return s.readBinlog(ctx, from, skip, target, emit, nil)
}

// readBinlog reads the binlog from the transaction starting at from. With scan set,
// it only hands the rows of those tables to emit: DDL is neither applied nor
// recorded (a resumed snapshot looks at what changed since its point before the
// stream replays it).
func (s *Source) readBinlog(ctx context.Context, from coords, skip []byte, target *coords, emit connector.EmitFunc, scan map[tableName]bool) error {
	// Checked even when a sync has nothing to read: a position this server cannot
	// continue from must stop the connector, not end the run with success.
	if err := s.checkResumable(ctx, from); err != nil {
		return err
	}
	if target != nil && !before(from, *target) {
		return nil
	}
	fileNo, err := fileNumber(from.file)
	if err != nil {
		return connector.Permanent(err)
	}
	gset, err := gmysql.ParseGTIDSet(s.flavor, from.gtid)
	if err != nil {
		return connector.Permanent(fmt.Errorf("mysql: GTID set %q in the position: %w", from.gtid, err))
	}
	quiet := slog.New(s.log.Handler()).With("component", "go-mysql")
	cfg := replication.BinlogSyncerConfig{
		ServerID:  s.st.serverID,
		Flavor:    s.flavor,
		Host:      s.st.host,
		Port:      s.st.port,
		User:      s.st.user,
		Password:  s.st.password,
		Localhost: s.st.localhost,
		Charset:   "utf8mb4",
		// DATETIME and TIMESTAMP as time.Time, and DECIMAL as go-mysql's exact text:
		// formatting them to strings (or to shopspring decimals) only for
		// fromBinlog to parse them back cost a third of the source's CPU.
		// Zero and pre-1970 datetimes still come as text, which fromBinlog reads.
		ParseTime:               true,
		TimestampStringLocation: time.UTC,
		UseDecimal:              false,
		HeartbeatPeriod:         5 * time.Second,
		ReadTimeout:             60 * time.Second,
		// A broken connection ends Read; the supervisor restarts it from the
		// committed position, which is the only place resuming is exact.
		DisableRetrySync: true,
		// Bound what is read ahead of emit: events, not transactions.
		EventCacheCount: 128,
		Logger:          slog.New(levelFilter{quiet.Handler(), slog.LevelWarn}),
		// The binlog carries every table of the server: decode the rows of the
		// selected ones only (the header names the table).
		RowsEventDecodeFunc: func(e *replication.RowsEvent, data []byte) error {
			pos, err := e.DecodeHeader(data)
			if err != nil || e.Table == nil || !s.st.selected(tableName{db: string(e.Table.Schema), name: string(e.Table.Table)}) {
				return err
			}
			return decodeRowsData(e, pos, data)
		},
	}
	syncer := replication.NewBinlogSyncer(cfg)
	s.onClose(syncer.Close)
	defer syncer.Close()
	bs, err := syncer.StartSync(gmysql.Position{Name: from.file, Pos: uint32(from.offset)})
	if err != nil {
		return classify("start binlog dump at "+from.String(), err)
	}
	st := &streamer{s: s, emit: emit, skip: skip, target: target, file: from.file, fileNo: fileNo, gset: gset,
		txn: from, scan: scan != nil, only: scan}
	if scan != nil {
		s.log.Info("reading the binlog between the snapshot's point and now", "from", from.String(), "to", target.String())
	} else {
		s.log.Info("streaming binlog", "from", from.String(), "server_id", s.st.serverID)
	}
	defer st.stopDue()
	for {
		ev, err := st.next(ctx, bs)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return classify("read binlog", err)
		}
		done, err := st.handle(ctx, ev)
		if err != nil {
			return err
		}
		if done {
			return st.flush(ctx)
		}
	}
}

// checkBinlogExists fails permanently when the file to resume in was purged.
func (s *Source) checkBinlogExists(ctx context.Context, file string) error {
	rows, err := s.db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return classify("SHOW BINARY LOGS", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	var name string
	vals[0] = &name
	for i := 1; i < len(vals); i++ {
		vals[i] = new(any)
	}
	var first string
	for rows.Next() {
		if err := rows.Scan(vals...); err != nil {
			return classify("SHOW BINARY LOGS", err)
		}
		if first == "" {
			first = name
		}
		if name == file {
			return nil
		}
	}
	if err := rows.Err(); err != nil {
		return classify("SHOW BINARY LOGS", err)
	}
	return connector.Permanent(fmt.Errorf("mysql: binlog %s, where the committed position resumes, is no longer on the server (oldest: %q); the changes since are lost: run `connectd offsets reset` to snapshot again, and raise binlog_expire_logs_seconds", file, first))
}

// handle processes one event; done reports that a ModeSync target was reached.
func (st *streamer) handle(ctx context.Context, ev *replication.BinlogEvent) (bool, error) {
	h := ev.Header
	offset := uint64(0)
	if h.LogPos >= h.EventSize {
		offset = uint64(h.LogPos - h.EventSize)
	}
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		name := string(e.NextLogName)
		n, err := fileNumber(name)
		if err != nil {
			return false, connector.Permanent(err)
		}
		st.file, st.fileNo = name, n
		return false, nil
	case *replication.MariadbGTIDEvent:
		st.beginTxn(offset, e.GTID.String(), time.Unix(int64(h.Timestamp), 0))
		st.inTxn = !e.IsStandalone()
		if e.Flags&mariadbFlPreparedXA != 0 {
			st.xa = &xaTxn{start: st.txn}
			st.inTxn = true // ends at the XA_PREPARE event
		}
		return false, nil
	case *replication.GTIDEvent:
		gtid := ""
		if u, err := uuid.FromBytes(e.SID); err == nil && u != uuid.Nil && e.GNO > 0 {
			gtid = u.String() + ":" + strconv.FormatInt(e.GNO, 10)
			if e.Tag != "" {
				gtid = u.String() + ":" + e.Tag + ":" + strconv.FormatInt(e.GNO, 10)
			}
		}
		ts := time.Unix(int64(h.Timestamp), 0)
		if e.OriginalCommitTimestamp > 0 {
			ts = time.UnixMicro(int64(e.OriginalCommitTimestamp))
		}
		st.beginTxn(offset, gtid, ts)
		return false, nil
	case *replication.QueryEvent:
		return st.query(ctx, offset, uint64(h.LogPos), time.Unix(int64(h.Timestamp), 0), string(e.Schema), strings.TrimSpace(string(e.Query)))
	case *replication.GenericEvent:
		if h.EventType == replication.XA_PREPARE_LOG_EVENT {
			return st.xaPrepared(ctx, offset, uint64(h.LogPos), len(e.Data) > 0 && e.Data[0] != 0)
		}
	case *replication.XIDEvent:
		return st.endTxn(ctx, uint64(h.LogPos))
	case *replication.RowsEvent:
		return false, st.rows(ctx, h.EventType, offset, e, new(uint32))
	case *replication.TransactionPayloadEvent:
		// MySQL's compressed transactions: the inner events share the payload's
		// offset, so one sequence counter runs across them.
		seq := new(uint32)
		for _, inner := range e.Events {
			switch ie := inner.Event.(type) {
			case *replication.RowsEvent:
				if err := st.rows(ctx, inner.Header.EventType, offset, ie, seq); err != nil {
					return false, err
				}
			case *replication.XIDEvent:
				return st.endTxn(ctx, uint64(h.LogPos))
			case *replication.QueryEvent:
				if q := strings.TrimSpace(string(ie.Query)); strings.EqualFold(q, "COMMIT") {
					return st.endTxn(ctx, uint64(h.LogPos))
				}
			}
		}
		return false, nil
	}
	if !st.inTxn && h.LogPos > 0 {
		return st.atBoundary(ctx, uint64(h.LogPos))
	}
	return false, nil
}

// query handles a QUERY event: a transaction boundary, a statement inside a
// transaction (savepoints; the CREATE of CREATE TABLE ... SELECT), an XA step, or
// a DDL statement that is a transaction of its own.
func (st *streamer) query(ctx context.Context, offset, end uint64, ts time.Time, db, q string) (bool, error) {
	kind, xid := classifyQuery(q)
	switch kind {
	case queryBegin:
		if !st.inTxn && st.txid == "" {
			// No GTID event: the transaction starts here.
			st.beginTxn(offset, "", ts)
		}
		st.inTxn = true
		return false, nil
	case queryCommit, queryRollback:
		return st.endTxn(ctx, end)
	case querySavepoint:
		// Savepoints never end the transaction: its id, commit time and resume
		// point stay those of its start. The binlog holds only the rows that
		// survived a ROLLBACK TO (transactional tables) or that cannot be undone
		// (non-transactional ones), so there is nothing to take back.
		return false, nil
	case queryXAStart:
		st.xa = &xaTxn{start: st.txn}
		st.inTxn = true
		return false, nil
	case queryXAEnd:
		if st.xa != nil {
			st.xa.xid = xid
		}
		return false, nil
	case queryXACommit, queryXARollback:
		return st.xaResolved(ctx, offset, end, xid, kind == queryXACommit)
	}
	if st.txid == "" && !st.inTxn {
		st.beginTxn(offset, "", ts)
	}
	if !st.scan { // a scan leaves the statement to the stream that replays it
		if err := st.ddl(ctx, offset, db, q); err != nil {
			return false, err
		}
	}
	if st.inTxn {
		return false, nil // a statement inside a transaction: its COMMIT ends it
	}
	return st.endTxn(ctx, end)
}

func (st *streamer) beginTxn(offset uint64, gtid string, ts time.Time) {
	st.txn = coords{file: st.file, offset: offset, gtid: st.gset.String()}
	st.txid = gtid
	st.commit = ts.UTC().Truncate(time.Microsecond)
	if gtid != "" {
		if err := st.gset.Update(gtid); err != nil {
			st.s.log.Warn("cannot add a GTID to the executed set", "gtid", gtid, "err", err)
		}
	}
}

// flushDelay is how long read records may wait for more to fill a batch. Batches
// span transactions, so a stream of one-row transactions is not handed to the
// pipeline (a channel send and a wake-up of its goroutine) one transaction at a
// time.
const flushDelay = 20 * time.Millisecond

// next returns the next binlog event. While records wait in the batch it waits
// until they are flushDelay old at most, then emits them and waits on.
func (st *streamer) next(ctx context.Context, bs *replication.BinlogStreamer) (*replication.BinlogEvent, error) {
	for {
		if len(st.batch) == 0 {
			return bs.GetEvent(ctx)
		}
		if st.due == nil {
			st.due, st.cancelDue = context.WithTimeout(ctx, flushDelay)
		}
		ev, err := bs.GetEvent(st.due)
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return ev, err
		}
		// GetEvent loses no event to a done context: it only stops waiting.
		if err := st.flush(ctx); err != nil {
			return nil, err
		}
	}
}

func (st *streamer) stopDue() {
	if st.due != nil {
		st.cancelDue()
		st.due, st.cancelDue = nil, nil
	}
}

// endTxn closes the current transaction at end (the offset after its last event).
// Its records stay in the batch (next emits them in time).
func (st *streamer) endTxn(ctx context.Context, end uint64) (bool, error) {
	st.inTxn = false
	st.txid = ""
	return st.atBoundary(ctx, end)
}

// atBoundary reports, between transactions, whether the ModeSync target is reached.
func (st *streamer) atBoundary(ctx context.Context, end uint64) (bool, error) {
	if st.inTxn || st.target == nil {
		return false, nil
	}
	here := coords{file: st.file, offset: end}
	if before(here, *st.target) {
		return false, nil
	}
	return true, st.flush(ctx)
}

func (st *streamer) flush(ctx context.Context) error {
	st.stopDue()
	if len(st.batch) == 0 {
		return nil
	}
	b := st.batch
	st.batch = make([]record.Record, 0, batchSize) // emit owns b now
	if err := st.emit(ctx, b); err != nil {
		return err
	}
	st.s.status.SourcePosition(describePos(b[len(b)-1].Pos))
	return nil
}

func (st *streamer) add(ctx context.Context, r record.Record) error {
	st.batch = append(st.batch, r)
	if len(st.batch) >= batchSize {
		return st.flush(ctx)
	}
	return nil
}

// ddl applies a statement to the catalog and the schema history and emits the
// truncate record of a TRUNCATE.
func (st *streamer) ddl(ctx context.Context, offset uint64, db, sql string) error {
	s := st.s
	pos := streamPos(st.fileNo, offset, 0, st.resumePoint())
	prefix := pos[:streamPrefix]
	if st.skip != nil && atOrBefore(prefix, st.skip) {
		return nil // already in the history (and delivered, for a TRUNCATE)
	}
	if err := st.flush(ctx); err != nil {
		return err
	}
	before := maps.Clone(s.cat.tables)
	ch, err := s.cat.apply(sql, db)
	var de *ddlError
	if errors.As(err, &de) && de.table.name != "" {
		if _, was := before[de.table]; !was && isRename(sql) {
			// From a database the history does not track: as unread as from an
			// unselected table.
			return st.renamedInError(sql, offset, []tableName{de.table})
		}
		return st.definitionFromServer(ctx, de, offset, prefix, sql)
	}
	if err != nil {
		if errors.Is(err, errUnsupported) {
			return connector.Permanent(fmt.Errorf("mysql: cannot follow DDL at %s:%d (%v); statement: %s; the connector stops rather than mislabel columns",
				st.file, offset, err, sql))
		}
		return err
	}
	if err := st.checkProvisional(ch.touched, offset, sql); err != nil {
		return err
	}
	if in := s.renamedIn(before, ch.touched); len(in) > 0 {
		return st.renamedInError(sql, offset, in)
	}
	for _, t := range ch.forgotten {
		s.warnOnce("forgotten "+t.String(), "a DDL on a table that is not selected could not be followed; the table is no longer tracked (selecting it later needs a new snapshot)",
			"table", t.String(), "statement", sql)
	}
	if len(ch.touched) > 0 || ch.keep {
		if err := s.hist.add(ctx, prefix, db, sql); err != nil {
			return err
		}
		for _, t := range ch.touched {
			delete(s.schemas, t)
		}
		s.log.Info("DDL applied to the schema history", "statement", sql, "at", describePos(pos))
	}
	if t := ch.truncated; t != nil && s.st.selected(*t) {
		ts, err := s.schemaOf(*t)
		if err != nil {
			return err
		}
		return st.add(ctx, record.Record{Op: record.OpTruncate, Schema: ts.schema, After: make([]record.Value, len(ts.cols)),
			Pos: pos, CommitTS: st.commit, TxID: st.txid})
	}
	return nil
}

// rows turns a rows event into records.
func (st *streamer) rows(ctx context.Context, et replication.EventType, offset uint64, e *replication.RowsEvent, seq *uint32) error {
	s := st.s
	t := tableName{db: string(e.Table.Schema), name: string(e.Table.Table)}
	if !s.st.selected(t) || s.cat.sequences[t] || st.scan && !st.only[t] {
		// A sequence's rows events (NEXTVAL, SETVAL) carry its state, not data.
		return nil
	}
	if st.skip != nil && st.xa == nil && atOrBefore(streamPos(st.fileNo, offset, math.MaxUint32, coords{})[:streamPrefix], st.skip) {
		// Delivered before the restart, which re-reads from an earlier resume
		// point (a prepared XA transaction's): the catalog describes the table as
		// of the committed position, perhaps not as of this event.
		return nil
	}
	ts, err := s.schemaOf(t)
	if err != nil {
		return err
	}
	if err := checkTableMap(t, ts, e); err != nil {
		return err
	}
	var op record.Op
	switch et {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		op = record.OpCreate
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		op = record.OpUpdate
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2,
		replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		op = record.OpDelete
	default:
		return fmt.Errorf("mysql: unexpected rows event type %s", et)
	}
	base := record.Record{Schema: ts.schema, CommitTS: st.commit, TxID: st.txid}
	next := func(r record.Record) error {
		if st.xa != nil {
			st.xa.recs = append(st.xa.recs, r)
			return nil
		}
		r.Pos = st.position(offset, *seq)
		*seq++
		if st.skip != nil && atOrBefore(r.Pos[:streamPrefix], st.skip) {
			return nil
		}
		return st.add(ctx, r)
	}
	step := 1
	if op == record.OpUpdate {
		step = 2
	}
	for i := 0; i+step <= len(e.Rows); i += step {
		img, err := st.decode(ts, e.Rows[i])
		if err != nil {
			return err
		}
		r := base
		switch op {
		case record.OpCreate:
			r.Op, r.After = record.OpCreate, img
			err = next(r)
		case record.OpDelete:
			r.Op, r.Before = record.OpDelete, img
			err = next(r)
		case record.OpUpdate:
			after, derr := st.decode(ts, e.Rows[i+1])
			if derr != nil {
				return derr
			}
			if keyChanged(ts, img, after) {
				d, c := base, base
				d.Op, d.Before = record.OpDelete, img
				c.Op, c.After = record.OpCreate, after
				if err = next(d); err == nil {
					err = next(c)
				}
			} else {
				r.Op, r.Before, r.After = record.OpUpdate, img, after
				err = next(r)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkTableMap refuses rows whose shape disagrees with the schema history.
func checkTableMap(t tableName, ts *tableSchema, e *replication.RowsEvent) error {
	if int(e.ColumnCount) != len(ts.cols) {
		return connector.Permanent(fmt.Errorf("mysql: table %s: the binlog row has %d columns, the schema history %d; the history is out of step with the server (a DDL it missed?): run `connectd offsets reset` to snapshot again",
			t, e.ColumnCount, len(ts.cols)))
	}
	if names := e.Table.ColumnNameString(); len(names) == len(ts.cols) {
		for i, n := range names {
			if !strings.EqualFold(n, ts.schema.Columns[i].Name) {
				return connector.Permanent(fmt.Errorf("mysql: table %s: binlog column %d is %q, the schema history says %q; run `connectd offsets reset` to snapshot again",
					t, i+1, n, ts.schema.Columns[i].Name))
			}
		}
	}
	for _, skipped := range e.SkippedColumns {
		if len(skipped) > 0 {
			return connector.Permanent(fmt.Errorf("mysql: table %s: the binlog row image is not full (fix: SET GLOBAL binlog_row_image = 'FULL')", t))
		}
	}
	return nil
}

func (st *streamer) decode(ts *tableSchema, row []any) ([]record.Value, error) {
	out := st.vals.Take(len(ts.cols))
	for i := range ts.cols {
		if i >= len(row) {
			break
		}
		v, w, err := ts.cols[i].fromBinlog(row[i])
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("mysql: %s column %s: %w", ts.schema.QualifiedName(), ts.schema.Columns[i].Name, err))
		}
		if w != warnNone {
			st.s.warnValue(ts, i, w)
		}
		out[i] = v
	}
	return out, nil
}

func keyChanged(ts *tableSchema, before, after []record.Value) bool {
	for _, i := range ts.key {
		if !equalValue(before[i], after[i]) {
			return true
		}
	}
	return false
}

func equalValue(a, b record.Value) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case record.JSON:
		y, ok := b.(record.JSON)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

// levelFilter drops go-mysql's records below a level (it logs every connection at Info).
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(a), f.min}
}

func (f levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(n), f.min}
}
