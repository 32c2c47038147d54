package mysql

import (
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/connectd/connectd/config"
)

// Config is the source section of `type: mysql` (MySQL 8, MariaDB 10.6+;
// docs/configuration.md).
type Config struct {
	DSN      string `yaml:"dsn" required:"mysql://user:password@host:3306/" secret:"true" doc:"mysql://user:password@host:3306/" example:"mysql://repl:${MYSQL_PASSWORD}@db:3306/"`
	Password string `yaml:"password" secret:"true" defaultdoc:"from the DSN" doc:"Overrides the DSN's password."`
	// ServerID has no default: two replicas with one id disconnect each other, and an
	// id derived from the name could meet another replica's, so it is written out.
	ServerID int64    `yaml:"server_id" required:"a number > 0, unique among the server's replicas" doc:"This connector's replica id; must differ from the server's and every other replica's." example:"5401"`
	Tables   []string `yaml:"tables" required:"the tables to capture, e.g. [public.orders, \"public.line_*\"]" doc:"database.table names, globs allowed (\"shop.*\")." example:"[\"shop.*\"]"`
	Snapshot string   `yaml:"snapshot" default:"initial" enum:"initial,initial_only,never,when_needed" doc:"As for postgres: initial, initial_only, never or when_needed."`
	// TinyInt1AsBoolean maps signed TINYINT(1) (and BOOL) columns to booleans;
	// by default they stay integers, since TINYINT(1) holds -128..127.
	TinyInt1AsBoolean bool `yaml:"tinyint1_as_boolean" default:"false" doc:"Map signed TINYINT(1) (and BOOL, which is the same column) to booleans; by default they are integers (-128..127), since the (1) is only a display width and a flag column cannot be told from a small counter."`
}

// ConfigSpec describes the `type: mysql` source section.
func (Kind) ConfigSpec() config.Spec {
	return config.Spec{Type: "mysql", Summary: "MySQL 8 and MariaDB 10.6+ row-based binlog, with snapshots of the selected tables.",
		New: func() any { return &Config{} }}
}

// Validate checks the DSN's syntax, the server_id's range and the table patterns.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("dsn") {
		if c.DSN == "" {
			v.Errorf("dsn", "must not be empty")
		} else if msg := checkDSN(c.DSN); msg != "" {
			v.Errorf("dsn", "%s", msg)
		}
	}
	if v.Set("server_id") && (c.ServerID <= 0 || c.ServerID > math.MaxUint32) {
		v.Errorf("server_id", "must be between 1 and %d and unique among the server's replicas", uint32(math.MaxUint32))
	}
	if v.Set("tables") {
		config.CheckTables(v, "tables", c.Tables)
	}
}

// Claims: two replicas of one server with one server_id disconnect each other.
func (c *Config) Claims(string) []config.Claim {
	if c.ServerID <= 0 {
		return nil
	}
	id := strconv.FormatInt(c.ServerID, 10)
	return []config.Claim{{Key: "server_id", What: "server_id", Value: id, Identity: target(c.DSN) + "\x00" + id,
		Advice: "two replicas with one server_id disconnect each other and changes are missed: give each connector its own server_id"}}
}

func checkDSN(s string) string {
	const want = "must be a URL like mysql://user:password@host:3306/"
	if !strings.HasPrefix(s, "mysql://") {
		return want
	}
	u, err := url.Parse(s)
	if err != nil {
		return want + ": " + config.URLProblem(err)
	}
	if u.Hostname() == "" {
		return want + ": no host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return want + ": bad port"
		}
	}
	return ""
}

// target names the server (host:port as written) of a mysql:// DSN.
func target(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}
