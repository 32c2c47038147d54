package offsets

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// The tables of a postgres:// store, created when missing. One row per connector,
// and one per connector and state key; a commit is one upsert, so a crash leaves the
// old or the new position.
const (
	pgOffsetsTable = "connectd_offsets"
	pgStateTable   = "connectd_state"
	pgLeasesTable  = "connectd_leases"
	pgSchema       = `
CREATE TABLE IF NOT EXISTS ` + pgOffsetsTable + ` (
	connector    text PRIMARY KEY,
	position     bytea NOT NULL CHECK (length(position) > 0),
	committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ` + pgStateTable + ` (
	connector text NOT NULL,
	key       text NOT NULL,
	data      bytea NOT NULL,
	saved_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (connector, key)
);
CREATE TABLE IF NOT EXISTS ` + pgLeasesTable + ` (
	connector  text PRIMARY KEY,
	generation bigint NOT NULL,
	holder     jsonb NOT NULL,
	taken_at   timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE ` + pgOffsetsTable + ` ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0`
)

// Postgres is a Store keeping offsets in two tables of a PostgreSQL database. It
// holds one connection, opened again after it breaks; commits are few (one per
// flush), so connectors can share it.
type Postgres struct {
	cfg *pgx.ConnConfig

	mu   sync.Mutex
	conn *pgx.Conn
}

var _ Store = (*Postgres)(nil)

// NewPostgres connects to the database dsn names and creates the store's tables
// (connectd_offsets and connectd_state, in the first schema of the search_path) if
// they are missing.
func NewPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("offsets: postgres store: %w", err)
	}
	// A commit must survive the server's crash once it returns.
	if _, set := cfg.RuntimeParams["synchronous_commit"]; !set {
		cfg.RuntimeParams["synchronous_commit"] = "on"
	}
	if _, set := cfg.RuntimeParams["application_name"]; !set {
		cfg.RuntimeParams["application_name"] = "connectd offsets"
	}
	p := &Postgres{cfg: cfg}
	err = p.do(ctx, "create tables", func(ctx context.Context, c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			// Two connectd starting at once must not both create the tables.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('connectd offsets schema'))`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, pgSchema)
			return err
		})
	})
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) where() string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", p.cfg.User, p.cfg.Host, p.cfg.Port, p.cfg.Database)
}

// do runs f on the store's connection, connecting first if there is none or the
// last one broke.
func (p *Postgres) do(ctx context.Context, what string, f func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil || p.conn.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, p.cfg)
		if err != nil {
			return fmt.Errorf("offsets: %s: connect to %s: %w", what, p.where(), err)
		}
		p.conn = c
	}
	if err := f(ctx, p.conn); err != nil {
		if p.conn.IsClosed() || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			// A cancelled query leaves the connection in an unknown state: start afresh.
			_ = p.conn.Close(context.Background())
			p.conn = nil
		}
		return fmt.Errorf("offsets: %s in %s: %w", what, p.where(), err)
	}
	return nil
}

// Close closes the connection.
func (p *Postgres) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Close(context.Background())
	p.conn = nil
	return err
}

// Load returns the connector's committed position, or nil when it has none.
func (p *Postgres) Load(ctx context.Context, connector string) (record.Position, error) {
	if err := checkName(connector); err != nil {
		return nil, err
	}
	var pos record.Position
	err := p.do(ctx, "load "+connector, func(ctx context.Context, c *pgx.Conn) (err error) {
		pos, err = loadPG(ctx, c, connector)
		return err
	})
	return pos, err
}

// loadPG reads a connector's committed position; nil when it has none.
func loadPG(ctx context.Context, c *pgx.Conn, connector string) (record.Position, error) {
	var pos []byte
	err := c.QueryRow(ctx, `SELECT position FROM `+pgOffsetsTable+` WHERE connector = $1`, connector).Scan(&pos)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	case pos == nil:
		return nil, nil
	}
	return record.Position(pos), nil
}

// Commit durably replaces the connector's position, unless pos is below it. It is
// not fenced: connectd commits through a lease (Acquire).
func (p *Postgres) Commit(ctx context.Context, connector string, pos record.Position) error {
	if err := checkName(connector); err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("offsets: commit %s: empty position", connector)
	}
	var backwards error
	err := p.do(ctx, "commit "+connector, func(ctx context.Context, c *pgx.Conn) error {
		// bytea compares as bytes.Compare does: byte by byte, then the shorter first.
		tag, err := c.Exec(ctx, `INSERT INTO `+pgOffsetsTable+` (connector, position, committed_at) VALUES ($1, $2, now())
ON CONFLICT (connector) DO UPDATE SET position = excluded.position, committed_at = excluded.committed_at, generation = 0
WHERE `+pgOffsetsTable+`.position <= excluded.position`, connector, []byte(pos))
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var committed []byte
		if err := c.QueryRow(ctx, `SELECT position FROM `+pgOffsetsTable+` WHERE connector = $1`, connector).Scan(&committed); err != nil {
			return err
		}
		backwards = checkForward(connector, committed, pos)
		return nil
	})
	if err != nil {
		return err
	}
	return backwards
}

// Reset forgets the connector's source state and replaces its position with to
// (nil: deletes it), in one transaction.
func (p *Postgres) Reset(ctx context.Context, connector string, to record.Position) error {
	if err := checkName(connector); err != nil {
		return err
	}
	if to != nil && len(to) == 0 {
		return fmt.Errorf("offsets: reset %s: empty position", connector)
	}
	return p.do(ctx, "reset "+connector, func(ctx context.Context, c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM `+pgStateTable+` WHERE connector = $1`, connector); err != nil {
				return err
			}
			if to == nil {
				_, err := tx.Exec(ctx, `DELETE FROM `+pgOffsetsTable+` WHERE connector = $1`, connector)
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+pgOffsetsTable+` (connector, position, committed_at) VALUES ($1, $2, now())
ON CONFLICT (connector) DO UPDATE SET position = excluded.position, committed_at = excluded.committed_at`, connector, []byte(to))
			return err
		})
	})
}

// List names the connectors that have a committed position, sorted.
func (p *Postgres) List(ctx context.Context) ([]string, error) {
	var names []string
	err := p.do(ctx, "list", func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT connector FROM `+pgOffsetsTable+` ORDER BY connector COLLATE "C"`)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return names, err
}

// State returns the store of the connector's source state: one row per key.
func (p *Postgres) State(connector string) connector.StateStore {
	return &pgState{p: p, connector: connector}
}

type pgState struct {
	p         *Postgres
	connector string
}

func (s *pgState) Load(ctx context.Context, key string) ([]byte, error) {
	if err := checkState(s.connector, key); err != nil {
		return nil, err
	}
	var data []byte
	err := s.p.do(ctx, "load state "+s.connector+"/"+key, func(ctx context.Context, c *pgx.Conn) error {
		err := c.QueryRow(ctx, `SELECT data FROM `+pgStateTable+` WHERE connector = $1 AND key = $2`, s.connector, key).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			data = nil
			return nil
		}
		if err == nil && data == nil {
			data = []byte{} // saved empty, which is not "nothing saved"
		}
		return err
	})
	return data, err
}

func (s *pgState) Save(ctx context.Context, key string, data []byte) error {
	if err := checkState(s.connector, key); err != nil {
		return err
	}
	if data == nil {
		data = []byte{}
	}
	return s.p.do(ctx, "save state "+s.connector+"/"+key, func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO `+pgStateTable+` (connector, key, data, saved_at) VALUES ($1, $2, $3, now())
ON CONFLICT (connector, key) DO UPDATE SET data = excluded.data, saved_at = excluded.saved_at`, s.connector, key, data)
		return err
	})
}
