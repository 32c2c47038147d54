package duckdb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/connector"
)

func checkReport(res []connector.CheckResult) string {
	var b strings.Builder
	for _, r := range res {
		b.WriteString("\n  " + r.Name + ": " + r.Detail)
		if !r.OK {
			b.WriteString(" [fix: " + r.Fix + "]")
		}
	}
	return b.String()
}

// TestCheckOnAGoodPathWritesAndLeavesNoTrace: on a new file every step passes and
// the file is gone again; on a file in use, the steps pass and roll back: no scratch
// table, no new schema.
func TestCheckOnAGoodPathWritesAndLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	wantSteps := []string{"duckdb: open ", "duckdb: schema ", "duckdb: create a table", "duckdb: alter a table", "duckdb: write rows"}
	steps := func(t *testing.T, res []connector.CheckResult) {
		t.Helper()
		if len(res) != len(wantSteps) {
			t.Fatalf("%d results, want %d:%s", len(res), len(wantSteps), checkReport(res))
		}
		for i, r := range res {
			if !r.OK || !strings.HasPrefix(r.Name, wantSteps[i]) {
				t.Errorf("result %d is not a passed %q:%s", i, wantSteps[i], checkReport(res))
			}
		}
	}

	t.Run("new file", func(t *testing.T) {
		path := newPath(t)
		res := Kind{}.Check(ctx, params("check", &Config{Path: path, Schema: "staging"}))
		steps(t, res)
		if !strings.Contains(res[0].Detail, "DuckDB v1.") {
			t.Errorf("the open step does not report DuckDB's version: %q", res[0].Detail)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("the check left the file it created behind (%v)", err)
		}
	})

	t.Run("file in use", func(t *testing.T) {
		path := newPath(t)
		s := itemsSchema()
		if err := writeFlush(ctx, t, &Config{Path: path}, create(s, 1, int64(1), "one")); err != nil {
			t.Fatal(err)
		}
		steps(t, Kind{}.Check(ctx, params("check", &Config{Path: path, Schema: "other"})))
		left := query(t, path, `SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1`)
		if want := "main._connectd_offsets,main.items"; strings.Join(left, ",") != want {
			t.Errorf("tables after the check: %v, want %s", left, want)
		}
		if n := query(t, path, `SELECT count(*)::VARCHAR FROM duckdb_schemas() WHERE schema_name = 'other'`); n[0] != "0" {
			t.Error("the check's schema was not rolled back")
		}
	})
}

// TestCheckOnAnUnwritablePathSaysWhatToDo: a path under a regular file, and a path
// that is a directory, fail the open step with a fix.
func TestCheckOnAnUnwritablePathSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"under a file":   filepath.Join(file, "replica.duckdb"),
		"a directory":    dir,
		"not a database": file,
	} {
		t.Run(name, func(t *testing.T) {
			res := Kind{}.Check(ctx, params("check", &Config{Path: path}))
			if len(res) == 0 || res[len(res)-1].OK {
				t.Fatalf("the check passed:%s", checkReport(res))
			}
			last := res[len(res)-1]
			if !strings.HasPrefix(last.Name, "duckdb: open "+path) || last.Detail == "" || last.Fix == "" {
				t.Errorf("want a failed open step with what was found and a fix:%s", checkReport(res))
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "not a directory" {
		t.Errorf("the check changed a file that is not a database: %q, %v", b, err)
	}
}
