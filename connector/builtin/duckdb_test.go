//go:build duckdb

package builtin_test

import (
	"testing"

	"github.com/connectd/connectd/connector/builtin"
	"github.com/connectd/connectd/destinations/duckdb"
)

func TestADuckDBBuildRegistersTheDestinationItself(t *testing.T) {
	k, err := builtin.Registry("").Destination("duckdb")
	if _, real := k.(duckdb.Kind); err != nil || !real {
		t.Fatalf("type duckdb is %T (%v), want duckdb.Kind", k, err)
	}
}
