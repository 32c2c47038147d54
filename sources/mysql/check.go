package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Check reaches the server and reports, one line each, whether everything the source
// needs is in place, with the statement that fixes each failure.
func (Kind) Check(ctx context.Context, p connector.SourceParams) []connector.CheckResult {
	st, err := settingsFrom(p)
	if err != nil {
		return []connector.CheckResult{{Name: "mysql: config", Detail: err.Error(), Fix: "correct the source section of the config file"}}
	}
	db, err := st.open(ctx)
	if err != nil {
		return []connector.CheckResult{{Name: "mysql: connect", Detail: err.Error(),
			Fix: "check the dsn (host, port, user), the password and that the server is running"}}
	}
	defer db.Close()
	res := []connector.CheckResult{{Name: "mysql: connect", OK: true, Detail: fmt.Sprintf("%s@%s:%d", st.user, st.host, st.port)}}
	add := func(r connector.CheckResult) { res = append(res, r) }
	srv, err := serverInfo(ctx, db)
	if err != nil {
		return append(res, connector.CheckResult{Name: "mysql: server", Detail: err.Error(), Fix: "see the error"})
	}
	add(connector.CheckResult{Name: "mysql: server version", OK: true, Detail: srv.version})
	add(connector.CheckResult{Name: "mysql: log_bin", OK: srv.logBin == "ON" || srv.logBin == "1", Detail: "log_bin = " + orNone(srv.logBin),
		Fix: "start the server with log_bin=binlog in the [mysqld] section of its config, then restart it"})
	add(connector.CheckResult{Name: "mysql: binlog_format", OK: srv.format == "ROW", Detail: "binlog_format = " + orNone(srv.format),
		Fix: "SET GLOBAL binlog_format = 'ROW'; and binlog_format = ROW in the server config (sessions already open keep the old format until they reconnect)"})
	add(connector.CheckResult{Name: "mysql: binlog_row_image", OK: srv.rowImage == "" || srv.rowImage == "FULL", Detail: "binlog_row_image = " + orNone(srv.rowImage),
		Fix: "SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image = FULL in the server config"})
	meta := "binlog_row_metadata = " + orNone(srv.rowMeta)
	if srv.rowMeta != "FULL" {
		meta += " (optional: SET GLOBAL binlog_row_metadata = 'FULL' lets the source check column names against its schema history)"
	}
	add(connector.CheckResult{Name: "mysql: binlog_row_metadata", OK: true, Detail: meta})
	add(checkGrants(ctx, db, st, srv))
	add(checkServerID(ctx, db, st, srv))
	add(checkTables(ctx, db, st))
	return res
}

// checkGrants looks for the privileges the source uses in SHOW GRANTS.
func checkGrants(ctx context.Context, db *sql.DB, st settings, srv server) connector.CheckResult {
	r := connector.CheckResult{Name: "mysql: grants"}
	rows, err := db.QueryContext(ctx, "SHOW GRANTS FOR CURRENT_USER()")
	if err != nil {
		r.Detail, r.Fix = err.Error(), "see the error"
		return r
	}
	defer rows.Close()
	var grants []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			r.Detail = err.Error()
			return r
		}
		grants = append(grants, strings.ToUpper(g))
	}
	global := func(priv string) bool {
		for _, g := range grants {
			if strings.Contains(g, " ON *.* ") && (strings.Contains(g, "ALL PRIVILEGES") || strings.Contains(g, priv)) {
				return true
			}
		}
		return false
	}
	selectOn := func(dbName string) bool {
		if global("SELECT") {
			return true
		}
		for _, g := range grants {
			if strings.Contains(g, "SELECT") || strings.Contains(g, "ALL PRIVILEGES") {
				if strings.Contains(g, " ON `"+strings.ToUpper(dbName)+"`.*") || strings.Contains(g, " ON "+strings.ToUpper(dbName)+".*") {
					return true
				}
			}
		}
		return false
	}
	var missing []string
	if !global("REPLICATION SLAVE") && !global("REPLICATION REPLICA") {
		missing = append(missing, "REPLICATION SLAVE")
	}
	if !global("REPLICATION CLIENT") && !global("BINLOG MONITOR") && !global("SUPER") {
		if srv.flavor == "mariadb" {
			missing = append(missing, "BINLOG MONITOR")
		} else {
			missing = append(missing, "REPLICATION CLIENT")
		}
	}
	if srv.flavor != "mariadb" && !global("RELOAD") && st.wantsSnapshot() {
		missing = append(missing, "RELOAD")
	}
	var dbs []string
	for _, p := range st.patterns {
		if !selectOn(p.db) {
			dbs = append(dbs, p.db)
		}
	}
	user := "CURRENT_USER()"
	var u string
	if err := db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&u); err == nil {
		if name, host, ok := strings.Cut(u, "@"); ok {
			user = fmt.Sprintf("'%s'@'%s'", name, host)
		}
	}
	var fixes []string
	if len(missing) > 0 {
		fixes = append(fixes, fmt.Sprintf("GRANT %s ON *.* TO %s;", strings.Join(missing, ", "), user))
	}
	for _, d := range dbs {
		if strings.ContainsAny(d, "*?[") {
			fixes = append(fixes, fmt.Sprintf("GRANT SELECT ON *.* TO %s;", user))
			break
		}
		fixes = append(fixes, fmt.Sprintf("GRANT SELECT ON `%s`.* TO %s;", d, user))
	}
	r.OK = len(fixes) == 0
	if r.OK {
		r.Detail = "replication and SELECT privileges present"
	} else {
		r.Detail = "missing: " + strings.Join(append(missing, prefixAll("SELECT on ", dbs)...), ", ")
		r.Fix = strings.Join(fixes, " ")
	}
	return r
}

func prefixAll(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

// checkServerID makes sure no other replica of the server uses the source's id.
func checkServerID(ctx context.Context, db *sql.DB, st settings, srv server) connector.CheckResult {
	r := connector.CheckResult{Name: "mysql: server_id", Fix: "set source.server_id to a number no other replica of this server uses"}
	if st.serverID == srv.serverID {
		r.Detail = fmt.Sprintf("server_id %d is the server's own", st.serverID)
		return r
	}
	q := "SHOW SLAVE HOSTS"
	if srv.flavor == "mysql" {
		q = "SHOW REPLICAS"
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		r.OK, r.Detail = true, fmt.Sprintf("server_id %d (cannot list replicas: %v)", st.serverID, err)
		return r
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			break
		}
		var id, host string
		for i, c := range cols {
			switch strings.ToLower(c) {
			case "server_id":
				id = vals[i].String
			case "host":
				host = vals[i].String
			}
		}
		if id == fmt.Sprint(st.serverID) && host != st.localhost {
			r.Detail = fmt.Sprintf("server_id %d is used by the replica %q", st.serverID, host)
			return r
		}
	}
	r.OK, r.Detail = true, fmt.Sprintf("server_id %d is not used by another replica", st.serverID)
	return r
}

// checkTables makes sure the patterns select tables whose definitions parse.
func checkTables(ctx context.Context, db *sql.DB, st settings) connector.CheckResult {
	r := connector.CheckResult{Name: "mysql: tables"}
	schemas, err := discover(ctx, db, st)
	if err != nil {
		r.Detail, r.Fix = err.Error(), "see the error"
		return r
	}
	if len(schemas) == 0 {
		r.Detail = fmt.Sprintf("no table matches %v", st.patterns)
		r.Fix = "correct source.tables, or create the tables"
		return r
	}
	var noKey []string
	for _, s := range schemas {
		if len(s.KeyIndexes()) == 0 {
			noKey = append(noKey, s.QualifiedName())
		}
	}
	r.OK = true
	r.Detail = fmt.Sprintf("%d tables selected", len(schemas))
	if len(noKey) > 0 {
		r.Detail += fmt.Sprintf("; without a primary key (key-changing updates cannot be told apart): %s", strings.Join(noKey, ", "))
	}
	return r
}

// Discover lists the selected tables with their current schema.
func (Kind) Discover(ctx context.Context, p connector.SourceParams) ([]*record.Schema, error) {
	st, err := settingsFrom(p)
	if err != nil {
		return nil, err
	}
	db, err := st.open(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return discover(ctx, db, st)
}

func discover(ctx context.Context, db *sql.DB, st settings) ([]*record.Schema, error) {
	tables, err := listTables(ctx, db, st.tracked)
	if err != nil {
		return nil, err
	}
	var out []*record.Schema
	for _, t := range tables {
		if !st.selected(t) {
			continue
		}
		sql, err := showCreate(ctx, db, t)
		if err != nil {
			return nil, err
		}
		if sql == "" {
			continue
		}
		d, err := parseDDL(sql, t.db)
		if err != nil {
			return nil, fmt.Errorf("mysql: table %s: cannot parse its definition: %w", t, err)
		}
		if d.kind != stmtCreate {
			return nil, fmt.Errorf("mysql: table %s: SHOW CREATE TABLE gave no column list", t)
		}
		ts, err := buildSchema(t, d.def, st.types)
		if err != nil {
			return nil, fmt.Errorf("mysql: table %s: %w", t, err)
		}
		out = append(out, ts.schema)
	}
	return out, nil
}
