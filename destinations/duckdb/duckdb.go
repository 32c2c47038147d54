// Package duckdb is the `type: duckdb` destination: the source tables loaded into
// tables of an on-disk DuckDB database file, as a replica merged by key or as a
// change log, by the warehouse core (destinations/warehouse). This package supplies
// DuckDB's SQL (dialect.go) and one connection with a bulk load of Arrow record
// batches (conn.go, batches.go, values.go), which needs the duckdb_arrow build tag
// (arrow.go). It needs cgo: the default connectd binary is static and registers a
// stand-in (duckdbconfig); `make build-duckdb` links it in (README.md).
package duckdb

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/duckdb/duckdbconfig"
	"github.com/connectd/connectd/destinations/warehouse"
)

// Kind is the duckdb destination type; it implements connector.DestinationKind.
type Kind struct{}

var _ connector.DestinationKind = Kind{}

// Open opens the database file and reads the connector's committed position from
// the offsets table in the target schema.
func (Kind) Open(ctx context.Context, p connector.DestinationParams) (connector.Destination, error) {
	cfg, err := connector.DestinationConfig[Config](p)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %w", err)
	}
	if msg := duckdbconfig.CheckPath(cfg.Path); msg != "" {
		return nil, connector.Permanent(fmt.Errorf("duckdb: path %s", msg))
	}
	if msg := duckdbconfig.SchemaProblem(cfg.Path, cfg.Schema); msg != "" {
		return nil, connector.Permanent(fmt.Errorf("duckdb: schema %s", msg))
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := openConn(ctx, cfg.Path)
	if err != nil {
		return nil, err
	}
	w, err := warehouse.Open(ctx, c, dialect{}, cfg.Layout(), p.Name, log)
	if err != nil {
		return nil, fmt.Errorf("duckdb: %s: %w", cfg.Path, err)
	}
	return w, nil
}
