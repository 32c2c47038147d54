// Package postgres is the `type: postgres` destination: tables in a PostgreSQL
// database, kept as replicas of the source tables (merge) or as change logs (append),
// loaded with COPY into a staging table and applied in set statements, each flush and
// its position in one transaction (README.md; the loading itself is
// destinations/warehouse's).
package postgres

import (
	"context"
	"fmt"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// Kind is the postgres destination kind.
type Kind struct{}

var (
	_ connector.DestinationKind = Kind{}
	_ connector.DDLPlanner      = Kind{}
)

// Open connects to the target and reads the connector's committed position.
func (Kind) Open(ctx context.Context, p connector.DestinationParams) (connector.Destination, error) {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return nil, connector.Permanent(err)
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var major int
	if _, err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int / 10000", nil, &major); err != nil {
		c.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("read the server's version: %w", err)
	}
	return warehouse.Open(ctx, c, dialect{merge: major >= 15 && !cfg.noMerge}, cfg.Layout(), p.Name, p.Logger)
}

// TargetDDL is the statement that creates the target table of a source table.
func (Kind) TargetDDL(p connector.DestinationParams, s *record.Schema) (string, error) {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return "", err
	}
	l := cfg.Layout()
	return warehouse.CreateTable(dialect{}, l.For(s.Namespace, s.Table), s)
}

// Check connects, reports the server's version, and creates, alters and writes a
// table in the target schema inside a transaction it rolls back.
func (Kind) Check(ctx context.Context, p connector.DestinationParams) []connector.CheckResult {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return []connector.CheckResult{{Name: "postgres: config", Detail: err.Error(), Fix: "set destination.config.dsn"}}
	}
	c, err := connect(ctx, cfg)
	if err != nil {
		return []connector.CheckResult{{Name: "postgres: connect", Detail: err.Error(),
			Fix: "check dsn (host, port, database, user, password, sslmode) and that the server accepts connections from this host (pg_hba.conf)"}}
	}
	defer c.Close(context.WithoutCancel(ctx))
	var version string
	var major int
	if _, err := c.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int / 10000", nil, &version, &major); err != nil {
		return []connector.CheckResult{{Name: "postgres: version", Detail: err.Error()}}
	}
	res := []connector.CheckResult{{Name: "postgres: version", OK: major >= 10, Detail: "PostgreSQL " + version,
		Fix: "connectd loads into PostgreSQL 10 or later"}}
	return append(res, warehouse.CheckWrite(ctx, c, dialect{}, cfg.Schema, "postgres",
		fmt.Sprintf("GRANT CREATE ON DATABASE <db> TO <user> (to create the schema), or CREATE SCHEMA %s AUTHORIZATION <user>", dialect{}.Ident(cfg.Schema)))...)
}
