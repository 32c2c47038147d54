// Package mysql is the `mysql` source for MySQL 8 and MariaDB 10.6+: a consistent
// initial snapshot, then the row-based binlog read as a replica, one record per row
// change. Table definitions come from a schema history kept beside the position and
// advanced by the DDL statements found in the binlog. See README.md for the grants it
// needs, how positions are laid out and how types map.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	gomysql "github.com/go-sql-driver/mysql"
)

// Kind is the mysql source kind; register it as "mysql".
type Kind struct{}

// settings is the validated source config.
type settings struct {
	name      string // the connector's
	host      string
	port      uint16
	user      string
	password  string
	serverID  uint32
	patterns  []pattern
	snapshot  string
	localhost string // how the connector registers itself as a replica
	types     typeOpts
}

// pattern is one entry of `tables`: database and table globs.
type pattern struct{ db, table string }

func (p pattern) String() string { return p.db + "." + p.table }

func (s settings) wantsSnapshot() bool {
	return s.snapshot != config.SnapshotNever
}

// selected reports whether a table is one the config asks for.
func (s settings) selected(t tableName) bool {
	for _, p := range s.patterns {
		if ok, _ := path.Match(p.db, t.db); !ok {
			continue
		}
		if ok, _ := path.Match(p.table, t.name); ok {
			return true
		}
	}
	return false
}

// tracked reports whether the tables of a database are kept in the schema history:
// every database a pattern can select from, so a rename inside it can be followed.
func (s settings) tracked(db string) bool {
	for _, p := range s.patterns {
		if ok, _ := path.Match(p.db, db); ok {
			return true
		}
	}
	return false
}

func settingsFrom(p connector.SourceParams) (settings, error) {
	c, err := connector.SourceConfig[Config](p)
	if err != nil {
		return settings{}, connector.Permanent(fmt.Errorf("mysql: %w", err))
	}
	if c.ServerID <= 0 || c.ServerID > math.MaxUint32 {
		return settings{}, connector.Permanent(fmt.Errorf("mysql: server_id %d: want 1 to %d, unique among the server's replicas", c.ServerID, uint32(math.MaxUint32)))
	}
	st := settings{name: p.Name, serverID: uint32(c.ServerID), snapshot: c.Snapshot, localhost: "connectd-" + p.Name,
		types: typeOpts{tinyBool: c.TinyInt1AsBoolean}}
	switch st.snapshot {
	case config.SnapshotInitial, config.SnapshotInitialOnly, config.SnapshotNever, config.SnapshotWhenNeeded:
	default:
		return settings{}, connector.Permanent(fmt.Errorf("mysql: snapshot %q: want initial, initial_only, never or when_needed", st.snapshot))
	}
	if err := st.parseDSN(c.DSN); err != nil {
		return settings{}, connector.Permanent(err)
	}
	if c.Password != "" {
		st.password = c.Password
	}
	tables := c.Tables
	if len(tables) == 0 {
		return settings{}, connector.Permanent(errors.New(`mysql: tables: list at least one database.table pattern ("shop.*")`))
	}
	for _, t := range tables {
		db, name, ok := strings.Cut(t, ".")
		if !ok || db == "" || name == "" {
			return settings{}, connector.Permanent(fmt.Errorf("mysql: tables: %q: want database.table (globs allowed: \"shop.*\")", t))
		}
		if _, err := path.Match(db, ""); err != nil {
			return settings{}, connector.Permanent(fmt.Errorf("mysql: tables: %q: %w", t, err))
		}
		if _, err := path.Match(name, ""); err != nil {
			return settings{}, connector.Permanent(fmt.Errorf("mysql: tables: %q: %w", t, err))
		}
		st.patterns = append(st.patterns, pattern{db: db, table: name})
	}
	return st, nil
}

// parseDSN accepts mysql://user:pass@host:port/ and the go-sql-driver form
// user:pass@tcp(host:port)/.
func (s *settings) parseDSN(dsn string) error {
	host, port := "127.0.0.1", "3306"
	if strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return fmt.Errorf("mysql: dsn: %v", redact(err))
		}
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
		if u.Hostname() != "" {
			host = u.Hostname()
		}
		if u.Port() != "" {
			port = u.Port()
		}
	} else {
		c, err := gomysql.ParseDSN(dsn)
		if err != nil {
			return fmt.Errorf("mysql: dsn: want mysql://user:password@host:3306/ (%v)", err)
		}
		if c.Net != "tcp" {
			return fmt.Errorf("mysql: dsn: only TCP connections are supported, not %q", c.Net)
		}
		s.user, s.password = c.User, c.Passwd
		if h, p, err := net.SplitHostPort(c.Addr); err == nil {
			host, port = h, p
		}
	}
	if s.user == "" {
		return errors.New("mysql: dsn: no user")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("mysql: dsn: port %q", port)
	}
	s.host, s.port = host, uint16(n)
	return nil
}

// redact drops a URL parse error's echo of the DSN, which may hold a password.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// open connects the query connection pool: utf8mb4 text, UTC timestamps.
func (s settings) open(ctx context.Context) (*sql.DB, error) {
	c := gomysql.NewConfig()
	c.User, c.Passwd = s.user, s.password
	c.Net, c.Addr = "tcp", net.JoinHostPort(s.host, strconv.Itoa(int(s.port)))
	c.Params = map[string]string{"time_zone": "'+00:00'"}
	c.Collation = "utf8mb4_general_ci"
	c.Timeout = 10 * time.Second
	c.AllowNativePasswords = true
	// Queries with arguments stay on the text protocol, so every snapshot chunk's
	// values arrive in the one form fromText decodes.
	c.InterpolateParams = true
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("mysql: dsn: %w", err))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, classify(fmt.Sprintf("connect to %s as %s", c.Addr, s.user), err)
	}
	return db, nil
}

// classify wraps a server error, marking as permanent what retrying cannot fix.
func classify(what string, err error) error {
	err = fmt.Errorf("mysql: %s: %w", what, err)
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1142, 1143, 1227, 1146, 1049, 1236:
			// access denied, no such table/database, binlog purged or unreadable
			return connector.Permanent(err)
		}
	}
	return err
}

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
	return &Source{st: st, mode: p.Mode, log: log, status: status, state: p.State, hist: &history{store: p.State},
		chunk: defaultSnapshotChunk, warned: map[string]bool{}}, nil
}

// Source reads one connector's tables. Read runs on one goroutine; Ack, Close and
// DescribePosition may be called from others.
type Source struct {
	st     settings
	mode   connector.Mode
	log    *slog.Logger
	status connector.Status
	state  connector.StateStore // nil: an interrupted snapshot cannot be resumed
	chunk  uint32               // rows per snapshot query
	// beforeDefinitions, when set (tests), runs between taking a snapshot and
	// reading its table definitions: where a concurrent DDL does harm.
	beforeDefinitions func(attempt int)

	// Owned by the Read goroutine.
	db      *sql.DB
	flavor  string // "mariadb" or "mysql"
	hist    *history
	cat     *catalog
	schemas map[tableName]*tableSchema
	version map[tableName]*record.Schema // last schema emitted per table, for versions
	warned  map[string]bool

	mu    sync.Mutex
	acked record.Position
	close []func()
	// completeInState: the saved snapshot state says "complete" and must be cleared
	// once a stream position is committed (it then no longer stands in for one).
	completeInState bool
}

// DescribePosition renders pos for `connectd offsets show`.
func (s *Source) DescribePosition(pos record.Position) string { return describePos(pos) }

// Ack records what the pipeline committed. MySQL has nothing to confirm (a replica
// holds no server-side state), so this only tracks it; binlog retention is the
// server's binlog_expire_logs_seconds / expire_logs_days.
func (s *Source) Ack(ctx context.Context, pos record.Position) error {
	s.mu.Lock()
	if pos.Compare(s.acked) > 0 {
		s.acked = append(record.Position(nil), pos...)
	}
	clear := s.completeInState && len(pos) > 0 && pos[0] == posStream
	if clear {
		s.completeInState = false
	}
	s.mu.Unlock()
	if clear {
		return s.saveSnapState(ctx, nil)
	}
	return nil
}

// Acked is the last position acknowledged by the pipeline.
func (s *Source) Acked() record.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// Close releases the connections.
func (s *Source) Close(context.Context) error {
	s.mu.Lock()
	fns := s.close
	s.close = nil
	s.mu.Unlock()
	for _, f := range fns {
		f()
	}
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
	return nil
}

func (s *Source) onClose(f func()) {
	s.mu.Lock()
	s.close = append(s.close, f)
	s.mu.Unlock()
}

// Read delivers the snapshot (when due) and then the stream.
func (s *Source) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	if s.db != nil {
		s.db.Close()
	}
	db, err := s.st.open(ctx)
	if err != nil {
		return err
	}
	s.db = db
	s.schemas = map[tableName]*tableSchema{}
	if s.version == nil {
		s.version = map[tableName]*record.Schema{}
	}
	srv, err := serverInfo(ctx, db)
	if err != nil {
		return err
	}
	s.flavor = srv.flavor
	if problems := srv.streamProblems(); len(problems) > 0 {
		return connector.Permanent(fmt.Errorf("mysql: the server cannot be streamed from: %s", strings.Join(problems, "; ")))
	}
	var target *coords
	if s.mode == connector.ModeSync {
		t, err := masterStatus(ctx, db)
		if err != nil {
			return err
		}
		target = &t
	}

	var from coords
	var skip []byte
	switch {
	case start == nil:
		if s.st.wantsSnapshot() {
			st, err := s.completedEmpty(ctx)
			if err != nil {
				return err
			}
			if st == nil {
				return s.snapshotThenStream(ctx, 1, target, emit)
			}
			s.log.Info("the snapshot completed without rows; streaming from its point", "from", st.start().String())
			if found, err := s.hist.load(ctx, nil); err != nil {
				return err
			} else if !found {
				return s.snapshotThenStream(ctx, 1, target, emit)
			}
			s.mu.Lock()
			s.completeInState = true
			s.mu.Unlock()
			if s.st.snapshot == config.SnapshotInitialOnly {
				s.log.Info("snapshot already complete; snapshot: initial_only streams nothing")
				return nil
			}
			from = st.start()
			break
		}
		if from, err = masterStatus(ctx, db); err != nil {
			return err
		}
		if from.gtid, err = s.gtidAt(ctx, from); err != nil {
			return err
		}
		base, err := s.baseDefinitions(ctx, db)
		if err != nil {
			return err
		}
		if err := s.hist.reset(ctx, base); err != nil {
			return err
		}
		s.log.Info("streaming without a snapshot", "from", from.String())
		// Commit the starting point before anything else: without it a run that
		// sees no change commits nothing, and the next run starts again at the
		// server's end, skipping what was written in between.
		fileNo, err := fileNumber(from.file)
		if err != nil {
			return connector.Permanent(err)
		}
		if err := emit(ctx, []record.Record{startCheckpoint(from, fileNo)}); err != nil {
			return err
		}
	default:
		d, err := parsePos(start)
		if err != nil {
			return connector.Permanent(fmt.Errorf("mysql: %w", err))
		}
		if d.snapshot && !d.done {
			return s.continueSnapshot(ctx, d, target, emit)
		}
		if d.snapshot && s.st.snapshot == config.SnapshotInitialOnly {
			s.log.Info("snapshot already complete; snapshot: initial_only streams nothing")
			return nil
		}
		from, skip = d.resume, d.prefix
		found, err := s.hist.load(ctx, d.prefix)
		if err != nil {
			return err
		}
		if !found {
			s.log.Warn("no schema history stored for this connector; using the tables' current definitions, which is wrong if a DDL ran after the committed position",
				"position", describePos(start))
			base, err := s.baseDefinitions(ctx, db)
			if err != nil {
				return err
			}
			if err := s.hist.reset(ctx, base); err != nil {
				return err
			}
		}
	}
	if s.cat, err = s.hist.replay(s.st); err != nil {
		return err
	}
	check := s.saveSelection
	if start != nil {
		check = s.checkSelection
	}
	if err := check(ctx); err != nil {
		return err
	}
	return s.stream(ctx, from, skip, target, emit)
}

// continueSnapshot carries on after committed position d inside a snapshot: it
// resumes the snapshot where its saved state allows, streams when the state says the
// snapshot completed after d, and otherwise takes the snapshot again.
func (s *Source) continueSnapshot(ctx context.Context, d decodedPos, target *coords, emit connector.EmitFunc) error {
	st, err := s.loadSnapState(ctx)
	if err != nil {
		return err
	}
	why := ""
	switch {
	case s.state == nil:
		why = "the offset store keeps no source state"
	case st == nil:
		why = "no saved snapshot state"
	case st.Epoch != d.epoch || st.Chunk == 0 || d.table >= uint32(len(st.Tables)):
		why = "the saved snapshot state belongs to another snapshot"
	case st.Complete:
		if s.st.snapshot == config.SnapshotInitialOnly {
			return nil
		}
		found, err := s.hist.load(ctx, d.prefix)
		if err != nil {
			return err
		}
		if !found {
			why = "no schema history stored"
			break
		}
		if s.cat, err = s.hist.replay(s.st); err != nil {
			return err
		}
		s.schemas = map[tableName]*tableSchema{}
		s.mu.Lock()
		s.completeInState = true
		s.mu.Unlock()
		return s.afterSnapshot(ctx, st, target, emit)
	default:
		restart, err := s.resumeSnapshot(ctx, st, d, target, emit)
		if !restart {
			return err
		}
		why = "see the warning above"
	}
	s.log.Warn("the previous snapshot was interrupted and cannot be resumed ("+why+"); taking it again from the start, so rows it already delivered appear again (with new positions)",
		"interrupted_at", describePos(d.prefix), "epoch", d.epoch+1)
	return s.snapshotThenStream(ctx, d.epoch+1, target, emit)
}

// completedEmpty returns the saved state of a snapshot that completed without a row
// (so nothing was committed), when streaming from its point still describes the
// selected tables: the same tables are selected and the binlog is still there.
func (s *Source) completedEmpty(ctx context.Context) (*snapState, error) {
	st, err := s.loadSnapState(ctx)
	if err != nil || st == nil || !st.Complete {
		return nil, err
	}
	tables, err := listTables(ctx, s.db, s.st.tracked)
	if err != nil {
		return nil, err
	}
	var now [][2]string
	for _, t := range tables {
		if s.st.selected(t) {
			now = append(now, [2]string{t.db, t.name})
		}
	}
	if !slices.Equal(now, st.Tables) {
		s.log.Info("the selected tables changed since the last (empty) snapshot; taking a new one")
		return nil, nil
	}
	if err := s.checkBinlogExists(ctx, st.File); err != nil {
		s.log.Info("the binlog of the last (empty) snapshot is gone; taking a new one", "err", err)
		return nil, nil
	}
	return st, nil
}

// baseDefinitions reads SHOW CREATE TABLE of every table of the tracked databases.
func (s *Source) baseDefinitions(ctx context.Context, q queryer) ([]histEntry, error) {
	tables, err := listTables(ctx, q, s.st.tracked)
	if err != nil {
		return nil, err
	}
	out, err := s.baseContext(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		ddl, err := showCreate(ctx, q, t)
		if err != nil {
			return nil, err
		}
		if ddl == "" {
			continue // dropped meanwhile
		}
		out = append(out, histEntry{DB: t.db, SQL: ddl})
	}
	return out, nil
}

// gtidAt is the GTID set executed before the binlog coordinates c.
func (s *Source) gtidAt(ctx context.Context, c coords) (string, error) {
	if s.flavor != "mariadb" {
		return c.gtid, nil
	}
	var g sql.NullString
	if err := s.db.QueryRowContext(ctx, "SELECT BINLOG_GTID_POS(?, ?)", c.file, c.offset).Scan(&g); err != nil {
		return "", classify("BINLOG_GTID_POS", err)
	}
	return g.String, nil
}

// schemaOf returns the record schema of a table as of the catalog, building it (and
// counting a new version) when the definition changed.
func (s *Source) schemaOf(t tableName) (*tableSchema, error) {
	if ts, ok := s.schemas[t]; ok {
		return ts, nil
	}
	def, ok := s.cat.tables[t]
	if !ok {
		return nil, connector.Permanent(fmt.Errorf("mysql: table %s has rows in the binlog but no definition in the schema history; run `connectd offsets reset` to snapshot again", t))
	}
	ts, err := buildSchema(t, def, s.st.types)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("mysql: table %s: %w", t, err))
	}
	if old, ok := s.version[t]; ok {
		if old.Fingerprint() == ts.schema.Fingerprint() && sameSourceTypes(old, ts.schema) {
			ts.schema = old
		} else {
			ts.schema.Version = old.Version + 1
			s.log.Info("schema changed", "table", t.String(), "version", ts.schema.Version)
		}
	}
	for i, ct := range ts.cols {
		if !ct.known {
			s.warnOnce(t.String()+"."+ts.schema.Columns[i].Name, "column type has no mapping; its values are kept as text",
				"table", t.String(), "column", ts.schema.Columns[i].Name, "type", ct.source)
		}
	}
	s.version[t] = ts.schema
	s.schemas[t] = ts
	return ts, nil
}

func sameSourceTypes(a, b *record.Schema) bool {
	if len(a.Columns) != len(b.Columns) {
		return false
	}
	for i := range a.Columns {
		if a.Columns[i].SourceType != b.Columns[i].SourceType {
			return false
		}
	}
	return true
}

func (s *Source) warnOnce(key, msg string, args ...any) {
	if s.warned[key] {
		return
	}
	s.warned[key] = true
	s.log.Warn(msg, args...)
}

// warnValue reports a value problem once per column.
func (s *Source) warnValue(ts *tableSchema, i int, w warning) {
	col := ts.schema.Columns[i]
	key := ts.schema.QualifiedName() + "." + col.Name + "#" + strconv.Itoa(int(w))
	switch w {
	case warnZeroDate:
		s.warnOnce(key, "zero date mapped to null", "table", ts.schema.QualifiedName(), "column", col.Name)
	case warnBool:
		s.warnOnce(key, "TINYINT(1) value other than 0 or 1 mapped to true", "table", ts.schema.QualifiedName(), "column", col.Name)
	case warnCharset:
		s.warnOnce(key, "text in a character set without a decoder is kept as its raw bytes", "table", ts.schema.QualifiedName(), "column", col.Name, "type", col.SourceType)
	}
}

// queryer is *sql.DB or *sql.Conn.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// systemDBs are never streamed.
var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// listTables lists the base tables of the databases keep accepts, sorted.
func listTables(ctx context.Context, q queryer, keep func(db string) bool) ([]tableName, error) {
	rows, err := q.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE'")
	if err != nil {
		return nil, classify("list tables", err)
	}
	defer rows.Close()
	var out []tableName
	for rows.Next() {
		var t tableName
		if err := rows.Scan(&t.db, &t.name); err != nil {
			return nil, classify("list tables", err)
		}
		if !systemDBs[strings.ToLower(t.db)] && keep(t.db) {
			out = append(out, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify("list tables", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].db != out[j].db {
			return out[i].db < out[j].db
		}
		return out[i].name < out[j].name
	})
	return out, nil
}

// showCreate returns SHOW CREATE TABLE, or "" when the table is gone.
func showCreate(ctx context.Context, q queryer, t tableName) (string, error) {
	var name, ddl string
	err := q.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteName(t)).Scan(&name, &ddl)
	var me *gomysql.MySQLError
	if errors.As(err, &me) && me.Number == 1146 {
		return "", nil
	}
	if err != nil {
		return "", classify("SHOW CREATE TABLE "+t.String(), err)
	}
	return ddl, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteName(t tableName) string { return quoteIdent(t.db) + "." + quoteIdent(t.name) }

// server describes the server's binlog settings.
type server struct {
	flavor, version                   string
	logBin, format, rowImage, rowMeta string
	serverID                          uint32
	gtidMode                          string
}

func serverInfo(ctx context.Context, db queryer) (server, error) {
	var srv server
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@server_id").Scan(&srv.version, &srv.serverID); err != nil {
		return srv, classify("read server version", err)
	}
	srv.flavor = "mysql"
	if strings.Contains(strings.ToLower(srv.version), "mariadb") {
		srv.flavor = "mariadb"
	}
	vars := map[string]*string{"log_bin": &srv.logBin, "binlog_format": &srv.format, "binlog_row_image": &srv.rowImage,
		"binlog_row_metadata": &srv.rowMeta, "gtid_mode": &srv.gtidMode}
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'gtid_mode')")
	if err != nil {
		return srv, classify("read binlog settings", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return srv, classify("read binlog settings", err)
		}
		if p, ok := vars[strings.ToLower(k)]; ok {
			*p = strings.ToUpper(v)
		}
	}
	return srv, rows.Err()
}

// streamProblems lists what keeps the binlog from giving full row images.
func (srv server) streamProblems() []string {
	var out []string
	if srv.logBin != "ON" && srv.logBin != "1" {
		out = append(out, "log_bin is "+orNone(srv.logBin)+" (fix: start the server with log_bin=binlog)")
	}
	if srv.format != "ROW" {
		out = append(out, "binlog_format is "+orNone(srv.format)+" (fix: SET GLOBAL binlog_format = 'ROW'; and binlog_format = ROW in the server config)")
	}
	if srv.rowImage != "" && srv.rowImage != "FULL" {
		out = append(out, "binlog_row_image is "+srv.rowImage+" (fix: SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image = FULL in the server config)")
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

// masterStatus is the end of the binlog now (with the executed GTID set on MySQL).
func masterStatus(ctx context.Context, db queryer) (coords, error) {
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1064 {
			// MySQL 8.4 renamed it.
			rows, err = db.QueryContext(ctx, "SHOW BINARY LOG STATUS")
		}
		if err != nil {
			return coords{}, classify("SHOW MASTER STATUS", err)
		}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return coords{}, classify("SHOW MASTER STATUS", err)
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return coords{}, classify("SHOW MASTER STATUS", err)
		}
		return coords{}, connector.Permanent(errors.New("mysql: SHOW MASTER STATUS is empty: the binary log is off (fix: start the server with log_bin=binlog)"))
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return coords{}, classify("SHOW MASTER STATUS", err)
	}
	var c coords
	for i, name := range cols {
		switch strings.ToLower(name) {
		case "file":
			c.file = vals[i].String
		case "position":
			n, err := strconv.ParseUint(vals[i].String, 10, 64)
			if err != nil {
				return coords{}, fmt.Errorf("mysql: SHOW MASTER STATUS position %q", vals[i].String)
			}
			c.offset = n
		case "executed_gtid_set":
			c.gtid = strings.ReplaceAll(vals[i].String, "\n", "")
		}
	}
	return c, nil
}
