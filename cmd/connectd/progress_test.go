package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/status"
)

func TestLogProgressLogsTablesThatMoved(t *testing.T) {
	reg := status.New(nil)
	c := reg.Observer("orders")
	c.SetPhase(status.PhaseSnapshot)
	c.SnapshotProgress("public.orders", 1000, 5000)
	c.SnapshotProgress("public.lines", 20, 0)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	logged := map[string]int64{}
	logProgress(log, reg.Views(), logged)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a line per table, got:\n%s", buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first["msg"] != "snapshot progress" || first["table"] != "public.orders" || first["rows"] != 1000.0 || first["estimate"] != 5000.0 || first["percent"] != 20.0 {
		t.Errorf("first line: %v", first)
	}
	buf.Reset()
	c.SnapshotProgress("public.orders", 2000, 5000)
	logProgress(log, reg.Views(), logged)
	if got := buf.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, `"rows":2000`) {
		t.Errorf("second call: want one line, for the table that moved:\n%s", got)
	}
	buf.Reset()
	c.SetPhase(status.PhaseStreaming)
	c.SnapshotProgress("public.orders", 3000, 5000)
	if logProgress(log, reg.Views(), logged); buf.Len() != 0 {
		t.Errorf("streaming: want no line, got:\n%s", buf.String())
	}
}

// TestProgressBarsShowTablesAndCarryTheLogs draws bars into a buffer: a bar per table
// with its figures, the logs printed through the container meanwhile, and given back
// to the output once the snapshot ends.
func TestProgressBarsShowTablesAndCarryTheLogs(t *testing.T) {
	var out testenv.Buffer
	logs := &switchWriter{w: &out}
	pb := &progressBars{out: &out, logs: logs, bars: map[string]*tableBar{}}
	reg := status.New(nil)
	c := reg.Observer("orders")
	c.SetPhase(status.PhaseSnapshot)
	c.SnapshotProgress("public.orders", 1200, 5000)
	ctx := context.Background()
	pb.update(ctx, reg.Views())
	if pb.p == nil || len(pb.bars) != 1 {
		t.Fatalf("want one bar, have %d", len(pb.bars))
	}
	if _, err := logs.Write([]byte("a log line\n")); err != nil {
		t.Fatalf("a log line while the bars show: %v", err)
	}
	c.SnapshotProgress("public.orders", 5000, 5000)
	pb.update(ctx, reg.Views())
	pb.update(ctx, reg.Views()) // unchanged at its estimate: done
	if pb.p != nil || len(pb.bars) != 0 {
		t.Fatalf("after the table's end: container %v, %d bars", pb.p != nil, len(pb.bars))
	}
	if _, err := logs.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"orders public.orders", "5k/5k rows", "a log line", "after"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
}

func TestFigures(t *testing.T) {
	eta := 12.0
	for _, c := range []struct {
		p    status.TableProgress
		want string
	}{
		{status.TableProgress{Rows: 1_240_000, Total: 5_000_000, RowsPerSecond: 310_000, ETASeconds: &eta}, "1.2M/5.0M rows 310k rows/s 12s left"},
		{status.TableProgress{Rows: 950}, "950 rows"},
	} {
		if got := figures(c.p); got != c.want {
			t.Errorf("figures(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
}
