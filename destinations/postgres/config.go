package postgres

import (
	"fmt"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/jackc/pgx/v5"
)

// Config is the destination section of `type: postgres` (README.md).
type Config struct {
	DSN        string           `yaml:"dsn" required:"postgres://user@host:5432/db or host=... dbname=..." secret:"true" doc:"The target database: postgres://user@host:5432/db?sslmode=... or libpq key=value settings." example:"postgres://loader@warehouse:5432/analytics?sslmode=require"`
	Password   string           `yaml:"password" secret:"true" defaultdoc:"from the DSN" doc:"Overrides the DSN's password."`
	Schema     string           `yaml:"schema" default:"public" doc:"The target schema, created if missing; it also holds the _connectd_offsets table."`
	Table      string           `yaml:"table" default:"{table}" doc:"The target table's name: {namespace} and {table} are the source table's." example:"{namespace}_{table}"`
	Mode       string           `yaml:"mode" default:"merge" enum:"merge,append" doc:"merge keeps a replica of each source table (upserts and deletes by key); append keeps every change, with the lake's metadata columns."`
	SoftDelete bool             `yaml:"soft_delete" default:"false" doc:"merge: mark deleted rows (_deleted, _deleted_at) instead of removing them."`
	Tables     []warehouse.Rule `yaml:"tables" doc:"Per-table overrides of mode and deletes; the first rule that matches wins."`

	// noMerge makes a 15+ server take the statements of older ones, so that tests
	// cover both.
	noMerge bool
}

// ConfigSpec describes the `type: postgres` destination section.
func (Kind) ConfigSpec() config.Spec {
	return config.Spec{Type: "postgres", Summary: "Tables in a PostgreSQL database: replicas (merge) or change logs (append), loaded with COPY.",
		New: func() any { return &Config{} }}
}

// Validate checks the DSN, the schema and the table pattern.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("dsn") {
		if _, err := pgx.ParseConfig(c.DSN); err != nil {
			v.Errorf("dsn", "cannot parse it: %v", err)
		}
	}
	if len(c.Schema) > maxIdent {
		v.Errorf("schema", "%q is longer than PostgreSQL's %d bytes", c.Schema, maxIdent)
	}
	warehouse.ValidateLayout(v, c.Table, c.Tables)
}

// Claims: two connectors loading tables of one name pattern into one schema would
// load into the same tables.
func (c *Config) Claims(connector string) []config.Claim {
	pc, err := pgx.ParseConfig(c.DSN)
	if err != nil {
		return nil
	}
	return []config.Claim{{Key: "schema", What: "target tables", Value: c.Schema + "." + c.Table,
		Identity: fmt.Sprintf("%s:%d/%s|%s|%s", pc.Host, pc.Port, pc.Database, c.Schema, c.Table),
		Advice:   fmt.Sprintf("two connectors would load into the same tables: give each its own schema (schema: %s) or table pattern", connector)}}
}

// Layout is where and how the source tables land.
func (c *Config) Layout() warehouse.Layout {
	return warehouse.Layout{Schema: c.Schema, Table: c.Table, Mode: warehouse.Mode(c.Mode), SoftDelete: c.SoftDelete, Rules: c.Tables}
}

// maxIdent is PostgreSQL's identifier limit (NAMEDATALEN-1).
const maxIdent = 63
