package mysql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
)

// TestCatalogNeverStopsOnUnselectedTables: statements the parser cannot follow
// forget an unselected table, are a *ddlError naming a selected one (which the
// stream answers with SHOW CREATE TABLE), and a partition drop on a selected
// table is marked as changing rows without row events (no fallback).
func TestCatalogNeverStopsOnUnselectedTables(t *testing.T) {
	sc := settings{patterns: []pattern{{db: "shop", table: "orders"}, {db: "shop", table: "seq_*"}}}
	cat := newCatalog(sc)
	for _, q := range []string{
		"SET GLOBAL character_set_server = `latin1`",
		"CREATE DATABASE `shop` CHARACTER SET `utf8mb4`",
		"CREATE TABLE orders (id int primary key, v text)",
		"CREATE TABLE audit (id int primary key, v int)",
		"CREATE SEQUENCE seq_ids START WITH 10",
	} {
		if _, err := cat.apply(q, "shop"); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		"CREATE TABLE hist (id int primary key) WITH SYSTEM VERSIONING",
		"ALTER TABLE audit ADD SYSTEM VERSIONING",
		"ALTER TABLE audit ADD COLUMN v int", // already there: cannot be followed
		"RENAME TABLE nowhere TO elsewhere",
		"CREATE TABLE copy LIKE unknown",
		"ALTER SEQUENCE seq_ids RESTART WITH 5",
		"CREATE OR REPLACE SEQUENCE seq_more",
		"RENAME TABLE seq_more TO seq_other",
	} {
		ch, err := cat.apply(q, "shop")
		if err != nil {
			t.Errorf("%s: %v, want it ignored (the table is not selected)", q, err)
		}
		_ = ch
	}
	if _, ok := cat.tables[tableName{"shop", "audit"}]; ok {
		t.Error("audit is still tracked after a DDL that could not be followed")
	}
	if !cat.sequences[tableName{"shop", "seq_other"}] || !cat.sequences[tableName{"shop", "seq_ids"}] {
		t.Errorf("sequences %v", cat.sequences)
	}
	_, err := cat.apply("ALTER TABLE orders ADD SYSTEM VERSIONING", "shop")
	var de *ddlError
	if !errors.As(err, &de) || de.table != (tableName{"shop", "orders"}) {
		t.Fatalf("selected table: %v, want a ddlError naming shop.orders", err)
	}
	_, err = cat.apply("ALTER TABLE orders DROP PARTITION p1", "shop")
	if !errors.Is(err, errNoRowEvents) {
		t.Errorf("DROP PARTITION: %v, want errNoRowEvents", err)
	}
	// A table created without a character set takes its database's default, the
	// database's default follows ALTER DATABASE, and a new database the server's.
	for _, c := range []struct{ q, db, table, want string }{
		{"CREATE TABLE t1 (id int primary key)", "shop", "t1", "utf8mb4"},
		{"ALTER DATABASE shop DEFAULT CHARACTER SET = latin2", "shop", "", ""},
		{"CREATE TABLE t2 (id int primary key)", "shop", "t2", "latin2"},
		{"CREATE TABLE t3 (id int primary key) DEFAULT CHARSET=cp1251", "shop", "t3", "cp1251"},
		{"CREATE DATABASE IF NOT EXISTS shop COLLATE greek_general_ci", "shop", "", ""},
		{"CREATE TABLE t4 (id int primary key)", "shop", "t4", "latin2"}, // IF NOT EXISTS changed nothing
	} {
		if _, err := cat.apply(c.q, c.db); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		if c.table != "" {
			if got := cat.tables[tableName{c.db, c.table}].Charset; got != c.want {
				t.Errorf("%s: charset %q, want %q", c.q, got, c.want)
			}
		}
	}
	other := newCatalog(settings{patterns: []pattern{{db: "*", table: "*"}}})
	for _, q := range []string{"SET GLOBAL character_set_server = latin1", "CREATE DATABASE fresh", "CREATE TABLE fresh.t (id int primary key)"} {
		if _, err := other.apply(q, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := other.tables[tableName{"fresh", "t"}].Charset; got != "latin1" {
		t.Errorf("table of a database created without a charset: %q, want the server's latin1", got)
	}
}

// TestDDLBetweenSnapshotAndSchemaReadTakesTheSnapshotAgain: a row written and a
// column added after the snapshot's point but before its table definitions are
// read would put the ADD COLUMN into the definitions and into the stream alike
// (and the row before it, with one column fewer, under the new definition); the
// snapshot is taken again instead, and every row arrives once, with the column.
func TestDDLBetweenSnapshotAndSchemaReadTakesTheSnapshotAgain(t *testing.T) {
	exec(t, "CREATE DATABASE swdb; CREATE TABLE swdb.t (id int PRIMARY KEY, a int); INSERT INTO swdb.t VALUES (1, 1), (2, 2)")
	h := newHarness(t, "schemawindow", "swdb.t")
	var attempts []int
	h.setup = func(s *Source) {
		s.beforeDefinitions = func(attempt int) {
			attempts = append(attempts, attempt)
			if attempt == 1 {
				exec(t, "INSERT INTO swdb.t VALUES (50, 5); ALTER TABLE swdb.t ADD COLUMN b int DEFAULT 7; INSERT INTO swdb.t VALUES (100, 1, 2)")
			}
		}
	}
	recs := h.sync()
	if fmt.Sprint(attempts) != "[1 2]" {
		t.Errorf("snapshot attempts %v, want [1 2]", attempts)
	}
	exec(t, "INSERT INTO swdb.t VALUES (200, 3, 4); UPDATE swdb.t SET b = 8 WHERE id = 1")
	recs = append(recs, h.sync()...)
	var got []string
	for _, r := range recs {
		v := vals(r)
		got = append(got, fmt.Sprintf("%s%v:%v", r.Op, v["id"], v["b"]))
	}
	if want := "r1:7 r2:7 r50:7 r100:2 c200:4 u1:8"; strings.Join(got, " ") != want {
		t.Errorf("records %q, want %q", strings.Join(got, " "), want)
	}
	checkUniquePositions(t, h.got)
}

// TestDDLSinceSeesOnlyTrackedDatabases: the window check reads the binlog between
// two points and reports a DDL on a tracked database, not one elsewhere, nor rows.
func TestDDLSinceSeesOnlyTrackedDatabases(t *testing.T) {
	exec(t, "CREATE DATABASE swa; CREATE DATABASE swb; CREATE TABLE swa.t (id int PRIMARY KEY); CREATE TABLE swb.t (id int PRIMARY KEY)")
	st, err := settingsFrom(connector.SourceParams{Name: "w", Config: config.Source{Type: "mysql", Config: &Config{DSN: mariaServer(t).DSN, ServerID: 7100, Tables: []string{"swa.*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := &Source{st: st}
	ctx := testCtx(t)
	if s.db, err = st.open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.db.Close()
	from, err := masterStatus(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, "INSERT INTO swa.t VALUES (1); ALTER TABLE swb.t ADD COLUMN x int; FLUSH BINARY LOGS; INSERT INTO swa.t VALUES (2)")
	if stmt, err := s.ddlSince(ctx, from); err != nil || stmt != "" {
		t.Fatalf("ddlSince = %q, %v; want nothing (rows, and DDL on an untracked database)", stmt, err)
	}
	exec(t, "ALTER TABLE swa.t ADD COLUMN y int")
	if stmt, err := s.ddlSince(ctx, from); err != nil || !strings.Contains(stmt, "ADD COLUMN y") {
		t.Fatalf("ddlSince = %q, %v; want the ALTER on swa.t (in the next binlog file)", stmt, err)
	}
}
