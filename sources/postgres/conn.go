package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sessionParams are the settings the pgvalue decoders assume. They go into the startup
// packet of every connection, replication ones included: pgoutput formats values with
// the walsender's own session settings.
var sessionParams = map[string]string{
	"DateStyle":          "ISO",
	"TimeZone":           "UTC",
	"IntervalStyle":      "iso_8601",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
}

var slotNameRE = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// settings is a validated Config with its defaults applied.
type settings struct {
	name        string // the connector's name, for messages
	dsn         string
	password    string
	tables      []string
	slot        string
	publication string
	snapshot    string
	heartbeat   time.Duration
	chunk       uint32 // rows per snapshot query
	parallel    int    // snapshot readers; 0: chosen at the snapshot (snapshot.go)
	discovery   time.Duration
}

func settingsFrom(p connector.SourceParams) (settings, error) {
	c, err := connector.SourceConfig[Config](p)
	if err != nil {
		return settings{}, connector.Permanent(fmt.Errorf("postgres: %w", err))
	}
	s := settings{
		name: p.Name,
		dsn:  c.DSN, password: c.Password, tables: c.Tables, slot: c.Slot,
		publication: c.Publication, snapshot: c.Snapshot, heartbeat: c.Heartbeat,
		discovery: c.Discovery,
	}
	if s.slot == "" {
		s.slot = DefaultName(p.Name)
	}
	if s.publication == "" {
		s.publication = DefaultName(p.Name)
	}
	var errs []string
	switch n := c.SnapshotChunk; {
	case n <= 0 || int64(n) >= math.MaxUint32:
		errs = append(errs, fmt.Sprintf("snapshot_chunk %d must be between 1 and %d rows", n, uint32(math.MaxUint32-1)))
	default:
		s.chunk = uint32(n)
	}
	switch n := c.SnapshotParallel; {
	case n < 0 || n > maxSnapshotParallel:
		errs = append(errs, fmt.Sprintf("snapshot_parallel %d must be between 0 (automatic) and %d", n, maxSnapshotParallel))
	default:
		s.parallel = n
	}
	if s.dsn == "" {
		errs = append(errs, "dsn is empty")
	}
	if len(s.tables) == 0 {
		errs = append(errs, "tables is empty (list schema.table names or globs like public.line_*)")
	}
	if !slotNameRE.MatchString(s.slot) {
		errs = append(errs, fmt.Sprintf("slot %q must match [a-z0-9_]+ (at most 63 characters)", s.slot))
	}
	if s.publication == "" || len(s.publication) > 63 || strings.ContainsAny(s.publication, "'\"\x00") {
		errs = append(errs, fmt.Sprintf("publication %q must be 1-63 characters without quotes", s.publication))
	}
	switch s.snapshot {
	case config.SnapshotInitial, config.SnapshotInitialOnly, config.SnapshotNever, config.SnapshotWhenNeeded:
	default:
		errs = append(errs, fmt.Sprintf("snapshot %q must be initial, initial_only, never or when_needed", s.snapshot))
	}
	for _, t := range s.tables {
		if !strings.Contains(t, ".") {
			errs = append(errs, fmt.Sprintf("table %q must be schema.table (e.g. public.%s)", t, t))
		}
	}
	if len(errs) > 0 {
		return s, connector.Permanent(fmt.Errorf("postgres: config: %s", strings.Join(errs, "; ")))
	}
	return s, nil
}

func (s settings) wantsSnapshot() bool {
	return s.snapshot != config.SnapshotNever
}

// connect opens a normal connection with the session settings pgvalue needs.
func connect(ctx context.Context, st settings) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(st.dsn)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("postgres: parse dsn: %w", err))
	}
	applySession(&cfg.Config, st)
	// The walsender sends only flushed WAL: a watermark committed asynchronously
	// would wait for the WAL writer (wal_writer_delay) before the stream sees it.
	cfg.RuntimeParams["synchronous_commit"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(fmt.Sprintf("connect to %s:%d", cfg.Host, cfg.Port), err)
	}
	return conn, nil
}

// connectReplication opens a logical replication connection (replication=database).
func connectReplication(ctx context.Context, st settings) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(st.dsn)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("postgres: parse dsn: %w", err))
	}
	applySession(cfg, st)
	cfg.RuntimeParams["replication"] = "database"
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// The stream reads this socket outside the network poller (sockconn_linux.go).
		return detach(network, c), nil
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(fmt.Sprintf("open replication connection to %s:%d", cfg.Host, cfg.Port), err)
	}
	return conn, nil
}

func applySession(cfg *pgconn.Config, st settings) {
	if st.password != "" {
		cfg.Password = st.password
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "connectd"
	}
}

// classify wraps err with what was being done, and marks the errors that retrying
// cannot fix as permanent. Everything else (dropped connections, a slot still held
// by a dying walsender, a server restart) is transient.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("postgres: %s: %w", what, err)
	if connector.IsPermanent(err) {
		return connector.Permanent(wrapped)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "28"), // invalid authorization
			pgErr.Code == "3D000", // database does not exist
			pgErr.Code == "42501", // insufficient privilege
			pgErr.Code == "42704", // undefined object (slot, publication)
			pgErr.Code == "53400": // configuration limit exceeded (max_replication_slots)
			return connector.Permanent(wrapped)
		}
		return wrapped
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return wrapped
	}
	var cfgErr *pgconn.ParseConfigError
	if errors.As(err, &cfgErr) {
		return connector.Permanent(wrapped)
	}
	return wrapped
}

// permanentf is a config problem the user must fix.
func permanentf(format string, args ...any) error {
	return connector.Permanent(fmt.Errorf("postgres: "+format, args...))
}
