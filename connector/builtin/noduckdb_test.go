//go:build !duckdb

package builtin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/builtin"
	"github.com/connectd/connectd/destinations/duckdb/duckdbconfig"
)

const duckConfig = `offsets: file:///var/lib/connectd
connectors:
  orders:
    source: {type: postgres, dsn: "postgres://h/db", tables: [public.orders]}
    destination:
      type: duckdb
      path: /var/lib/connectd/replica.duckdb
      mode: append
`

// TestWithoutDuckDBATypeDuckDBConfigLoadsAndOpeningItSaysWhichBinary: the static
// binary parses and validates a duckdb section as the duckdb build does (its errors
// too), and opening or checking it fails for good, naming the binary to run.
func TestWithoutDuckDBATypeDuckDBConfigLoadsAndOpeningItSaysWhichBinary(t *testing.T) {
	r := builtin.Registry("")
	cfg, err := config.Parse("c.yaml", []byte(duckConfig), nil, r)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Connectors["orders"].Destination
	if c, ok := d.Config.(*duckdbconfig.Config); !ok || c.Mode != "append" || c.Schema != "main" {
		t.Fatalf("destination config %+v (%T), want duckdb's with its defaults", d.Config, d.Config)
	}
	for _, c := range []struct{ old, new, want string }{
		{"/var/lib/connectd/replica.duckdb", "replica.duckdb", `c.yaml:7: connectors.orders.destination.path: must be an absolute path`},
		{"mode: append", "mode: copy", `c.yaml:8: connectors.orders.destination.mode: must be one of merge, append; got "copy"`},
		{"mode: append", "mode: append\n      schema: replica", `connectors.orders.destination.schema: "replica" is also the name of a catalog`},
	} {
		_, err := config.Parse("c.yaml", []byte(strings.Replace(duckConfig, c.old, c.new, 1)), nil, r)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: got %v, want %q", c.old, c.new, err, c.want)
		}
	}

	k, err := r.Destination("duckdb")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := connector.DestinationParams{Name: "orders", Config: d}
	dst, err := k.Open(ctx, p)
	if dst != nil || !errors.Is(err, duckdbconfig.ErrNotBuilt) || !connector.IsPermanent(err) ||
		!strings.Contains(err.Error(), "built without DuckDB") || !strings.Contains(err.Error(), "connectd-duckdb") || !strings.Contains(err.Error(), "make build-duckdb") {
		t.Errorf("Open: %v, %v; want a permanent error naming connectd-duckdb and make build-duckdb", dst, err)
	}
	res := k.Check(ctx, p)
	if len(res) != 1 || res[0].OK || !strings.Contains(res[0].Detail, "built without DuckDB") || !strings.Contains(res[0].Fix, "connectd-duckdb") {
		t.Errorf("Check: %+v; want one failed result that names connectd-duckdb", res)
	}
}
