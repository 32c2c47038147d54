package duckdbconfig

import (
	"context"
	"errors"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
)

// NotBuilt is the kind a connectd built without DuckDB (the default, static binary)
// registers for `type: duckdb`: its config is parsed and validated as the real
// kind's is, so `connectd validate` and the config's errors are the same in both
// binaries, and opening or checking it fails with which binary to run instead.
type NotBuilt struct{}

var _ connector.DestinationKind = NotBuilt{}

// ErrNotBuilt is why NotBuilt opens nothing.
var ErrNotBuilt = errors.New("duckdb: this connectd was built without DuckDB (the default binary is static, and DuckDB is C++ linked through cgo): " +
	"run the connectd-duckdb binary (make build-duckdb) or the image's duckdb target (docker build --target duckdb); see destinations/duckdb/README.md")

func (NotBuilt) ConfigSpec() config.Spec { return Spec() }

// Open fails for good: no retry builds DuckDB in.
func (NotBuilt) Open(context.Context, connector.DestinationParams) (connector.Destination, error) {
	return nil, connector.Permanent(ErrNotBuilt)
}

func (NotBuilt) Check(context.Context, connector.DestinationParams) []connector.CheckResult {
	return []connector.CheckResult{{Name: "duckdb: built in", Detail: ErrNotBuilt.Error(),
		Fix: "run bin/connectd-duckdb from `make build-duckdb`, or the image built with `docker build --target duckdb`"}}
}
