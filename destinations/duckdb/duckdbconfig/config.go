// Package duckdbconfig is the cgo-free half of the duckdb destination
// (destinations/duckdb): its config section, which every connectd parses and
// validates, and the stand-in kind that a connectd built without DuckDB registers for
// `type: duckdb`, so that such a config is refused with what to run instead.
package duckdbconfig

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/destinations/warehouse"
)

// Config is the destination section of `type: duckdb` (destinations/duckdb/README.md).
type Config struct {
	Path       string           `yaml:"path" required:"the absolute path of the .duckdb file" doc:"The DuckDB database file, an absolute path; the file and its directory are created when missing." example:"/var/lib/connectd/replica.duckdb"`
	Schema     string           `yaml:"schema" default:"main" doc:"The schema in the file that the target tables and the offsets table (_connectd_offsets) are in; created when missing."`
	Table      string           `yaml:"table" default:"{table}" doc:"The name of the target table of each source table, with {namespace} and {table} replaced." example:"{namespace}_{table}"`
	Mode       string           `yaml:"mode" default:"merge" enum:"merge,append" doc:"merge keeps a replica (one row per key, as the source has it now); append keeps every change as a row, with the lake's metadata columns."`
	SoftDelete bool             `yaml:"soft_delete" default:"false" doc:"In merge mode, mark a deleted row (_deleted, _deleted_at) instead of removing it."`
	Tables     []warehouse.Rule `yaml:"tables" doc:"Per-table overrides of mode and deletes; the first rule that matches a source table wins."`
}

// Spec describes the `type: duckdb` destination section.
func Spec() config.Spec {
	return config.Spec{Type: "duckdb", Summary: "Tables in a DuckDB database file: a replica merged by key, or a change log (in the connectd-duckdb binary: make build-duckdb).",
		New: func() any { return &Config{} }}
}

// Validate checks the path and the table layout.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("path") {
		if msg := CheckPath(c.Path); msg != "" {
			v.Errorf("path", "%s", msg)
		}
	}
	// The loader applies the defaults after Validate: check the layout they make.
	d := *c
	if err := config.ApplyDefaults(&d); err != nil {
		v.Errorf("", "%v", err)
		return
	}
	if msg := SchemaProblem(d.Path, d.Schema); msg != "" && CheckPath(d.Path) == "" {
		v.Errorf("schema", "%s", msg)
	}
	warehouse.ValidateLayout(v, d.Table, d.Tables)
}

// SchemaProblem refuses a schema named like a catalog of the database: DuckDB names
// the file's catalog after the file (replica for /data/replica.duckdb) and has temp
// and system besides, and "x"."t" is then ambiguous, an error in every statement.
func SchemaProblem(path, schema string) string {
	catalog, _, _ := strings.Cut(filepath.Base(path), ".")
	for _, name := range []string{catalog, "temp", "system"} {
		if strings.EqualFold(schema, name) {
			return fmt.Sprintf("%q is also the name of a catalog of the database (DuckDB names the file's catalog %q after the file, and has temp and system), so SQL cannot tell the schema from it: choose another schema, or another file name",
				schema, catalog)
		}
	}
	return ""
}

// CheckPath says what is wrong with the path of the database file, "" when nothing.
func CheckPath(p string) string {
	switch {
	case !filepath.IsAbs(p):
		return fmt.Sprintf("must be an absolute path to the database file (such as /var/lib/connectd/replica.duckdb), got %q", p)
	case strings.ContainsAny(p, "?%"):
		return fmt.Sprintf("%q: the DuckDB driver reads ? and %% in a path as a URL's query and escapes; choose a path without them", p)
	case strings.HasSuffix(p, "/"):
		return fmt.Sprintf("%q is a directory: name the database file in it (such as %sreplica.duckdb)", p, p)
	}
	return ""
}

// Claims: two connectors loading one schema of one file would mix their target
// tables. Connectors in other schemas of the file are fine: the driver gives them one
// database instance, each its own connection and transactions.
func (c *Config) Claims(connector string) []config.Claim {
	if CheckPath(c.Path) != "" {
		return nil
	}
	path := filepath.Clean(c.Path)
	return []config.Claim{{Key: "schema", What: "DuckDB schema", Value: c.Schema + " in " + path,
		Identity: path + "\x00" + strings.ToLower(c.Schema),
		Advice: fmt.Sprintf("two connectors in one schema mix their target tables: give each connector its own schema (schema: %s) or file",
			connector),
		DefaultNote: "schema defaults to main"}}
}

// Layout is where and how the source tables land.
func (c *Config) Layout() warehouse.Layout {
	return warehouse.Layout{Schema: c.Schema, Table: c.Table, Mode: warehouse.Mode(c.Mode), SoftDelete: c.SoftDelete, Rules: c.Tables}
}
