package plugins

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
)

// TestBadPluginConfigIsRefusedByCheckAndSyncNamingTheKey runs the built connectd
// with the example plugin, whose config misses `path` and misspells `table`: both
// `check` and `sync` refuse it, each naming the keys of the config file, and the
// same file corrected passes check.
func TestBadPluginConfigIsRefusedByCheckAndSyncNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	writeFile(t, events, eventLine(1))
	write := func(pluginConfig string) string {
		path := filepath.Join(dir, "connectd.yaml")
		writeFile(t, path, fmt.Sprintf(`offsets: file://%s/offsets
plugins:
  dir: %s
connectors:
  events:
    source:
      type: plugin
      name: jsonl-source
      config:
%s
    destination:
      type: parquet
      url: file://%s/lake
`, dir, pluginDir(t), pluginConfig, dir))
		return path
	}
	bad := write("        tabel: events\n        poll: 50ms")
	wants := []string{"connectors.events.source.config.path: required", "connectors.events.source.config.tabel: unknown key"}
	for _, cmd := range []string{"check", "sync"} {
		out, err := testenv.Connectd{Bin: connectdBin(t)}.RunCombined(2*time.Minute, cmd, "-c", bad)
		if err != nil {
			t.Fatal(err)
		}
		if out.Code == 0 || out.TimedOut {
			t.Fatalf("connectd %s accepted the bad plugin config:\n%s", cmd, tail(out.Stdout, 40))
		}
		for _, want := range wants {
			if !strings.Contains(out.Stdout, want) {
				t.Errorf("connectd %s does not say %q:\n%s", cmd, want, tail(out.Stdout, 40))
			}
		}
	}

	good := write(fmt.Sprintf("        path: %s\n        table: events\n        poll: 50ms", events))
	out, err := testenv.Connectd{Bin: connectdBin(t)}.RunCombined(2*time.Minute, "check", "-c", good)
	if err != nil {
		t.Fatal(err)
	}
	if out.Code != 0 || !strings.Contains(out.Stdout, "matches the plugin's config schema") {
		t.Fatalf("connectd check of the corrected config: exit %d\n%s", out.Code, tail(out.Stdout, 40))
	}
}
