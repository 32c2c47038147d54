package postgres_test

import (
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector/builtin"
	pgdest "github.com/connectd/connectd/destinations/postgres"
)

func parse(t *testing.T, dest string) (*config.Config, error) {
	t.Helper()
	yaml := "offsets: file:///tmp/offsets\nconnectors:\n  orders:\n    source: {type: postgres, dsn: \"postgres://u@src/db\", tables: [public.orders]}\n" +
		"    destination:\n" + dest
	return config.Parse("/etc/connectd/c.yaml", []byte(yaml), nil, builtin.Registry(""))
}

// TestConfigWithOnlyADSNGetsTheDefaults: a section that sets nothing but the DSN is
// valid and loads into public, one table per source table, merged.
func TestConfigWithOnlyADSNGetsTheDefaults(t *testing.T) {
	cfg, err := parse(t, "      type: postgres\n      dsn: \"postgres://loader@warehouse/analytics\"\n")
	if err != nil {
		t.Fatalf("a section with only dsn: %v", err)
	}
	c, ok := cfg.Connectors["orders"].Destination.Config.(*pgdest.Config)
	if !ok {
		t.Fatalf("destination config is %T", cfg.Connectors["orders"].Destination.Config)
	}
	if c.Schema != "public" || c.Table != "{table}" || c.Mode != "merge" || c.SoftDelete {
		t.Errorf("defaults: schema %q, table %q, mode %q, soft_delete %t; want public, {table}, merge, false", c.Schema, c.Table, c.Mode, c.SoftDelete)
	}
}

// TestConfigRefusesATablePatternWithoutTable: a pattern that would put every source
// table into one target table is an error at its line.
func TestConfigRefusesATablePatternWithoutTable(t *testing.T) {
	_, err := parse(t, "      type: postgres\n      dsn: \"postgres://loader@warehouse/analytics\"\n      table: everything\n")
	if err == nil || !strings.Contains(err.Error(), "c.yaml:8: connectors.orders.destination.table") || !strings.Contains(err.Error(), "{table}") {
		t.Errorf("table: everything: want an error at c.yaml:8 naming the key and {table}, got %v", err)
	}
}
