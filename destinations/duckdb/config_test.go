package duckdb

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// feedKind is a source kind for loading configs in these tests: a connector needs a
// source, and the built-in registry cannot be imported here (builtin imports this
// package in a duckdb build).
type feedKind struct{}

type feedConfig struct {
	Name string `yaml:"name" required:"true" doc:"A name."`
}

func (feedKind) ConfigSpec() config.Spec {
	return config.Spec{Type: "feed", Summary: "Test feed.", New: func() any { return &feedConfig{} }}
}

func (feedKind) Open(context.Context, connector.SourceParams) (connector.Source, error) {
	return nil, errors.New("feed: not a real source")
}

func (feedKind) Check(context.Context, connector.SourceParams) []connector.CheckResult { return nil }

func (feedKind) Discover(context.Context, connector.SourceParams) ([]*record.Schema, error) {
	return nil, nil
}

func parse(src string) (*config.Config, error) {
	r := connector.NewRegistry()
	r.AddSource("feed", feedKind{})
	r.AddDestination("duckdb", Kind{})
	return config.Parse("c.yaml", []byte(src), nil, r)
}

func connectorYAML(name, dest string) string {
	return "  " + name + ":\n    source: {type: feed, name: " + name + "}\n    destination:\n      type: duckdb\n" + dest
}

func TestConfigDefaultsAndLayout(t *testing.T) {
	cfg, err := parse("offsets: file:///var/lib/connectd\nconnectors:\n" + connectorYAML("orders",
		"      path: /data/replica.duckdb\n      tables: [{match: public.audit_*, mode: append}, {match: public.users, delete: soft}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors["orders"].Destination.Config.(*Config)
	if c.Schema != "main" || c.Table != "{table}" || c.Mode != "merge" || c.SoftDelete {
		t.Errorf("defaults not applied: %+v", c)
	}
	l := c.Layout()
	for _, x := range []struct {
		ns, table string
		want      warehouse.Target
	}{
		{"public", "orders", warehouse.Target{Schema: "main", Table: "orders", Mode: warehouse.Merge}},
		{"public", "audit_log", warehouse.Target{Schema: "main", Table: "audit_log", Mode: warehouse.Append}},
		{"public", "users", warehouse.Target{Schema: "main", Table: "users", Mode: warehouse.Merge, SoftDelete: true}},
	} {
		if got := l.For(x.ns, x.table); got != x.want {
			t.Errorf("%s.%s lands in %+v, want %+v", x.ns, x.table, got, x.want)
		}
	}
}

func TestConfigErrorsSayWhatIsWrong(t *testing.T) {
	for name, c := range map[string]struct{ dest, want string }{
		"relative path":  {"      path: data/replica.duckdb\n", `c.yaml:7: connectors.orders.destination.path: must be an absolute path to the database file (such as /var/lib/connectd/replica.duckdb), got "data/replica.duckdb"`},
		"directory":      {"      path: /data/\n", `c.yaml:7: connectors.orders.destination.path: "/data/" is a directory: name the database file in it (such as /data/replica.duckdb)`},
		"query in path":  {"      path: /data/x.duckdb?threads=1\n", `c.yaml:7: connectors.orders.destination.path: "/data/x.duckdb?threads=1": the DuckDB driver reads ? and % in a path as a URL's query and escapes; choose a path without them`},
		"missing path":   {"      schema: s\n", `c.yaml:5: connectors.orders.destination.path: required: the absolute path of the .duckdb file`},
		"mode":           {"      path: /d.duckdb\n      mode: upsert\n", `c.yaml:8: connectors.orders.destination.mode: must be one of merge, append; got "upsert"`},
		"table pattern":  {"      path: /d.duckdb\n      table: orders\n", `c.yaml:8: connectors.orders.destination.table: "orders" must contain {table}, or every source table would land in one target table`},
		"rule match":     {"      path: /d.duckdb\n      tables: [{match: orders}]\n", `c.yaml:8: connectors.orders.destination.tables[0].match: "orders" is not namespace.table (with * and ? as wildcards)`},
		"catalog name":   {"      path: /data/replica.duckdb\n      schema: Replica\n", `c.yaml:8: connectors.orders.destination.schema: "Replica" is also the name of a catalog of the database (DuckDB names the file's catalog "replica" after the file, and has temp and system), so SQL cannot tell the schema from it: choose another schema, or another file name`},
		"temp schema":    {"      path: /data/replica.duckdb\n      schema: temp\n", `c.yaml:8: connectors.orders.destination.schema: "temp" is also the name of a catalog`},
		"unknown key":    {"      path: /d.duckdb\n      url: file:///x\n", `c.yaml:8: connectors.orders.destination.url: unknown key`},
		"delete in rule": {"      path: /d.duckdb\n      tables: [{match: a.b, delete: later}]\n", `c.yaml:8: connectors.orders.destination.tables[0].delete: must be one of hard, soft; got "later"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse("offsets: file:///var/lib/connectd\nconnectors:\n" + connectorYAML("orders", c.dest))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestTwoConnectorsInOneSchemaOfOneFileAreRefused(t *testing.T) {
	doc := func(a, b string) string {
		return "offsets: file:///var/lib/connectd\nconnectors:\n" + connectorYAML("a", a) + connectorYAML("b", b)
	}
	_, err := parse(doc("      path: /data/r.duckdb\n", "      path: /data/./r.duckdb\n      schema: MAIN\n"))
	want := `c.yaml:13: connectors.b.destination.schema: DuckDB schema "MAIN in /data/r.duckdb" is also used by connector "a" (line 3) on the same server; schema defaults to main; two connectors in one schema mix their target tables: give each connector its own schema (schema: b) or file`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	for name, src := range map[string]string{
		"two schemas of one file": doc("      path: /data/r.duckdb\n", "      path: /data/r.duckdb\n      schema: b\n"),
		"one schema of two files": doc("      path: /data/a.duckdb\n", "      path: /data/b.duckdb\n"),
	} {
		if _, err := parse(src); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
