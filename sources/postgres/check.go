package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/jackc/pgx/v5"
)

// Check reaches the server and reports, one line each, whether everything the source
// needs is in place, with the fix for each failure.
func (Kind) Check(ctx context.Context, p connector.SourceParams) []connector.CheckResult {
	st, err := settingsFrom(p)
	if err != nil {
		return []connector.CheckResult{{Name: "postgres: config", Detail: err.Error(), Fix: "correct the source section of the config file"}}
	}
	conn, err := connect(ctx, st)
	if err != nil {
		return []connector.CheckResult{{Name: "postgres: connect", Detail: err.Error(),
			Fix: "check the dsn (host, port, database, user), the password, pg_hba.conf and that the server is running"}}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cfg := conn.Config()
	res := []connector.CheckResult{{Name: "postgres: connect", OK: true,
		Detail: fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)}}
	add := func(r connector.CheckResult) { res = append(res, r) }
	failed := func(name string, err error) []connector.CheckResult {
		return append(res, connector.CheckResult{Name: name, Detail: err.Error(), Fix: "see the error; the server answered a catalog query with it"})
	}

	cat, err := newCatalog(ctx, conn)
	if err != nil {
		return failed("postgres: server version", err)
	}
	add(connector.CheckResult{Name: "postgres: server version", OK: cat.version >= 100000,
		Detail: fmt.Sprintf("server_version_num %d", cat.version), Fix: "upgrade to PostgreSQL 10 or later (logical replication with pgoutput)"})

	level, err := cat.walLevel(ctx)
	if err != nil {
		return failed("postgres: wal_level", err)
	}
	add(connector.CheckResult{Name: "postgres: wal_level", OK: level == "logical", Detail: "wal_level = " + level,
		Fix: "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"})

	slot, slotErr := cat.slot(ctx, st.slot)
	var maxSlots, usedSlots, maxSenders, usedSenders int
	err = conn.QueryRow(ctx, `SELECT current_setting('max_replication_slots')::int,
  (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int,
  current_setting('max_wal_senders')::int,
  (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int`).Scan(&maxSlots, &usedSlots, &maxSenders, &usedSenders)
	if err != nil {
		return failed("postgres: replication slots", err)
	}
	switch {
	case slotErr != nil:
		add(connector.CheckResult{Name: "postgres: replication slots", Detail: slotErr.Error()})
	case slot.exists:
		add(connector.CheckResult{Name: "postgres: replication slots", OK: maxSlots > 0,
			Detail: fmt.Sprintf("slot %s exists (confirmed_flush_lsn %s, active %t); %d of %d slots used", st.slot, slot.confirmed, slot.active, usedSlots, maxSlots),
			Fix:    "ALTER SYSTEM SET max_replication_slots = 10; then restart PostgreSQL"})
	default:
		add(connector.CheckResult{Name: "postgres: replication slots", OK: usedSlots < maxSlots,
			Detail: fmt.Sprintf("slot %s will be created; %d of %d slots used", st.slot, usedSlots, maxSlots),
			Fix:    "raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = 10; then restart PostgreSQL) or drop unused slots (SELECT pg_drop_replication_slot(name))"})
	}
	add(connector.CheckResult{Name: "postgres: wal senders", OK: maxSenders > 0 && usedSenders < maxSenders,
		Detail: fmt.Sprintf("%d of %d wal senders in use", usedSenders, maxSenders),
		Fix:    "ALTER SYSTEM SET max_wal_senders = 10; then restart PostgreSQL"})

	var user string
	var canReplicate, super bool
	if err := conn.QueryRow(ctx, `SELECT current_user::text, rolreplication, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&user, &canReplicate, &super); err != nil {
		return failed("postgres: replication privilege", err)
	}
	detail := "role " + user + " has REPLICATION"
	if super {
		detail = "role " + user + " is a superuser"
	} else if !canReplicate {
		detail = "role " + user + " has neither REPLICATION nor superuser"
	}
	add(connector.CheckResult{Name: "postgres: replication privilege", OK: canReplicate || super, Detail: detail,
		Fix: "ALTER ROLE " + pgx.Identifier{user}.Sanitize() + " WITH REPLICATION;"})

	all, err := cat.allTables(ctx)
	if err != nil {
		return failed("postgres: tables", err)
	}
	tables, perPattern, _ := matchTables(all, st.tables)
	for i, pat := range st.tables {
		hits := perPattern[i]
		names := make([]string, len(hits))
		for j, t := range hits {
			names[j] = t.qualified()
		}
		d := fmt.Sprintf("matches %d: %s", len(hits), strings.Join(names, ", "))
		glob := strings.ContainsAny(pat, "*?")
		switch {
		case len(hits) == 0 && glob:
			d = "matches no table yet; tables created later that match are picked up while streaming"
		case len(hits) == 0:
			d = "matches no ordinary or partitioned table"
		}
		add(connector.CheckResult{Name: "postgres: tables " + pat, OK: len(hits) > 0 || glob, Detail: d,
			Fix: "correct the pattern (schema.table, case-sensitive, * and ? wildcards) or create the table"})
	}
	owner := true
	for _, t := range tables {
		cols, err := cat.columns(ctx, t)
		if err != nil {
			return failed("postgres: replica identity "+t.qualified(), err)
		}
		_, kerr := keyColumns(t, cols)
		r := connector.CheckResult{Name: "postgres: replica identity " + t.qualified(), OK: kerr == nil, Detail: identityDetail(t, cols)}
		if kerr != nil {
			r.Fix = "add a primary key, or run: ALTER TABLE " + t.ident() + " REPLICA IDENTITY FULL;"
		}
		add(r)
		var sel, own bool
		if err := conn.QueryRow(ctx, `SELECT has_table_privilege($1::oid, 'SELECT'), pg_catalog.pg_has_role(c.relowner, 'USAGE')
FROM pg_catalog.pg_class c WHERE c.oid = $1::oid`, int64(t.oid)).Scan(&sel, &own); err != nil {
			return failed("postgres: select privilege "+t.qualified(), err)
		}
		owner = owner && (own || super)
		add(connector.CheckResult{Name: "postgres: select privilege " + t.qualified(), OK: sel,
			Detail: map[bool]string{true: "granted", false: "role " + user + " may not SELECT"}[sel],
			Fix:    "GRANT SELECT ON " + t.ident() + " TO " + pgx.Identifier{user}.Sanitize() + ";"})
	}

	pub, err := cat.publication(ctx, st.publication)
	if err != nil {
		return failed("postgres: publication", err)
	}
	var canCreate bool
	if err := conn.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE')`).Scan(&canCreate); err != nil {
		return failed("postgres: publication", err)
	}
	idents := make([]string, len(tables))
	covered := 0
	for i, t := range tables {
		idents[i] = t.ident()
		if pub.tables[t.oid] {
			covered++
		}
	}
	create := "CREATE PUBLICATION " + pgx.Identifier{st.publication}.Sanitize() + " FOR TABLE " + strings.Join(idents, ", ") + ";"
	switch {
	case pub.exists && pub.allTables:
		add(connector.CheckResult{Name: "postgres: publication", OK: true, Detail: st.publication + " exists FOR ALL TABLES"})
	case pub.exists && covered == len(tables) && len(pub.tables) == len(tables):
		add(connector.CheckResult{Name: "postgres: publication", OK: true, Detail: st.publication + " exists with the selected tables"})
	case pub.exists:
		var pubOwner bool
		if err := conn.QueryRow(ctx, `SELECT pg_catalog.pg_has_role(pubowner, 'USAGE') FROM pg_catalog.pg_publication WHERE pubname = $1`, st.publication).Scan(&pubOwner); err != nil {
			return failed("postgres: publication", err)
		}
		add(connector.CheckResult{Name: "postgres: publication", OK: (pubOwner || super) && owner,
			Detail: fmt.Sprintf("%s exists with %d tables, %d of the %d selected; connectd will ALTER it to the selected set", st.publication, len(pub.tables), covered, len(tables)),
			Fix:    "as the owner of the publication and the tables run: ALTER PUBLICATION " + pgx.Identifier{st.publication}.Sanitize() + " SET TABLE " + strings.Join(idents, ", ") + ";"})
	default:
		ok := super || (canCreate && owner)
		d := st.publication + " does not exist; connectd will create it"
		if !ok {
			d = st.publication + " does not exist and role " + user + " may not create it (needs CREATE on the database and ownership of the tables)"
		}
		add(connector.CheckResult{Name: "postgres: publication", OK: ok, Detail: d, Fix: "as the tables' owner run: " + create})
	}
	return res
}

func identityDetail(t table, cols []column) string {
	var pk []string
	for _, c := range cols {
		if c.pk {
			pk = append(pk, c.name)
		}
	}
	switch t.identity {
	case 'f':
		return "REPLICA IDENTITY FULL"
	case 'i':
		return "REPLICA IDENTITY USING INDEX"
	case 'n':
		return "REPLICA IDENTITY NOTHING"
	}
	if len(pk) == 0 {
		return "no primary key"
	}
	return "primary key (" + strings.Join(pk, ", ") + ")"
}

// Discover lists the selected tables with their columns, key and mapped types. A
// table without a usable key is listed with no key columns.
func (Kind) Discover(ctx context.Context, p connector.SourceParams) ([]*record.Schema, error) {
	st, err := settingsFrom(p)
	if err != nil {
		return nil, err
	}
	conn, err := connect(ctx, st)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cat, err := newCatalog(ctx, conn)
	if err != nil {
		return nil, err
	}
	all, err := cat.allTables(ctx)
	if err != nil {
		return nil, err
	}
	tables, _, err := matchTables(all, st.tables)
	if err != nil {
		return nil, err
	}
	out := make([]*record.Schema, 0, len(tables))
	for _, t := range tables {
		cols, err := cat.columns(ctx, t)
		if err != nil {
			return nil, err
		}
		key, _ := keyColumns(t, cols)
		sh, err := cat.shape(ctx, t.schema, t.name, cols, key)
		if err != nil {
			return nil, err
		}
		out = append(out, sh.schema)
	}
	return out, nil
}
