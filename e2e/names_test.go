package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestTablesByGlobAndQuotedNames: one connector captures the tables a glob matches
// and a table whose schema, table and column names need quoting, each into its own
// folder of the lake, and nothing else.
func TestTablesByGlobAndQuotedNames(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_names")
	mustExec(t, conn, `CREATE TABLE public.line_a (id int PRIMARY KEY, v text);
CREATE TABLE public.line_b (id bigint PRIMARY KEY, w int);
CREATE TABLE public.other (id int PRIMARY KEY);
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Line Items" ("Order ID" int PRIMARY KEY, "select" text, "Ünïcode" text);
INSERT INTO public.line_a VALUES (1, 'a1');
INSERT INTO public.line_b VALUES (1, 10);
INSERT INTO public.other VALUES (1);
INSERT INTO "Sales"."Line Items" VALUES (1, 'x', 'ü')`)
	// config/validate.go refuses spaces and quotes in a table name, so a glob has to
	// stand in for the space.
	p := newPipe(t, "globs_and_names", dsn, false, "public.line_*", "Sales.Line?Items")
	p.writeConfig(t)
	p.sync(t)
	mustExec(t, conn, `INSERT INTO public.line_a VALUES (2, 'a2');
UPDATE public.line_b SET w = 11 WHERE id = 1;
INSERT INTO public.other VALUES (2);
INSERT INTO "Sales"."Line Items" VALUES (2, 'y', 'ÿ');
DELETE FROM "Sales"."Line Items" WHERE "Order ID" = 1`)
	p.sync(t)

	entries, err := os.ReadDir(filepath.Join(p.lakeDir, "public"))
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, e := range entries {
		tables = append(tables, e.Name())
	}
	if got := strings.Join(tables, " "); got != "line_a line_b" {
		t.Errorf("lake folders under public/: %q, want the tables the glob matches, \"line_a line_b\"", got)
	}

	db := lakedb.DuckDB(t)
	ops := func(dir string, cols ...string) string {
		rows := readTable(t, db, dir, cols...)
		checkPositions(t, rows)
		var s []string
		for _, r := range rows {
			var vals []string
			for _, c := range cols {
				name := c[strings.LastIndex(c, " ")+1:]
				vals = append(vals, r.val(name))
			}
			s = append(s, r.val("_op")+"("+strings.Join(vals, ",")+")")
		}
		return strings.Join(s, " ")
	}
	if got, want := ops(lakeTable(p.lakeDir, "public", "line_a"), "CAST(id AS VARCHAR) AS id", "v"), "r(1,a1) c(2,a2)"; got != want {
		t.Errorf("public.line_a: %s, want %s", got, want)
	}
	if got, want := ops(lakeTable(p.lakeDir, "public", "line_b"), "CAST(id AS VARCHAR) AS id", "CAST(w AS VARCHAR) AS w"), "r(1,10) u(1,11)"; got != want {
		t.Errorf("public.line_b: %s, want %s", got, want)
	}

	sales, err := os.ReadDir(filepath.Join(p.lakeDir, "Sales"))
	if err != nil || len(sales) != 1 {
		t.Fatalf("want one folder for \"Sales\".\"Line Items\" under %s: %v %v", filepath.Join(p.lakeDir, "Sales"), sales, err)
	}
	t.Logf("\"Sales\".\"Line Items\" is at Sales/%s", sales[0].Name())
	got := ops(filepath.Join(p.lakeDir, "Sales", sales[0].Name()),
		`CAST("Order ID" AS VARCHAR) AS order_id`, `"select" AS sel`, `"Ünïcode" AS uni`)
	if want := "r(1,x,ü) c(2,y,ÿ) d(1,*,*)"; !matchOps(got, want) {
		t.Errorf("\"Sales\".\"Line Items\": %s, want %s", got, want)
	}
}

// matchOps compares rendered record lists where "*" in want matches any value.
func matchOps(got, want string) bool {
	g, w := strings.Fields(got), strings.Fields(want)
	if len(g) != len(w) {
		return false
	}
	for i := range g {
		gv := strings.Split(strings.TrimSuffix(g[i], ")"), ",")
		wv := strings.Split(strings.TrimSuffix(w[i], ")"), ",")
		if len(gv) != len(wv) {
			return false
		}
		for j := range gv {
			if wv[j] != "*" && wv[j] != gv[j] {
				return false
			}
		}
	}
	return true
}
