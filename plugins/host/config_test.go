package host

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/parquet"
	"github.com/connectd/connectd/internal/testenv/lakedb"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
)

// TestExampleConfigRunsThePlugin loads configs/plugin-jsonl-to-parquet.yaml as a user
// would and syncs it, with the plugin found by name in plugins.dir.
func TestExampleConfigRunsThePlugin(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "configs", "plugin-jsonl-to-parquet.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	appendFile(t, events, `{"id":1,"kind":"signup","amount":"0.10","at":"2024-06-01T12:00:00Z","attrs":{"plan":"pro"}}
{"id":2,"kind":"buy","amount":19.99,"at":"2024-06-02T08:30:00.5Z"}
`)
	lake := filepath.Join(dir, "lake")
	vars := map[string]string{"PLUGINS_DIR": pluginDir(t), "EVENTS_FILE": events, "LAKE_DIR": lake}
	kinds := connector.NewRegistry()
	kinds.AddSource("plugin", SourceKind{})
	kinds.AddDestination("parquet", parquet.Kind{})
	cfg, err := config.Parse(path, data, func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, kinds)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors["app_events"]
	src, err := SourceKind{Dir: cfg.Plugins.Dir}.Open(ctxT(t), connector.SourceParams{Name: "app_events", Config: c.Source,
		Mode: connector.ModeSync, Logger: testLogger(t), Status: connector.NopStatus{}})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := parquet.Kind{}.Open(ctxT(t), connector.DestinationParams{Name: "app_events", Config: c.Destination, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	store, err := offsets.NewFile(filepath.Join(dir, "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pipeline.Run(ctxT(t), pipeline.Options{Name: "app_events", Source: src, Destination: dst, Store: store,
		Flush: c.Destination.Flush, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	var n int
	var sum, dates string
	err = lakedb.DuckDB(t).QueryRow(`SELECT count(*), CAST(sum(amount) AS VARCHAR), string_agg(CAST(date AS VARCHAR), ',' ORDER BY id) FROM `+
		lakedb.ParquetTree(filepath.Join(lake, "app", "events"))).Scan(&n, &sum, &dates)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || sum != "20.09" || dates != "2024-06-01,2024-06-02" {
		t.Fatalf("lake: %d rows, sum %s, dates %s", n, sum, dates)
	}
}
