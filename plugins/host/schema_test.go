package host

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// The example plugins declare their config with tags; the SDK sends the schema it
// derives, and connectd refuses a config that breaks it, naming the key in the file,
// before the plugin's own code runs.

func TestBadPluginConfigIsRefusedAtOpenNamingTheKeys(t *testing.T) {
	_, err := SourceKind{Dir: pluginDir(t)}.Open(ctxT(t), sourceParams(t, "events", &Config{Name: "jsonl-source",
		Config: map[string]any{"pth": "/x", "columns": []any{map[string]any{"name": "id", "type": "int99"}}}}, connector.ModeSync))
	if err == nil || !connector.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	for _, want := range []string{
		"connectors.events.source.config.path: required",
		"connectors.events.source.config.pth: unknown key",
		"connectors.events.source.config.columns[0].type: 'int99' does not match pattern",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	_, err = DestinationKind{Dir: pluginDir(t)}.Open(ctxT(t), destinationParams(t, "out", &Config{Name: "ndjson-destination",
		Config: map[string]any{"directory": t.TempDir()}}))
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "connectors.out.destination.config.dir: required") {
		t.Fatalf("destination: err = %v", err)
	}
}

func TestBadPluginConfigFailsCheckBeforeThePluginsOwnChecks(t *testing.T) {
	res := SourceKind{Dir: pluginDir(t)}.Check(ctxT(t), sourceParams(t, "events", &Config{Name: "jsonl-source",
		Config: map[string]any{"path": "/x", "poll": "often"}}, connector.ModeSync))
	if len(res) != 2 || !res[0].OK || res[1].OK || res[1].Name != "plugin jsonl-source: config" ||
		!strings.Contains(res[1].Detail, "connectors.events.source.config.poll: must be a duration such as 30s, 5m or 1h30m, got \"often\"") {
		t.Fatalf("check results %+v; want the start, then the config refused, and nothing of the plugin's own", res)
	}
	res = DestinationKind{Dir: pluginDir(t)}.Check(ctxT(t), destinationParams(t, "out", &Config{Name: "ndjson-destination",
		Config: map[string]any{"dir": t.TempDir(), "compress": true}}))
	if len(res) != 2 || res[1].OK || !strings.Contains(res[1].Detail, "connectors.out.destination.config.compress: unknown key") {
		t.Fatalf("destination check results %+v", res)
	}
}

func TestGoodPluginConfigPassesCheckAndRuns(t *testing.T) {
	input := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(input, []byte(`{"id":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pc := &Config{Name: "jsonl-source", Config: map[string]any{"path": input, "poll": "50ms",
		"columns": []any{map[string]any{"name": "id", "type": "int64", "key": true}}}}
	res := SourceKind{Dir: pluginDir(t)}.Check(ctxT(t), sourceParams(t, "events", pc, connector.ModeSync))
	if len(res) < 3 {
		t.Fatalf("check results %+v; want the start, the config and the plugin's own checks", res)
	}
	for _, r := range res {
		if !r.OK {
			t.Errorf("check %s failed: %s", r.Name, r.Detail)
		}
	}
	if res[1].Detail != "matches the plugin's config schema" {
		t.Errorf("config check: %+v", res[1])
	}
	src, err := SourceKind{Dir: pluginDir(t)}.Open(ctxT(t), sourceParams(t, "events", pc, connector.ModeSync))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	var got []record.Record
	err = src.Read(ctxT(t), nil, func(_ context.Context, recs []record.Record) error { got = append(got, recs...); return nil })
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	// The namespace is the default the plugin's type declares, applied by the SDK.
	if len(got) != 1 || got[0].Schema.Namespace != "jsonl" || got[0].Schema.Table != "events" {
		t.Fatalf("records %+v", got)
	}
}
