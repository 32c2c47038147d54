package duckdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// conn is the destination's one session on the DuckDB file: a connection pinned
// for the destination's life, so that its transaction, its temporary staging table
// and the views of its loads all live on it.
type conn struct {
	path string
	db   *sql.DB
	c    *sql.Conn
	inTx bool
	// view is the name of the view a load reads its rows from: one per connection,
	// as two connectors loading one file at once would otherwise create and drop the
	// same view, which DuckDB's optimistic concurrency makes a conflict.
	view string
}

// driverConn is what Load needs of the driver's connection.
type driverConn interface {
	driver.Conn
	driver.ExecerContext
}

var _ warehouse.Conn = (*conn)(nil)

// openConn opens (creating it and its directory when missing) the database file.
// The driver keeps one database instance per file in the process, so two
// connectors on one file share it, each with its own connection; another process
// cannot open the file while this one has it (DuckDB locks it).
func openConn(ctx context.Context, path string) (*conn, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("duckdb: create the directory of %s: %w", path, err)
	}
	connector, err := duckdb.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("duckdb: open %s: %w", path, openHint(err))
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("duckdb: connect to %s: %w", path, err)
	}
	var id [8]byte
	rand.Read(id[:])
	return &conn{path: path, db: db, c: c, view: fmt.Sprintf("_connectd_rows_%x", id)}, nil
}

// openHint adds what to do to the errors of opening a file that a user can fix.
func openHint(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "Conflicting lock"):
		return fmt.Errorf("%w (DuckDB lets one process open a database file for writing: stop the other process, such as a duckdb shell, or give connectd a file of its own)", err)
	case strings.Contains(msg, "Permission denied") || strings.Contains(msg, "Read-only file system"):
		return fmt.Errorf("%w (connectd's user, uid %d, must be able to create and write the file and a .wal file beside it)", err, os.Getuid())
	}
	return err
}

func (c *conn) Begin(ctx context.Context) error {
	if _, err := c.c.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	c.inTx = true
	return nil
}

func (c *conn) Commit(ctx context.Context) error {
	c.inTx = false
	_, err := c.c.ExecContext(ctx, "COMMIT")
	return err
}

// Rollback ends the open transaction, if any: DuckDB refuses a ROLLBACK outside one.
func (c *conn) Rollback(ctx context.Context) error {
	if !c.inTx {
		return nil
	}
	c.inTx = false
	_, err := c.c.ExecContext(ctx, "ROLLBACK")
	return err
}

func (c *conn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := c.c.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, statementError(q, err)
	}
	return res.RowsAffected()
}

// statementError makes the failures that no retry can fix permanent, saying what to
// run instead.
func statementError(q string, err error) error {
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return err
	}
	if de.Type == duckdb.ErrorTypeBinder && strings.Contains(q, "SET DATA TYPE") && strings.Contains(de.Msg, "PRIMARY KEY") {
		return connector.Permanent(fmt.Errorf("%w: DuckDB cannot change the type of a primary key column. "+
			"Rebuild the table on the target (CREATE TABLE new (...) with the new type, INSERT INTO new SELECT * FROM old, DROP TABLE old, ALTER TABLE new RENAME TO old), "+
			"or drop it and reload it with `connectd offsets reset`; then start the connector again", err))
	}
	return err
}

func (c *conn) QueryRow(ctx context.Context, q string, args []any, dest ...any) (bool, error) {
	err := c.c.QueryRowContext(ctx, q, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (c *conn) Query(ctx context.Context, q string, fn func(int64) error) error {
	rows, err := c.c.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	return warehouse.EachInt(rows, fn)
}

// Columns reads a table's columns and primary key from DuckDB's catalog. Names are
// matched as DuckDB matches identifiers, without regard to case.
func (c *conn) Columns(ctx context.Context, schema, table string) ([]warehouse.Column, error) {
	rows, err := c.c.QueryContext(ctx, `SELECT column_name, data_type FROM duckdb_columns()
		WHERE database_name = current_database() AND lower(schema_name) = lower($1) AND lower(table_name) = lower($2)
		ORDER BY column_index`, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []warehouse.Column
	for rows.Next() {
		var col warehouse.Column
		if err := rows.Scan(&col.Name, &col.Type); err != nil {
			return nil, err
		}
		col.Logical = parseType(col.Type)
		cols = append(cols, col)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if cols == nil {
		return nil, nil
	}
	var key []any
	found, err := c.QueryRow(ctx, `SELECT constraint_column_names FROM duckdb_constraints()
		WHERE database_name = current_database() AND lower(schema_name) = lower($1) AND lower(table_name) = lower($2)
		AND constraint_type = 'PRIMARY KEY'`, []any{schema, table}, &key)
	if err != nil {
		return nil, fmt.Errorf("read the primary key: %w", err)
	}
	if found {
		for _, k := range key {
			for i := range cols {
				if name, _ := k.(string); strings.EqualFold(cols[i].Name, name) {
					cols[i].Key = true
				}
			}
		}
	}
	return cols, nil
}

// Load hands the rows to DuckDB as Arrow record batches, built here column by column
// in Go memory, and inserts them with one INSERT ... SELECT from a view DuckDB
// registers on them: DuckDB reads the batches' buffers as they are, so no value
// crosses cgo on its own. The SELECT turns what Arrow does not carry as the column's
// type (JSON) into it, and reaches temporary tables as any statement does. It runs in
// the open transaction, like every statement of the connection.
func (c *conn) Load(ctx context.Context, schema, table string, cols []warehouse.LoadColumn, rows [][]record.Value) error {
	if len(rows) == 0 {
		return nil
	}
	d := dialect{}
	target := stagingName(table)
	if schema != "" {
		target = d.Ident(schema) + "." + d.Ident(table)
	}
	src, err := newBatches(cols, rows)
	if err != nil {
		return err
	}
	defer src.Release()
	quoted := make([]string, len(cols))
	exprs := make([]string, len(cols))
	for i, col := range cols {
		quoted[i] = d.Ident(col.Name)
		exprs[i] = d.Ident(src.schema.Field(i).Name)
		if e := src.cols[i].expr; e != nil {
			exprs[i] = e(exprs[i])
		}
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", target, strings.Join(quoted, ", "), strings.Join(exprs, ", "), d.Ident(c.view))
	err = c.c.Raw(func(dc any) error {
		exec, ok := dc.(driverConn)
		if !ok {
			return fmt.Errorf("duckdb: the driver's connection is a %T", dc)
		}
		release, err := registerRows(exec, src, c.view)
		if err != nil {
			return fmt.Errorf("hand the rows for %s to DuckDB: %w", target, err)
		}
		defer release()
		if _, err := exec.ExecContext(ctx, q, nil); err != nil {
			if cerr := src.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("insert %d rows into %s: %w", len(rows), target, err)
		}
		// The view is one of the database (in its default schema), created and
		// dropped in the flush's transaction, and reads a stream that release frees.
		if _, err := exec.ExecContext(ctx, "DROP VIEW "+d.Ident(c.view), nil); err != nil {
			return fmt.Errorf("drop the view of the rows: %w", err)
		}
		return nil
	})
	if cerr := src.Err(); err == nil && cerr != nil {
		// DuckDB ended the scan early without saying so: the rows are not all in.
		err = cerr
	}
	return err
}

// Close closes the connection and the database; an open transaction is rolled back.
func (c *conn) Close(context.Context) error {
	return errors.Join(c.c.Close(), c.db.Close())
}
