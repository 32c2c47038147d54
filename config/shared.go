package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Two connectors that share a server-side identity (a PostgreSQL slot or
// publication, a MySQL server_id) or a lake prefix lose changes without an error:
// one slot's changes go to whichever connector reads first, two replicas with one
// server_id keep disconnecting each other, and two writers in one lake tree read as
// one table. So they are refused when the file is loaded (docs/configuration.md,
// "One slot, one server_id, one lake prefix per connector").

// claim is one connector's use of something only one connector may use.
type claim struct {
	connector  string
	path       string // the key path that sets it (or would, when defaulted)
	line, col  int
	defaulted  bool   // the value was derived from the connector's name
	what, name string // "replication slot", "connectd_orders"
}

// markKey remembers where a key was written, for errors found after decoding.
func (d *decoder) markKey(e entry, path string) {
	if d.keys == nil {
		d.keys = map[string][2]int{}
	}
	d.keys[path] = [2]int{e.line, e.col}
}

// claimAt locates a claim on its key when the file sets it, else on the connector.
func (d *decoder) claimAt(c *claim, path string, conn *Connector) {
	c.path = path
	if at, ok := d.keys[path]; ok {
		c.line, c.col = at[0], at[1]
		return
	}
	c.line, c.defaulted = conn.Line, true
}

// checkShared refuses two connectors holding the same slot, publication, server_id
// or lake prefix.
func (d *decoder) checkShared(cfg *Config) {
	exact := map[string]*claim{}
	var lakes []*claim
	lakeKeys := map[*claim]string{}
	take := func(key string, c *claim) {
		if first, ok := exact[key]; ok {
			d.conflict(first, c, "")
			return
		}
		exact[key] = c
	}
	for _, name := range cfg.Order {
		conn := cfg.Connectors[name]
		if conn == nil {
			continue
		}
		src := "connectors." + name + ".source."
		if ps := conn.Source.Postgres; ps != nil {
			server, db := postgresTarget(ps.DSN)
			slot := &claim{connector: name, what: "replication slot", name: ps.Slot}
			d.claimAt(slot, src+"slot", conn)
			// Slot names are unique in the whole PostgreSQL server; publications in one database.
			take("pg slot\x00"+server+"\x00"+ps.Slot, slot)
			pub := &claim{connector: name, what: "publication", name: ps.Publication}
			d.claimAt(pub, src+"publication", conn)
			take("pg publication\x00"+server+"\x00"+db+"\x00"+ps.Publication, pub)
		}
		if ms := conn.Source.MySQL; ms != nil && ms.ServerID != 0 {
			id := &claim{connector: name, what: "server_id", name: fmt.Sprint(ms.ServerID)}
			d.claimAt(id, src+"server_id", conn)
			take("mysql server_id\x00"+mysqlTarget(ms.DSN)+"\x00"+id.name, id)
		}
		if pq := conn.Destination.Parquet; pq != nil && checkLakeURL(pq.URL) == "" {
			lake := &claim{connector: name, what: "lake", name: pq.URL}
			d.claimAt(lake, "connectors."+name+".destination.url", conn)
			key := lakeKey(pq)
			for _, first := range lakes {
				switch other := lakeKeys[first]; {
				case other == key:
					d.conflict(first, lake, "")
				case strings.HasPrefix(key, other+"/"):
					d.conflict(first, lake, fmt.Sprintf("it lies inside the lake of connector %q", first.connector))
				case strings.HasPrefix(other, key+"/"):
					d.conflict(first, lake, fmt.Sprintf("the lake of connector %q lies inside it", first.connector))
				}
			}
			lakes = append(lakes, lake)
			lakeKeys[lake] = key
		}
	}
}

// conflict reports c, which claims what first already holds.
func (d *decoder) conflict(first, c *claim, how string) {
	if c.what == "lake" {
		if how == "" {
			how = fmt.Sprintf("connector %q writes there too", first.connector)
		}
		d.errorf(c.line, c.col, c.path, "%s: %s (line %d); two connectors in one lake tree overwrite or mix each other's files: give each connector its own url (e.g. .../%s)",
			c.name, how, first.line, c.connector)
		return
	}
	msg := fmt.Sprintf("%s %q is also used by connector %q (line %d) on the same server", c.what, c.name, first.connector, first.line)
	if c.defaulted || first.defaulted {
		msg += "; the default is connectd_<name> with '-' read as '_' and capitals as lower case"
	}
	switch c.what {
	case "server_id":
		msg += "; two replicas with one server_id disconnect each other and changes are missed: give each connector its own server_id"
	default:
		key := c.path[strings.LastIndex(c.path, ".")+1:]
		msg += fmt.Sprintf("; one %s serves one connector, or the changes are split between them: set %s: to a distinct name", c.what, key)
	}
	d.errorf(c.line, c.col, c.path, "%s", msg)
}

// postgresTarget names the server (host:port as written) and database a DSN points
// to, so that two spellings of one DSN compare equal; unknown parts stay empty.
func postgresTarget(dsn string) (server, db string) {
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

// mysqlTarget names the server (host:port as written) of a mysql:// DSN.
func mysqlTarget(dsn string) string {
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

// lakeKey is a lake URL reduced to a comparable path: the S3 endpoint and bucket, or
// the local directory, then the cleaned prefix.
func lakeKey(pq *ParquetDestination) string {
	if p, ok := strings.CutPrefix(pq.URL, "file://"); ok {
		return "file:" + filepath.Clean(p)
	}
	u, err := url.Parse(pq.URL)
	if err != nil {
		return pq.URL
	}
	prefix := strings.Trim(filepath.Clean("/"+u.Path), "/")
	key := "s3:" + strings.TrimRight(pq.S3.Endpoint, "/") + "|" + u.Host
	if prefix != "" {
		key += "/" + prefix
	}
	return key
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
