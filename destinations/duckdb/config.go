package duckdb

import (
	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/destinations/duckdb/duckdbconfig"
)

// Config is the destination section of `type: duckdb`. It lives in a package of its
// own, without cgo, so that a connectd built without DuckDB parses it too.
type Config = duckdbconfig.Config

// ConfigSpec describes the `type: duckdb` destination section.
func (Kind) ConfigSpec() config.Spec { return duckdbconfig.Spec() }
