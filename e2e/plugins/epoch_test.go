package plugins

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// TestPluginSeesOnlyTheEnvironmentItsConfigNames: a real plugin process (envsource,
// which reports its environment as rows) started by `connectd sync` sees the
// variables its `env:` names, a NAME: value item with ${VAR} interpolated, and
// nothing else of connectd's environment: not a secret connectd holds, not even PATH.
func TestPluginSeesOnlyTheEnvironmentItsConfigNames(t *testing.T) {
	testenv.NeedServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "envsource")
	if err := testenv.Build(ctx, "", "./e2e/plugins/testdata/envsource", bin); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONNECTD_E2E_DB_PASSWORD", "hunter2-secret")
	t.Setenv("CONNECTD_E2E_REGION", "eu-west-3")
	t.Setenv("CONNECTD_E2E_TOKEN_SOURCE", "tok-123")
	lake := filepath.Join(dir, "lake")
	config := filepath.Join(dir, "connectd.yaml")
	writeFile(t, config, fmt.Sprintf(`offsets: file://%s/offsets
connectors:
  %s:
    source:
      type: plugin
      path: %s
      env:
        - CONNECTD_E2E_REGION
        - PLUGIN_TOKEN: "${CONNECTD_E2E_TOKEN_SOURCE}-x"
        - CONNECTD_E2E_NOT_SET
    destination:
      type: parquet
      url: file://%s
`, dir, unique("envcheck"), bin, lake))
	r := syncConfig(t, config)
	if !strings.Contains(r.stderr, "CONNECTD_E2E_NOT_SET") {
		t.Errorf("connectd did not warn that a named variable is not set:\n%s", tail(r.stderr, 30))
	}

	db := lakedb.DuckDB(t)
	rows, err := db.Query(`SELECT name, value FROM ` + lakedb.ParquetTree(filepath.Join(lake, "plugin", "env")) + ` ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			t.Fatal(err)
		}
		got[name] = value
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"CONNECTD_E2E_REGION": "eu-west-3", "PLUGIN_TOKEN": "tok-123-x"} {
		if got[name] != want {
			t.Errorf("the plugin sees %s=%q, want %q (its whole environment: %v)", name, got[name], want, got)
		}
	}
	for name, value := range got {
		if strings.Contains(value, "hunter2") {
			t.Errorf("the plugin sees connectd's secret in %s=%s", name, value)
		}
		switch {
		case name == "CONNECTD_E2E_REGION", name == "PLUGIN_TOKEN", name == "TMPDIR":
		case name == "CONNECTD_PLUGIN", strings.HasPrefix(name, "PLUGIN_"): // go-plugin's handshake
		default:
			t.Errorf("the plugin sees %s=%s, which its config does not name", name, value)
		}
	}
	if _, ok := got["CONNECTD_E2E_NOT_SET"]; ok {
		t.Errorf("a named variable connectd does not have reached the plugin")
	}
}
