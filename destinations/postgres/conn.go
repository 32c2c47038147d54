package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// conn is the warehouse core's session on the target: one connection, one
// transaction at a time.
type conn struct {
	c  *pgx.Conn
	tx pgx.Tx
}

var _ warehouse.Conn = (*conn)(nil)

// sessionDefaults are the settings connectd's session asks for unless the DSN sets
// them. A merge joins a flush's staged rows with the target: with the server's
// default 4MB of work_mem the hash spills to disk, and with its 8MB of temp_buffers
// the staging table does; both are limits, taken only as needed.
var sessionDefaults = map[string]string{
	"application_name": "connectd",
	"work_mem":         "256MB",
	"temp_buffers":     "256MB",
}

func connect(ctx context.Context, cfg *Config) (*conn, error) {
	pc, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("parse dsn: %w", err)
	}
	if cfg.Password != "" {
		pc.Password = cfg.Password
	}
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	for k, v := range sessionDefaults {
		if _, ok := pc.RuntimeParams[k]; !ok {
			pc.RuntimeParams[k] = v
		}
	}
	c, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s:%d/%s: %w", pc.Host, pc.Port, pc.Database, err)
	}
	return &conn{c: c}, nil
}

func (c *conn) Begin(ctx context.Context) error {
	if c.tx != nil {
		return errors.New("a transaction is already open")
	}
	tx, err := c.c.Begin(ctx)
	if err != nil {
		return err
	}
	c.tx = tx
	return nil
}

func (c *conn) Commit(ctx context.Context) error {
	tx := c.tx
	c.tx = nil
	if tx == nil {
		return errors.New("no transaction is open")
	}
	return tx.Commit(ctx)
}

func (c *conn) Rollback(ctx context.Context) error {
	tx := c.tx
	c.tx = nil
	if tx == nil {
		return nil
	}
	return tx.Rollback(ctx)
}

func (c *conn) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := c.c.Exec(ctx, sql, args...)
	if err != nil {
		return 0, classify(err)
	}
	return tag.RowsAffected(), nil
}

func (c *conn) QueryRow(ctx context.Context, sql string, args []any, dest ...any) (bool, error) {
	err := c.c.QueryRow(ctx, sql, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Columns reads a table's columns with their types as format_type spells them, and
// its primary key, from the catalog.
func (c *conn) Columns(ctx context.Context, schema, table string) ([]warehouse.Column, error) {
	rows, err := c.c.Query(ctx, `
SELECT a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(a.attnum = ANY (i.indkey), false)
FROM pg_attribute a
JOIN pg_class r ON r.oid = a.attrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
LEFT JOIN pg_index i ON i.indrelid = r.oid AND i.indisprimary
WHERE n.nspname = $1 AND r.relname = $2 AND r.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, schema, table)
	if err != nil {
		return nil, err
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (warehouse.Column, error) {
		var c warehouse.Column
		err := r.Scan(&c.Name, &c.Type, &c.Key)
		c.Logical = logical(c.Type)
		return c, err
	})
	if len(cols) == 0 {
		return nil, err
	}
	return cols, err
}

// Load copies rows in with COPY FROM STDIN in text format, rendered as the server
// reads it.
func (c *conn) Load(ctx context.Context, schema, table string, cols []warehouse.LoadColumn, rows [][]record.Value) error {
	names := make([]string, len(cols))
	types := make([]record.Type, len(cols))
	for i, col := range cols {
		names[i] = dialect{}.Ident(col.Name)
		types[i] = col.Type
	}
	target := dialect{}.Ident(table)
	if schema != "" {
		target = dialect{}.Ident(schema) + "." + target
	}
	r := &copyReader{cols: types, rows: rows}
	_, err := c.c.PgConn().CopyFrom(ctx, r, fmt.Sprintf("COPY %s (%s) FROM STDIN", target, strings.Join(names, ", ")))
	if r.err != nil {
		return connector.Permanent(fmt.Errorf("row %d: %w", r.next+1, r.err))
	}
	return classify(err)
}

// classify marks the server's errors that a retry repeats as permanent: bad data
// (class 22), a violated constraint (23), a statement the target refuses (42: a
// missing privilege, an object that exists). Connection and server failures stay
// transient.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && len(pe.Code) == 5 {
		switch pe.Code[:2] {
		case "22", "23", "42":
			return connector.Permanent(err)
		}
	}
	return err
}

func (c *conn) Close(ctx context.Context) error {
	return c.c.Close(ctx)
}

func (c *conn) Query(ctx context.Context, sql string, fn func(int64) error) error {
	rows, err := c.c.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	return warehouse.EachInt(rows, fn)
}
