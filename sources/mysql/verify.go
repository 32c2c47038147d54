package mysql

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Verify reads the selected tables in a consistent snapshot taken the way the
// source's own snapshot takes it (beginSnapshot: MariaDB's binlog_snapshot_file and
// _position without a lock, MySQL's short FLUSH TABLES WITH READ LOCK), and reads
// them with the snapshot's query and decoder (README: "Verify"). A replica keeps no
// state on the server, so nothing of the connector's is touched.
//
// The boundary is the stream position prefix of the snapshot's binlog coordinates,
// 02 · file number · offset. Every event of a transaction the snapshot sees ends at
// or before that offset, so it starts before it; every event of a transaction it does
// not see starts at or after it. A stream position carries its event's start offset
// (position.go), so the first sort below the boundary and the others at or above it.

var _ connector.SnapshotOpener = Kind{}

// OpenSnapshot opens a consistent snapshot of the tables p's config selects.
func (Kind) OpenSnapshot(ctx context.Context, p connector.SourceParams) (connector.Snapshot, error) {
	st, err := settingsFrom(p)
	if err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := st.open(ctx)
	if err != nil {
		return nil, err
	}
	// A Source that never reads: it lends the snapshot, catalog and decoding code
	// the source's own snapshot uses. Its history lives in memory only.
	src := &Source{st: st, log: log.With("source", "mysql", "verify", true), status: connector.NopStatus{}, hist: &history{},
		chunk: defaultSnapshotChunk, warned: map[string]bool{}, db: db,
		schemas: map[tableName]*tableSchema{}, version: map[tableName]*record.Schema{}}
	v := &verifySnapshot{src: src, db: db}
	if err := v.open(ctx); err != nil {
		_ = v.Close(ctx)
		return nil, err
	}
	return v, nil
}

// verifySnapshot is one open verify snapshot: a consistent-snapshot transaction on
// conn.
type verifySnapshot struct {
	src    *Source
	db     *sql.DB
	conn   *sql.Conn
	at     coords
	fileNo uint32
	tables []tableName
	byName map[string]*tableSchema

	mu     sync.Mutex
	closed bool
}

func (v *verifySnapshot) open(ctx context.Context) error {
	s := v.src
	srv, err := serverInfo(ctx, v.db)
	if err != nil {
		return err
	}
	s.flavor = srv.flavor
	if v.conn, err = v.db.Conn(ctx); err != nil {
		return classify("open the verify connection", err)
	}
	start, _, base, err := s.snapshotWithDefinitions(ctx, v.conn)
	if err != nil {
		return err
	}
	if v.fileNo, err = fileNumber(start.file); err != nil {
		return connector.Permanent(err)
	}
	v.at = start
	s.hist.entries = base
	if s.cat, err = s.hist.replay(s.st); err != nil {
		return err
	}
	v.byName = map[string]*tableSchema{}
	// base lists the tables in listTables' order (database, then name).
	for _, e := range base {
		d, err := parseDDL(e.SQL, e.DB)
		if err != nil || d.kind != stmtCreate || !s.st.selected(d.table) {
			continue
		}
		ts, err := s.schemaOf(d.table)
		if err != nil {
			return err
		}
		v.tables = append(v.tables, d.table)
		v.byName[d.table.String()] = ts
	}
	s.log.Info("verify snapshot taken", "binlog", start.String())
	return nil
}

func (v *verifySnapshot) Boundary() record.Position {
	p := make(record.Position, 0, 13)
	p = append(p, posStream)
	p = binary.BigEndian.AppendUint32(p, v.fileNo)
	return binary.BigEndian.AppendUint64(p, v.at.offset)
}

func (v *verifySnapshot) DescribeBoundary() string {
	return fmt.Sprintf("binlog %s:%d (transactions committed before it are in the snapshot)", v.at.file, v.at.offset)
}

func (v *verifySnapshot) Tables() []*record.Schema {
	out := make([]*record.Schema, len(v.tables))
	for i, t := range v.tables {
		out[i] = v.byName[t.String()].schema
	}
	return out
}

func (v *verifySnapshot) table(s *record.Schema) (tableName, *tableSchema, error) {
	t := tableName{db: s.Namespace, name: s.Table}
	ts, ok := v.byName[t.String()]
	if !ok {
		return t, nil, fmt.Errorf("mysql: verify: table %s is not in the snapshot", t)
	}
	return t, ts, nil
}

// EstimateRows is information_schema.TABLES.TABLE_ROWS.
func (v *verifySnapshot) EstimateRows(ctx context.Context, s *record.Schema) (int64, error) {
	t, _, err := v.table(s)
	if err != nil {
		return 0, err
	}
	var n int64
	err = v.conn.QueryRowContext(ctx, "SELECT COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", t.db, t.name).Scan(&n)
	if err != nil {
		return 0, classify("estimate the rows of "+t.String(), err)
	}
	return max(n, 0), nil
}

// Scan reads the table with the snapshot's query (selectAll, without its chunking)
// and its row decoder (chunkReader), records handed over in the snapshot's batches.
func (v *verifySnapshot) Scan(ctx context.Context, s *record.Schema, fn func(row []record.Value) error) error {
	t, ts, err := v.table(s)
	if err != nil {
		return err
	}
	return v.scan(ctx, t, ts, "", fn)
}

// scan is Scan of the rows that match where (every row when it is empty).
func (v *verifySnapshot) scan(ctx context.Context, t tableName, ts *tableSchema, where string, fn func(row []record.Value) error) error {
	q := selectAll(ts, t)
	if where != "" {
		q += " WHERE " + where
	}
	hand := func(_ context.Context, batch []record.Record) error {
		for _, r := range batch {
			if err := fn(r.After); err != nil {
				return err
			}
		}
		return nil
	}
	sink := &snapSink{ctx: ctx, emit: hand}
	r := &chunkReader{s: v.src, sink: sink, sch: ts, name: t.String()}
	if _, _, err := r.query(ctx, v.conn, q, nil, 0, 0); err != nil {
		return err
	}
	return hand(ctx, sink.pending)
}

// Close ends the transaction and closes the connections; later calls do nothing.
func (v *verifySnapshot) Close(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	var err error
	if v.conn != nil {
		if _, rerr := v.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			err = classify("end the verify transaction", rerr)
		}
		if cerr := v.conn.Close(); cerr != nil && err == nil {
			err = classify("close the verify connection", cerr)
		}
	}
	if cerr := v.db.Close(); cerr != nil && err == nil {
		err = classify("close the verify connections", cerr)
	}
	return err
}
