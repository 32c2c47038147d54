package mysql

import (
	"context"
	"errors"
	"fmt"

	"github.com/connectd/connectd/connector"
)

// definitionFromServer replaces a selected table's definition, after a DDL at
// offset the parser could not follow, with SHOW CREATE TABLE as the server has it
// now. The server may already be past later DDL on the table, so the definition is
// provisional until the stream reaches the binlog end read at the same moment:
// another DDL on the table before that end stops the connector (checkProvisional),
// since the rows in between would be read under a definition newer than theirs. A
// row image that does not match it (column count, or names with
// binlog_row_metadata = FULL) stops it too (checkTableMap).
func (st *streamer) definitionFromServer(ctx context.Context, de *ddlError, offset uint64, prefix []byte, sql string) error {
	s, t := st.s, de.table
	stop := func(why string) error {
		return connector.Permanent(fmt.Errorf("mysql: cannot follow DDL at %s:%d on selected table %s (%v); statement: %s; %s: run `connectd offsets reset` to snapshot again, or leave the table out of tables",
			st.file, offset, t, de.err, sql, why))
	}
	if errors.Is(de.err, errNoRowEvents) {
		return stop("the statement changes rows without row events")
	}
	if until, ok := s.cat.provisional[t]; ok && before(coords{file: st.file, offset: offset}, until) {
		return stop(fmt.Sprintf("the table changed again before the binlog end (%s) at which its definition was already taken from SHOW CREATE TABLE", until))
	}
	create, err := showCreate(ctx, s.db, t)
	if err != nil {
		return err
	}
	if create == "" {
		return stop("the table no longer exists, so its definition at this point is unknown")
	}
	end, err := masterStatus(ctx, s.db)
	if err != nil {
		return err
	}
	ch, err := s.cat.apply(create, t.db)
	if err != nil {
		return stop(fmt.Sprintf("SHOW CREATE TABLE does not parse either (%v)", err))
	}
	s.cat.provisional[t] = end
	if err := s.hist.addEntry(ctx, prefix, histEntry{DB: t.db, SQL: create, UntilFile: end.file, UntilOffset: end.offset}); err != nil {
		return err
	}
	for _, x := range ch.touched {
		delete(s.schemas, x)
	}
	s.log.Warn("a DDL on a selected table could not be parsed; its definition is taken from SHOW CREATE TABLE instead, which holds if the table does not change again before the binlog end read with it",
		"table", t.String(), "at", fmt.Sprintf("%s:%d", st.file, offset), "statement", sql, "err", de.err, "until", end.String())
	return nil
}

// checkProvisional stops the connector when a DDL at offset changes a table whose
// definition came from SHOW CREATE TABLE at a binlog end still ahead: that
// definition already included this change, so it did not describe the rows before
// it. Past that end the definition is exact and the guard goes.
func (st *streamer) checkProvisional(touched []tableName, offset uint64, sql string) error {
	here := coords{file: st.file, offset: offset}
	for _, t := range touched {
		until, ok := st.s.cat.provisional[t]
		if !ok {
			continue
		}
		if before(here, until) {
			return connector.Permanent(fmt.Errorf("mysql: table %s: its definition was taken from SHOW CREATE TABLE (an earlier DDL could not be parsed) when the binlog ended at %s, and the table changed again before that point, at %s:%d (%s), so the rows in between cannot be labelled with certainty: run `connectd offsets reset` to snapshot again",
				t, until, st.file, offset, sql))
		}
		delete(st.s.cat.provisional, t)
	}
	return nil
}

// baseContext is what the base definitions need besides SHOW CREATE TABLE, as
// statements the history replays: the server's and each tracked database's default
// character set (a table created later without one takes its database's), and the
// sequences (MariaDB), whose rows events are skipped.
func (s *Source) baseContext(ctx context.Context, q queryer) ([]histEntry, error) {
	var server string
	if err := q.QueryRowContext(ctx, "SELECT @@character_set_server").Scan(&server); err != nil {
		return nil, classify("read character_set_server", err)
	}
	out := []histEntry{{SQL: "SET GLOBAL character_set_server = " + quoteIdent(server)}}
	rows, err := q.QueryContext(ctx, "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA")
	if err != nil {
		return nil, classify("list databases", err)
	}
	defer rows.Close()
	for rows.Next() {
		var db, cs string
		if err := rows.Scan(&db, &cs); err != nil {
			return nil, classify("list databases", err)
		}
		if !systemDBs[db] && s.st.tracked(db) {
			out = append(out, histEntry{DB: db, SQL: "CREATE DATABASE " + quoteIdent(db) + " CHARACTER SET " + quoteIdent(cs)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify("list databases", err)
	}
	seqs, err := q.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'SEQUENCE'")
	if err != nil {
		return nil, classify("list sequences", err)
	}
	defer seqs.Close()
	for seqs.Next() {
		var t tableName
		if err := seqs.Scan(&t.db, &t.name); err != nil {
			return nil, classify("list sequences", err)
		}
		if s.st.tracked(t.db) {
			out = append(out, histEntry{DB: t.db, SQL: "CREATE SEQUENCE " + quoteName(t)})
		}
	}
	return out, seqs.Err()
}
