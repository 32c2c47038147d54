// Package builtin lists the connector kinds compiled into connectd, in one place that
// the daemon, the tests and the generated reference share. Adding a connector kind is
// its own package (with its config struct, see config/spec.go) and one line here.
//
// Kinds that need cgo are compiled in only with their build tag, each registered by a
// file of that tag (builtin_duckdb.go), which a file of the negated tag stands in for
// without it; the default connectd binary stays static.
package builtin

import (
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/parquet"
	pgdest "github.com/connectd/connectd/destinations/postgres"
	"github.com/connectd/connectd/plugins/host"
	"github.com/connectd/connectd/sources/httpapi"
	"github.com/connectd/connectd/sources/mysql"
	"github.com/connectd/connectd/sources/postgres"
)

// Registry returns the built-in kinds, with `type: plugin` executables named by name
// looked up in pluginDir (the config's plugins.dir). The order of registration is the
// order error messages and the reference list the types in.
func Registry(pluginDir string) *connector.Registry {
	r := connector.NewRegistry()
	r.AddSource("postgres", postgres.Kind{})
	r.AddSource("mysql", mysql.Kind{})
	r.AddSource("http", httpapi.Kind{})
	r.AddSource("plugin", host.SourceKind{Dir: pluginDir})
	r.AddDestination("parquet", parquet.Kind{})
	r.AddDestination("postgres", pgdest.Kind{})
	addDuckDB(r)
	r.AddDestination("plugin", host.DestinationKind{Dir: pluginDir})
	return r
}
