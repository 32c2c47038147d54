package warehouse

import (
	"context"
	"fmt"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// CheckWrite shows that the session may do in the target schema what loading does:
// create the schema and a table, add a column, write and update rows. It works in a
// transaction it rolls back, so it leaves nothing behind. kind prefixes the results'
// names; grant is the fix when the schema cannot be created.
func CheckWrite(ctx context.Context, c Conn, d Dialect, schema, kind, grant string) []connector.CheckResult {
	if err := c.Begin(ctx); err != nil {
		return []connector.CheckResult{{Name: kind + ": begin a transaction", Detail: err.Error()}}
	}
	defer func() { _ = c.Rollback(context.WithoutCancel(ctx)) }() // nothing to keep
	probe := qualified(d, schema, "_connectd_check")
	bigint, _ := d.ColumnType(record.Type{Kind: record.KindInt64})
	text, _ := d.ColumnType(record.Type{Kind: record.KindString})
	if err := ensureSchema(ctx, c, d, schema); err != nil {
		return []connector.CheckResult{{Name: kind + ": create schema " + schema, Detail: err.Error(), Fix: grant}}
	}
	res := []connector.CheckResult{{Name: kind + ": schema " + schema, OK: true, Detail: "exists or may be created"}}
	steps := []struct{ name, sql, fix string }{
		{"create a table in " + schema, fmt.Sprintf("CREATE TABLE %s (id %s PRIMARY KEY, v %s)", probe, bigint, text),
			fmt.Sprintf("GRANT CREATE, USAGE ON SCHEMA %s TO <user>", d.Ident(schema))},
		{"alter a table in " + schema, fmt.Sprintf("ALTER TABLE %s ADD COLUMN w %s", probe, text),
			"the user must own the tables it loads: let connectd create them, or ALTER TABLE ... OWNER TO <user>"},
		{"write rows in " + schema, fmt.Sprintf("INSERT INTO %s (id, v) VALUES (1, 'a')", probe), ""},
		{"update rows in " + schema, fmt.Sprintf("UPDATE %s SET w = v WHERE id = 1", probe), ""},
	}
	for _, s := range steps {
		if _, err := c.Exec(ctx, s.sql); err != nil {
			return append(res, connector.CheckResult{Name: kind + ": " + s.name, Detail: err.Error(), Fix: s.fix})
		}
		res = append(res, connector.CheckResult{Name: kind + ": " + s.name, OK: true, Detail: "allowed (rolled back)"})
	}
	return res
}
