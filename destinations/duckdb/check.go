package duckdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/duckdb/duckdbconfig"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// Check opens the database file and, in a transaction it rolls back, does what a
// flush does: creates the target schema and a scratch table in it, adds a column to
// the table and appends rows. A file that Check created is removed again.
func (Kind) Check(ctx context.Context, p connector.DestinationParams) []connector.CheckResult {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return []connector.CheckResult{{Name: "duckdb: config", Detail: err.Error(),
			Fix: "set destination.path to the absolute path of a .duckdb file"}}
	}
	if msg := duckdbconfig.CheckPath(cfg.Path); msg != "" {
		return []connector.CheckResult{{Name: "duckdb: path", Detail: msg,
			Fix: "set destination.path to the absolute path of a .duckdb file, such as /var/lib/connectd/replica.duckdb"}}
	}
	if msg := duckdbconfig.SchemaProblem(cfg.Path, cfg.Schema); msg != "" {
		return []connector.CheckResult{{Name: "duckdb: schema", Detail: msg,
			Fix: "set destination.schema to another name (its default is main)"}}
	}
	_, statErr := os.Stat(cfg.Path)
	created := errors.Is(statErr, os.ErrNotExist)

	name := "duckdb: open " + cfg.Path
	c, err := openConn(ctx, cfg.Path)
	if err != nil {
		return []connector.CheckResult{{Name: name, Detail: err.Error(),
			Fix: fmt.Sprintf("let connectd's user (uid %d) create and write %s and %s.wal (and their directory), check the disk is not full or read-only, and that no other process has the file open",
				os.Getuid(), cfg.Path, cfg.Path)}}
	}
	defer func() {
		c.Close(ctx)
		if created {
			// Leave no trace of a check: the file did not exist before it.
			os.Remove(cfg.Path)
			os.Remove(cfg.Path + ".wal")
		}
	}()
	var version string
	if _, err := c.QueryRow(ctx, "SELECT version()", nil, &version); err != nil {
		return []connector.CheckResult{{Name: name, Detail: "opened, but it answers no query: " + err.Error(),
			Fix: "check the file is a DuckDB database (not another file at that path)"}}
	}
	detail := "DuckDB " + version + ", an existing file"
	if created {
		detail = "DuckDB " + version + ", a new file (removed again after the check)"
	}
	res := []connector.CheckResult{{Name: name, OK: true, Detail: detail}}
	return append(res, checkWrite(ctx, c, cfg)...)
}

// checkWrite runs the steps of a first flush inside a transaction that it rolls back.
func checkWrite(ctx context.Context, c *conn, cfg *Config) []connector.CheckResult {
	d := dialect{}
	var b [6]byte
	rand.Read(b[:])
	target := warehouse.Target{Schema: cfg.Schema, Table: "_connectd_check_" + hex.EncodeToString(b[:]), Mode: warehouse.Merge}
	table := d.Ident(target.Schema) + "." + d.Ident(target.Table)
	fileFix := fmt.Sprintf("check that connectd's user (uid %d) can write %s and the disk is not full", os.Getuid(), cfg.Path)
	if err := c.Begin(ctx); err != nil {
		return []connector.CheckResult{{Name: "duckdb: begin a transaction", Detail: err.Error(), Fix: fileFix}}
	}
	defer func() {
		// Nothing of the check may stay; a failed rollback ends with the connection.
		_ = c.Rollback(context.WithoutCancel(ctx))
	}()

	var res []connector.CheckResult
	step := func(name, ok, fix string, run func() error) bool {
		if err := run(); err != nil {
			res = append(res, connector.CheckResult{Name: name, Detail: err.Error(), Fix: fix})
			return false
		}
		res = append(res, connector.CheckResult{Name: name, OK: true, Detail: ok})
		return true
	}
	text := record.Type{Kind: record.KindString}
	schema := record.NewSchema("check", "probe", []record.Column{
		{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
		{Name: "note", SourceType: "text", Type: text, Nullable: true},
	})
	if !step("duckdb: schema "+cfg.Schema, "exists or can be created", fileFix, func() error {
		_, err := c.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+d.Ident(cfg.Schema))
		return err
	}) {
		return res
	}
	if !step("duckdb: create a table", "created "+table+" (rolled back)", fileFix, func() error {
		q, err := warehouse.CreateTable(d, target, schema)
		if err == nil {
			_, err = c.Exec(ctx, q)
		}
		return err
	}) {
		return res
	}
	if !step("duckdb: alter a table", "added a column (rolled back)", fileFix, func() error {
		_, err := c.Exec(ctx, "ALTER TABLE "+table+" ADD COLUMN "+d.Ident("added")+" DOUBLE")
		return err
	}) {
		return res
	}
	step("duckdb: write rows", "appended and read back 2 rows (rolled back)", fileFix, func() error {
		err := c.Load(ctx, target.Schema, target.Table, []warehouse.LoadColumn{
			{Name: "id", Type: record.Type{Kind: record.KindInt64}},
			{Name: "note", Type: text},
			{Name: warehouse.ColPos, Type: text},
			{Name: warehouse.ColCommitTS, Type: record.Type{Kind: record.KindTimestampTZ}},
		}, [][]record.Value{{int64(1), "connectd check", "00", record.Timestamp(0)}, {int64(2), nil, "00", record.Timestamp(0)}})
		if err != nil {
			return err
		}
		var n int64
		if _, err := c.QueryRow(ctx, "SELECT count(*) FROM "+table, nil, &n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("appended 2 rows, read back %d", n)
		}
		return nil
	})
	return res
}
