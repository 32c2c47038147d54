package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Verify reads the selected tables inside the exported snapshot of a temporary slot
// of its own (README: "Verify"), so the connector's slot, publication and saved state
// are never touched and a running connector is fine.
//
// The boundary is the mark of the temporary slot's consistent point L. Logical
// decoding at L skips exactly the transactions whose commit record starts before L
// (their changes are in the exported snapshot) and decodes those committing at or
// after it (not in the snapshot). A stream position carries the commit record's LSN,
// so every change the snapshot sees sorts below the mark 02·L and every other one at
// or above it (a prefix sorts first; position.go).

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
	conn, err := connect(ctx, st)
	if err != nil {
		return nil, err
	}
	v := &verifySnapshot{conn: conn, log: log.With("source", "postgres", "verify", true)}
	if err := v.open(ctx, st); err != nil {
		_ = v.Close(ctx)
		return nil, err
	}
	return v, nil
}

// verifySnapshot is one open verify snapshot: a REPEATABLE READ transaction on conn
// that imported the temporary slot's snapshot.
type verifySnapshot struct {
	conn *pgx.Conn
	log  *slog.Logger
	at   pglogrepl.LSN
	// version and encoding decide whether the server can digest rows (digest.go).
	version  int
	encoding string
	tables   []verifyTable
	byName   map[string]*verifyTable

	mu     sync.Mutex
	closed bool
}

type verifyTable struct {
	t       table
	sh      *tableShape
	form    *fieldForm // built on first use
	formErr error
}

func (v *verifySnapshot) open(ctx context.Context, st settings) error {
	cat, err := newCatalog(ctx, v.conn)
	if err != nil {
		return err
	}
	if cat.version < 100000 {
		return permanentf("server version %d is too old: logical replication with pgoutput needs PostgreSQL 10 or later", cat.version)
	}
	v.version = cat.version
	if err := v.conn.QueryRow(ctx, "SHOW server_encoding").Scan(&v.encoding); err != nil {
		return classify("read server_encoding", err)
	}
	level, err := cat.walLevel(ctx)
	if err != nil {
		return err
	}
	if level != "logical" {
		return permanentf("wal_level is %q, verify reads in the snapshot of a logical replication slot and needs \"logical\"; fix: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL", level)
	}
	ex, err := v.exportSnapshot(ctx, st)
	if err != nil {
		return err
	}
	defer ex.close()
	if _, err := v.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return classify("begin the verify transaction", err)
	}
	if _, err := v.conn.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(ex.name, "'", "''")+"'"); err != nil {
		return classify("import snapshot "+ex.name, err)
	}
	// The transaction holds the snapshot on its own now: the temporary slot (and the
	// WAL it retains) goes with its connection.
	ex.close()
	// Catalog reads inside the transaction see the tables as the snapshot does.
	all, err := cat.allTables(ctx)
	if err != nil {
		return err
	}
	tables, _, err := matchTables(all, st.tables)
	if err != nil {
		return err
	}
	v.byName = map[string]*verifyTable{}
	for _, t := range tables {
		cols, err := cat.columns(ctx, t)
		if err != nil {
			return err
		}
		// A table without a usable identity gets no key columns, as Discover lists
		// it; the source itself refuses to stream it.
		key, _ := keyColumns(t, cols)
		sh, err := cat.shape(ctx, t.schema, t.name, cols, key)
		if err != nil {
			return err
		}
		v.tables = append(v.tables, verifyTable{t: t, sh: sh})
	}
	for i := range v.tables {
		v.byName[v.tables[i].t.qualified()] = &v.tables[i]
	}
	return nil
}

// exportSnapshot creates a temporary slot named for this verify run and returns its
// exported snapshot; v.at is set to the slot's consistent point. The two failures a
// user must fix get the fix spelled out.
func (v *verifySnapshot) exportSnapshot(ctx context.Context, st settings) (exported, error) {
	name := verifySlotName()
	ex, err := exportTemporary(ctx, st, name, "verify")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
	case errors.As(err, &pgErr) && (pgErr.Code == "42501" || strings.HasPrefix(pgErr.Code, "28")):
		return exported{}, permanentf("verify needs a replication connection, which the server refused (%s); fix: ALTER ROLE <user> WITH REPLICATION; (and a pg_hba.conf line allowing it), or verify as a role that has it: %w", pgErr.Message, err)
	case errors.As(err, &pgErr) && pgErr.Code == "53400":
		return exported{}, permanentf("create the temporary replication slot %s for verify: every replication slot is in use (%s); fix: raise max_replication_slots by one (ALTER SYSTEM SET max_replication_slots = ...; then restart PostgreSQL) or drop an unused slot (SELECT pg_drop_replication_slot('name');)", name, pgErr.Message)
	default:
		return exported{}, err
	}
	v.at = ex.at
	v.log.Info("verify snapshot exported", "temporary_slot", name, "consistent_point", ex.at.String())
	return ex, nil
}

// verifySlotName is a slot name no connector and no other verify run uses.
func verifySlotName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("connectd_verify_%d_%s", os.Getpid(), hex.EncodeToString(b[:]))
}

func (v *verifySnapshot) Boundary() record.Position { return streamMark(v.at) }

func (v *verifySnapshot) DescribeBoundary() string {
	return "lsn " + v.at.String() + " (changes committed before it are in the snapshot)"
}

func (v *verifySnapshot) Tables() []*record.Schema {
	out := make([]*record.Schema, len(v.tables))
	for i, t := range v.tables {
		out[i] = t.sh.schema
	}
	return out
}

func (v *verifySnapshot) table(s *record.Schema) (*verifyTable, error) {
	if v.conn.IsClosed() {
		// A scan whose fn failed ends the COPY by closing the connection (pgconn),
		// and the snapshot with it.
		return nil, errors.New("postgres: verify: the snapshot's connection is closed (an earlier scan failed); open a new snapshot")
	}
	t, ok := v.byName[s.Namespace+"."+s.Table]
	if !ok {
		return nil, fmt.Errorf("postgres: verify: table %s.%s is not in the snapshot", s.Namespace, s.Table)
	}
	return t, nil
}

// EstimateRows is pg_class.reltuples (-1 on a table never analyzed, PostgreSQL 14+).
func (v *verifySnapshot) EstimateRows(ctx context.Context, s *record.Schema) (int64, error) {
	t, err := v.table(s)
	if err != nil {
		return 0, err
	}
	var est float64
	if err := v.conn.QueryRow(ctx, "SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = $1", int64(t.t.oid)).Scan(&est); err != nil {
		return 0, classify("estimate the rows of "+t.t.qualified(), err)
	}
	if est < 0 {
		return 0, nil
	}
	return int64(est), nil
}

// Scan reads the table with the query form and decoder of the snapshot
// (snapshot.go: COPY text, decodeCopyRow), without its chunking: verify needs no
// order and no resume key.
func (v *verifySnapshot) Scan(ctx context.Context, s *record.Schema, fn func(row []record.Value) error) error {
	t, err := v.table(s)
	if err != nil {
		return err
	}
	return v.scan(ctx, t, "", fn)
}

// scan reads t's rows that pass where (none when "").
func (v *verifySnapshot) scan(ctx context.Context, t *verifyTable, where string, fn func(row []record.Value) error) error {
	cols := make([]string, len(t.sh.schema.Columns))
	for j, c := range t.sh.schema.Columns {
		cols[j] = pgx.Identifier{c.Name}.Sanitize()
	}
	w := &scanSink{name: t.t.qualified(), schema: t.sh.schema, codecs: t.sh.codecs, fn: fn, row: make([]record.Value, len(cols))}
	sql := fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", strings.Join(cols, ", "), t.t.ident())
	if where != "" {
		sql = fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s) TO STDOUT", strings.Join(cols, ", "), t.t.ident(), where)
	}
	if _, err := v.conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		if w.err != nil {
			return w.err
		}
		return classify("verify: read "+t.t.qualified(), err)
	}
	return w.lines.finish(w)
}

// scanSink is the io.Writer a verify scan's COPY writes into: one row per line,
// decoded and handed to fn.
type scanSink struct {
	name   string
	schema *record.Schema
	codecs []*pgvalue.Codec
	fn     func([]record.Value) error
	row    []record.Value
	rows   int64
	fields [][]byte
	alloc  pgvalue.Alloc
	lines  copyLines
	err    error
}

func (w *scanSink) Write(p []byte) (int, error) {
	if err := w.lines.feed(p, w); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *scanSink) line(line []byte) error {
	w.rows++
	if len(w.codecs) > 0 {
		w.fields = pgvalue.SplitCopyLine(line, w.fields)
		if len(w.fields) != len(w.codecs) {
			w.err = fmt.Errorf("postgres: verify: %s row %d: got %d fields, want %d", w.name, w.rows, len(w.fields), len(w.codecs))
			return w.err
		}
		if i, err := decodeCopyRow(w.fields, w.codecs, &w.alloc, w.row); err != nil {
			w.err = fmt.Errorf("postgres: verify: %s row %d column %s: %w", w.name, w.rows, w.schema.Columns[i].Name, err)
			return w.err
		}
	}
	if err := w.fn(w.row); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Close ends the transaction and closes the connection; later calls do nothing.
func (v *verifySnapshot) Close(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var err error
	if !v.conn.IsClosed() {
		if _, rerr := v.conn.Exec(cctx, "ROLLBACK"); rerr != nil {
			err = classify("end the verify transaction", rerr)
		}
	}
	if cerr := v.conn.Close(cctx); cerr != nil && err == nil {
		err = classify("close the verify connection", cerr)
	}
	return err
}
