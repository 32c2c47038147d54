package postgres

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
)

// Config is the source section of `type: postgres` (docs/configuration.md).
type Config struct {
	DSN         string        `yaml:"dsn" required:"postgres://user@host:5432/db or host=... dbname=..." secret:"true" doc:"postgres://user@host:5432/db?sslmode=... or libpq key=value settings." example:"postgres://connectd@db:5432/app?sslmode=require"`
	Password    string        `yaml:"password" secret:"true" defaultdoc:"from the DSN" doc:"Overrides the DSN's password."`
	Tables      []string      `yaml:"tables" required:"the tables to capture, e.g. [public.orders, \"public.line_*\"]" doc:"schema.table names; * and ? globs match several (\"public.line_*\")." example:"[public.orders, \"public.line_*\"]"`
	Slot        string        `yaml:"slot" defaultdoc:"connectd_<connector name>" doc:"Logical replication slot (pgoutput), created if missing."`
	Publication string        `yaml:"publication" defaultdoc:"connectd_<connector name>" doc:"Publication, created if missing and kept in step with tables."`
	Snapshot    string        `yaml:"snapshot" default:"initial" enum:"initial,initial_only,never,when_needed" doc:"initial: snapshot once, then stream; initial_only: snapshot, then stop; never: stream only, from the server's end at the first run (that point is committed at once, so later runs continue from it); when_needed: snapshot when there is no committed position."`
	Heartbeat   time.Duration `yaml:"heartbeat" doc:"How often an idle stream writes a heartbeat message so the slot's position advances; 0 turns it off (see sources/postgres/README.md)."`
	// SnapshotChunk is read into a uint32 by the snapshot.
	SnapshotChunk    int           `yaml:"snapshot_chunk" default:"20000" doc:"Rows per snapshot chunk: each table is split into about rows/snapshot_chunk chunks before it is read (a table snapshotted while streaming reads at most 10000 per chunk)."`
	SnapshotParallel int           `yaml:"snapshot_parallel" default:"0" doc:"Connections that read the snapshot's chunks at once, each decoding on its own core; 0: this machine's cores, at most half the server's free connections and the number of chunks."`
	Discovery        time.Duration `yaml:"discovery" default:"30s" doc:"How often run reads the catalog for tables that began to match tables (see sources/postgres/README.md, \"Tables added later\")."`
}

// maxIdent is PostgreSQL's identifier limit (NAMEDATALEN-1).
const maxIdent = 63

// maxSnapshotParallel bounds snapshot_parallel: each reader is a connection.
const maxSnapshotParallel = 256

// minDiscovery bounds how often the catalog is read for new tables.
const minDiscovery = 100 * time.Millisecond

// DefaultName is the slot and publication of a connector that names neither:
// connectd_<name>, lower-cased, with what an identifier cannot hold read as '_'.
func DefaultName(connector string) string {
	return "connectd_" + sanitizeIdent(connector)
}

func sanitizeIdent(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// CheckIdent checks a replication slot or publication name; "" means valid.
func CheckIdent(s string) string {
	if s == "" || sanitizeIdent(s) != s {
		return "must match [a-z0-9_]+"
	}
	if len(s) > maxIdent {
		return fmt.Sprintf("must be at most %d characters (PostgreSQL's limit), got %d", maxIdent, len(s))
	}
	return ""
}

// Validate checks the DSN's syntax, the table patterns, the slot and publication
// names, and fills the computed slot and publication defaults.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("dsn") {
		if c.DSN == "" {
			v.Errorf("dsn", "must not be empty")
		} else if msg := checkDSN(c.DSN); msg != "" {
			v.Errorf("dsn", "%s", msg)
		}
	}
	if v.Set("tables") {
		config.CheckTables(v, "tables", c.Tables)
	}
	for _, n := range []struct {
		key string
		val *string
	}{{"slot", &c.Slot}, {"publication", &c.Publication}} {
		if v.Set(n.key) && *n.val != "" {
			if msg := CheckIdent(*n.val); msg != "" {
				v.Errorf(n.key, "%s", msg)
			}
			continue
		}
		if *n.val == "" {
			*n.val = DefaultName(v.Connector())
			if len(*n.val) > maxIdent {
				v.Errorf(n.key, "the default %q is longer than %d characters; set %s explicitly", *n.val, maxIdent, n.key)
			}
		}
	}
	if v.Set("snapshot_chunk") && (c.SnapshotChunk <= 0 || c.SnapshotChunk > math.MaxInt32) {
		v.Errorf("snapshot_chunk", "must be between 1 and %d", math.MaxInt32)
	}
	if v.Set("snapshot_parallel") && (c.SnapshotParallel < 0 || c.SnapshotParallel > maxSnapshotParallel) {
		v.Errorf("snapshot_parallel", "must be between 0 (automatic) and %d", maxSnapshotParallel)
	}
	if v.Set("discovery") && c.Discovery < minDiscovery {
		v.Errorf("discovery", "must be at least %s (it is how often the catalog is read for new tables)", minDiscovery)
	}
}

// Claims: slot names are unique in the whole PostgreSQL server, publications in one
// database; two connectors sharing one split the changes between them.
func (c *Config) Claims(connector string) []config.Claim {
	server, db := target(c.DSN)
	advice := "one %s serves one connector, or the changes are split between them: set %s: to a distinct name"
	const note = "the default is connectd_<name> with '-' read as '_' and capitals as lower case"
	return []config.Claim{
		{Key: "slot", What: "replication slot", Value: c.Slot, Identity: server + "\x00" + c.Slot,
			Advice: fmt.Sprintf(advice, "replication slot", "slot"), DefaultNote: note},
		{Key: "publication", What: "publication", Value: c.Publication, Identity: server + "\x00" + db + "\x00" + c.Publication,
			Advice: fmt.Sprintf(advice, "publication", "publication"), DefaultNote: note},
	}
}

// checkDSN accepts what libpq accepts in shape: a postgres:// or postgresql:// URL,
// or key=value settings. Messages never quote the DSN: it may hold a password.
func checkDSN(s string) string {
	const want = "must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...)"
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		if _, err := url.Parse(s); err != nil {
			return want + ": " + config.URLProblem(err)
		}
		return ""
	}
	if !strings.Contains(s, "=") {
		return want
	}
	if msg := checkKeyValues(s); msg != "" {
		return want + ": " + msg
	}
	return ""
}

// checkKeyValues parses libpq's key=value connection string syntax: values may be
// single-quoted, and a backslash escapes the next character.
func checkKeyValues(s string) string {
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return ""
		}
		start := i
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
			i++
		}
		key := s[start:i]
		skip()
		if key == "" || i >= len(s) || s[i] != '=' {
			return "expected key=value"
		}
		i++
		skip()
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					closed = true
					i++
					break
				}
				i++
			}
			if !closed {
				return fmt.Sprintf("unterminated quoted value of %s", key)
			}
			continue
		}
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
	}
}

// target names the server (host:port as written) and database a DSN points
// to, so that two spellings of one DSN compare equal; unknown parts stay empty.
func target(dsn string) (server, db string) {
	var host, port string
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn, ""
		}
		host, port, db = u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/")
		if h := u.Query().Get("host"); h != "" {
			host = h
		}
		if p := u.Query().Get("port"); p != "" {
			port = p
		}
		if v := u.Query().Get("dbname"); v != "" {
			db = v
		}
	} else {
		kv := keyValues(dsn)
		host, port, db = kv["host"], kv["port"], kv["dbname"]
	}
	if port == "" {
		port = "5432"
	}
	return strings.ToLower(host) + ":" + port, db
}

// keyValues reads libpq's key=value settings (checkKeyValues has accepted them):
// values may be single-quoted, and a backslash escapes the next character.
func keyValues(s string) map[string]string {
	out := map[string]string{}
	for _, f := range splitKeyValues(s) {
		k, v, ok := strings.Cut(f, "=")
		if ok {
			out[strings.TrimSpace(k)] = v
		}
	}
	return out
}

// splitKeyValues splits at unquoted, unescaped white space, removing quotes and
// escapes, and joins "key = value" written with spaces around '='.
func splitKeyValues(s string) []string {
	var fields []string
	var cur strings.Builder
	quoted, escaped, started := false, false, false
	flush := func() {
		if started {
			fields = append(fields, cur.String())
		}
		cur.Reset()
		started = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			cur.WriteByte(c)
			escaped = false
		case c == '\\':
			escaped, started = true, true
		case c == '\'':
			quoted, started = !quoted, true
		case !quoted && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			flush()
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	flush()
	var out []string
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if !strings.Contains(f, "=") && i+1 < len(fields) && strings.HasPrefix(fields[i+1], "=") {
			i++ // "host =db" or "host = db"
			f += fields[i]
		}
		if strings.HasSuffix(f, "=") && strings.Count(f, "=") == 1 && i+1 < len(fields) {
			i++ // "host= db": libpq skips the blanks after '='
			f += fields[i]
		}
		out = append(out, f)
	}
	return out
}

// ConfigSpec describes the `type: postgres` source section.
func (Kind) ConfigSpec() config.Spec {
	return config.Spec{Type: "postgres", Summary: "PostgreSQL logical replication (pgoutput), with snapshots of the selected tables.",
		New: func() any { return &Config{} }}
}
