package jsonl_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/plugins/examples/jsonl-source/jsonl"
	"github.com/connectd/connectd/plugins/examples/ndjson-destination/ndjson"
	"github.com/connectd/connectd/plugins/sdk"
)

// TestSyncsResumeAfterTheCommittedLine runs both example connectors in process
// (sdk.EmbedSource, sdk.EmbedDestination) through connectd's own runtime and offsets
// store, twice: the second sync delivers only the lines appended since the first, and
// leaves a line still being written for later.
func TestSyncsResumeAfterTheCommittedLine(t *testing.T) {
	dir := t.TempDir()
	path, out := filepath.Join(dir, "events.jsonl"), filepath.Join(dir, "out")
	store, err := offsets.NewFile(filepath.Join(dir, "offsets"))
	if err != nil {
		t.Fatal(err)
	}
	srcCfg, _ := json.Marshal(map[string]any{"path": path, "columns": []map[string]any{
		{"name": "id", "type": "int64", "key": true}, {"name": "amount", "type": "decimal(10,2)"}, {"name": "at", "type": "timestamptz"}},
		"time_column": "at"})
	dstCfg, _ := json.Marshal(map[string]any{"dir": out})
	log := slog.New(slog.DiscardHandler)
	sync := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		env := sdk.Env{Connector: "events", Sync: true, Logger: log}
		src, err := sdk.EmbedSource[jsonl.Config](&jsonl.Source{}, srcCfg, env)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := sdk.EmbedDestination[ndjson.Config](ctx, &ndjson.Destination{}, dstCfg, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := pipeline.Run(ctx, pipeline.Options{Name: "events", Source: src, Destination: dst, Store: store, Logger: log}); err != nil {
			t.Fatal(err)
		}
	}
	appendLines := func(lines string) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(lines); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}

	appendLines(`{"id": 1, "amount": 1.50, "at": "2026-11-25T10:00:00Z"}
{"id": 2, "amount": "2.25", "at": "2026-11-25T10:00:01Z"}
`)
	sync()
	appendLines(`{"id": 3, "amount": 3e2, "at": "2026-11-25T10:00:02Z", "ignored": true}
{"id": 4, "amount": null, "at": "2026-11-25T10:00:03Z"}
{"id": 5, "amou`)
	sync()

	got := readOut(t, out)
	want := []string{"1 1.50", "2 2.25", "3 300", "4 <nil>"} // exact text, as the line had it
	if !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q: every complete line once, the partial one not yet", got, want)
	}
	pos, err := store.Load(context.Background(), "events")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	complete := int64(len(data) - len(`{"id": 5, "amou`))
	if len(pos) != 8 || int64(binary.BigEndian.Uint64(pos)) != complete {
		t.Errorf("committed %s, want the offset %d just past the last complete line", pos, complete)
	}
}

// readOut returns "id amount" of every line the ndjson destination wrote, by id.
func readOut(t *testing.T, dir string) []string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".ndjson" {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var row struct {
				ID     json.Number  `json:"id"`
				Amount *json.Number `json:"amount"`
			}
			if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
				return err
			}
			amount := "<nil>"
			if row.Amount != nil {
				amount = row.Amount.String()
			}
			lines = append(lines, row.ID.String()+" "+amount)
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}
