package config_test

import (
	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector/builtin"
	"github.com/connectd/connectd/destinations/parquet"
	"github.com/connectd/connectd/plugins/host"
	"github.com/connectd/connectd/sources/mysql"
	"github.com/connectd/connectd/sources/postgres"
)

// kinds are the connector kinds compiled into connectd: the loader's tests run with
// their real config structs.
var kinds = builtin.Registry("")

func parse(path string, data []byte, lookup func(string) (string, bool)) (*config.Config, error) {
	return config.Parse(path, data, lookup, kinds)
}

func load(path string) (*config.Config, error) { return config.Load(path, kinds) }

func pgOf(s config.Source) *postgres.Config          { c, _ := s.Config.(*postgres.Config); return c }
func myOf(s config.Source) *mysql.Config             { c, _ := s.Config.(*mysql.Config); return c }
func parquetOf(d config.Destination) *parquet.Config { c, _ := d.Config.(*parquet.Config); return c }
func pluginOf(c any) *host.Config                    { p, _ := c.(*host.Config); return p }
