// Package warehouse loads change records into database tables, for the destinations
// whose target is a SQL database (postgres, duckdb): one target table per source
// table, created from its schema and altered as it changes; in merge mode a replica
// (upserts and deletes by key, older records never overwriting newer ones), in append
// mode a change log with the lake's metadata columns. Each flush and its position
// commit in one target transaction (docs/design.md, "Targets that keep their
// position"). A destination supplies a Dialect (its SQL's names and types) and a Conn
// (one session, with its bulk load); this package owns what is loaded and how.
package warehouse

import (
	"context"

	"github.com/connectd/connectd/record"
)

// Dialect is what the target's SQL differs in.
type Dialect interface {
	// Ident quotes an identifier.
	Ident(name string) string
	// ColumnType is the DDL type of a logical type, spelled as Conn.Columns reports
	// it, so that equal strings mean equal types; an error for a type the target
	// cannot hold.
	ColumnType(t record.Type) (string, error)
	// PositionType is the type of _pos and of the offsets table's position: text
	// that compares byte by byte.
	PositionType() string
	// CreateStaging creates a staging table that the end of the transaction
	// removes, or DropStaging does; columns is "name type, ...".
	CreateStaging(name, columns string) string
	// DropStaging removes a staging table after its statements ran ("" when the
	// transaction's end does).
	DropStaging(name string) string
	// ForUpdate is the suffix that locks the rows a SELECT reads until the
	// transaction ends ("" when the target allows one writer only).
	ForUpdate() string
}

// Rekeyer is implemented by a Dialect whose target cannot replace a table's primary
// key with ALTER TABLE ... DROP CONSTRAINT, ADD PRIMARY KEY: Rekey says what to run
// instead to give schema.table the primary key keys (quoted, comma-separated). The
// error that stops a connector whose source table changed its key quotes it.
type Rekeyer interface {
	Rekey(schema, table, keys string) string
}

// Merger is implemented by a Dialect whose target may run SQL MERGE: Merge reports
// whether this target does (PostgreSQL 15 and later). The staged rows are then applied
// in one statement, one join with the target instead of one per statement.
type Merger interface {
	Merge() bool
}

// Column is a column of a target table.
type Column struct {
	Name string
	// Type is the target's type, spelled as Dialect.ColumnType spells it.
	Type string
	// Logical is the logical type Type holds; KindInvalid for a type connectd does
	// not map (a column the user added), which is then never written.
	Logical record.Type
	Key     bool // part of the primary key
}

// LoadColumn is a column a bulk load fills.
type LoadColumn struct {
	Name string
	// Type is the column's logical type. A value may also be of a kind that widens
	// to it (an int32 for an int64 column): the loader converts.
	Type record.Type
}

// Conn is one session on the target. Its methods run inside the open transaction, if
// any; placeholders are $1, $2, ...
type Conn interface {
	Begin(ctx context.Context) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
	// Exec runs a statement and returns the rows it affected.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	// QueryRow runs a query and scans its first row into dest; found is false when
	// it returned no row.
	QueryRow(ctx context.Context, sql string, args []any, dest ...any) (found bool, err error)
	// Query runs a query whose one column is an integer and calls fn with each row's value.
	Query(ctx context.Context, sql string, fn func(int64) error) error
	// Columns returns the columns of schema.table in their order, nil when the table
	// does not exist.
	Columns(ctx context.Context, schema, table string) ([]Column, error)
	// Load bulk-loads rows into a table: a staging table when schema is "", else
	// schema.table. Each row holds one value per column, nil for NULL.
	Load(ctx context.Context, schema, table string, cols []LoadColumn, rows [][]record.Value) error
	Close(ctx context.Context) error
}

// IntRows is what pgx and database/sql both return from a query.
type IntRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// EachInt calls fn with each row's one integer column: the loop of Conn.Query for
// either driver. The caller closes rows.
func EachInt(rows IntRows, fn func(int64) error) error {
	var n int64
	for rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return rows.Err()
}
