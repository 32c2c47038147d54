package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/config/jsonschema"
	"github.com/connectd/connectd/connector/builtin"
)

// The committed reference and schema are generated from the connectors' specs; these
// tests fail when a spec changed and they were not regenerated.

func TestCommittedReferenceTablesAreUpToDate(t *testing.T) {
	const path = "../../docs/configuration.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rewriteReference(doc)
	if err != nil {
		t.Fatalf("docs/configuration.md: %v", err)
	}
	if string(want) != string(doc) {
		t.Fatalf("docs/configuration.md is stale: its key tables differ from the connectors' specs; run `make docs` and commit the result\n%s",
			firstDifference(string(doc), string(want)))
	}
}

func TestCommittedSchemaIsUpToDate(t *testing.T) {
	const path = "../../docs/connectd.schema.json"
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run `make docs`", err)
	}
	want, err := configSchema()
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(have) {
		t.Fatalf("docs/connectd.schema.json is stale: run `make docs` and commit the result\n%s", firstDifference(string(have), string(want)))
	}
}

// firstDifference shows the first line where the committed text and the generated one part.
func firstDifference(have, want string) string {
	h, w := strings.Split(have, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(h) || i < len(w); i++ {
		var hl, wl string
		if i < len(h) {
			hl = h[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if hl != wl {
			return fmt.Sprintf("first difference at line %d:\n  committed: %s\n  generated: %s", i+1, hl, wl)
		}
	}
	return ""
}

func schemaValidator(t *testing.T) *jsonschema.Validator {
	t.Helper()
	b, err := configSchema()
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.Compile(b)
	if err != nil {
		t.Fatalf("the schema does not compile: %v", err)
	}
	return v
}

func problems(t *testing.T, v *jsonschema.Validator, text []byte) []string {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(text, &doc); err != nil {
		t.Fatal(err)
	}
	ps, err := v.Validate(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// exampleEnv is what the example configs' ${VAR}s are set to when they are loaded.
func exampleEnv(t *testing.T) func(string) (string, bool) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"PG_DSN":           "postgres://connectd@127.0.0.1:5432/app?sslmode=disable",
		"PG_PASSWORD_FILE": pw,
		"MYSQL_DSN":        "mysql://repl:pw@127.0.0.1:3306/",
		"MYSQL_PASSWORD":   "pw",
		"LAKE_BUCKET":      "lake",
		"GITHUB_TOKEN":     "ghp_example",
		"GITHUB_REPO":      "golang/go",
		"WAREHOUSE_DSN":    "postgres://loader@127.0.0.1:5433/analytics?sslmode=disable",
	}
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestSchemaAcceptsEveryConfigTheLoaderAccepts validates the example configs and the
// e2e test data as an editor sees them (before ${VAR} substitution): what the loader
// accepts, the schema accepts too.
func TestSchemaAcceptsEveryConfigTheLoaderAccepts(t *testing.T) {
	v := schemaValidator(t)
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs (%v)", err)
	}
	more, _ := filepath.Glob("../../e2e/testdata/*.yaml")
	accepted := 0
	for _, f := range append(files, more...) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(f, text, exampleEnv(t), builtin.Registry("")); err != nil {
			if strings.Contains(f, "/configs/") {
				t.Errorf("%s: the loader refuses an example config: %v", f, err)
			}
			continue
		}
		accepted++
		if ps := problems(t, v, text); len(ps) > 0 {
			t.Errorf("%s: the loader accepts it, the schema refuses it: %s", f, strings.Join(ps, "; "))
		}
	}
	if accepted < len(files) {
		t.Errorf("only %d files were accepted by the loader", accepted)
	}
}

func TestSchemaRefusesBrokenConfigsNamingTheKey(t *testing.T) {
	v := schemaValidator(t)
	text, err := os.ReadFile("../../configs/postgres-to-s3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, new, want string }{
		{"      slot: connectd_orders", "      slott: connectd_orders", "connectors.orders.source.slott: unknown key"},
		{"      snapshot: initial ", "      snapshot: sometimes ", "connectors.orders.source.snapshot: value must be one of"},
		{"      compression: zstd ", "      compression: lz4 ", "connectors.orders.destination.compression: value must be one of"},
		{"      url: s3://${LAKE_BUCKET}/raw\n", "", "connectors.orders.destination.url: required"},
		{"        interval: 60s", "        interval: soon", `connectors.orders.destination.flush.interval: must be a duration such as 30s, 5m or 1h30m, got "soon"`},
		{"      type: postgres", "      type: oracle", "connectors.orders.source.type: value must be one of"},
		{"      type: parquet", "      type: parquet\n      server_id: 7", "connectors.orders.destination.server_id: unknown key"},
	} {
		broken := strings.Replace(string(text), c.old, c.new, 1)
		if broken == string(text) {
			t.Fatalf("%q is not in the example", c.old)
		}
		ps := problems(t, v, []byte(broken))
		if !strings.Contains(strings.Join(ps, "\n"), c.want) {
			t.Errorf("%q -> %q: problems %q, want %q", c.old, c.new, ps, c.want)
		}
	}
}

func TestSchemaAndDocsCommands(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"schema"}, &out, &errb); code != 0 {
		t.Fatalf("connectd schema: exit %d: %s", code, errb.String())
	}
	want, err := configSchema()
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Error("connectd schema printed something else than the schema")
	}

	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	stale := strings.Replace(string(doc), "| `snapshot_chunk` |", "| `snapshot_chunks` |", 1)
	path := filepath.Join(t.TempDir(), "configuration.md")
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run(context.Background(), []string{"docs", "--check", path}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "is stale: run `make docs`") {
		t.Fatalf("docs --check of a stale file: exit %d: %s", code, errb.String())
	}
	if code := run(context.Background(), []string{"docs", path}, &out, &errb); code != 0 {
		t.Fatalf("docs: exit %d: %s", code, errb.String())
	}
	if got, _ := os.ReadFile(path); string(got) != string(doc) {
		t.Error("connectd docs did not restore the generated table")
	}
}
