// Command plugin measures what running a connector as a plugin costs: records per
// second through a plugin source (plugins/host/testdata/gensource) against the same
// records from an in-process source, and through a plugin destination
// (testdata/discarddest) against an in-process one, each through pipeline.Run with
// a destination or source that does no work, so the figures are the plugin
// boundary's cost alone (gRPC over a local socket, encoding and decoding). The goal
// of issue 5 is a ratio above 0.8.
//
//	go run ./bench/plugin [-n 2000000] [-runs 3]
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/plugins/host"
	"github.com/connectd/connectd/record"
)

func main() {
	n := flag.Uint64("n", 2000000, "records per run")
	runs := flag.Int("runs", 3, "runs of each case; the best is reported")
	cpuprofile := flag.String("cpuprofile", "", "write connectd's CPU profile here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *runs); err != nil {
		log.Print(err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(n uint64, runs int) error {
	dir, err := os.MkdirTemp("", "connectd-bench-plugin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, p := range []string{"gensource", "discarddest"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p), "./plugins/host/testdata/"+p)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s (run from the repository root): %w", p, err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	srcCfg := &config.PluginConfig{Name: "gensource", Config: map[string]any{"records": n, "batch": 1000}}
	dstCfg := &config.PluginConfig{Name: "discarddest"}

	inSource := func() (connector.Source, error) { return &genSource{n: n}, nil }
	plugSource := func() (connector.Source, error) {
		return host.SourceKind{Dir: dir}.Open(ctx, connector.SourceParams{Name: "bench", Mode: connector.ModeSync,
			Config: config.Source{Type: "plugin", Plugin: srcCfg}, Logger: quiet, Status: connector.NopStatus{}})
	}
	inDest := func() (connector.Destination, error) { return &discard{}, nil }
	plugDest := func() (connector.Destination, error) {
		return host.DestinationKind{Dir: dir}.Open(ctx, connector.DestinationParams{Name: "bench",
			Config: config.Destination{Type: "plugin", Plugin: dstCfg}, Logger: quiet})
	}
	measure := func(name string, src func() (connector.Source, error), dst func() (connector.Destination, error)) (float64, error) {
		best := 0.0
		for i := 0; i < runs; i++ {
			store, err := offsets.NewFile(filepath.Join(dir, fmt.Sprintf("offsets-%s-%d", name, i)))
			if err != nil {
				return 0, err
			}
			s, err := src()
			if err != nil {
				return 0, err
			}
			d, err := dst()
			if err != nil {
				return 0, err
			}
			t0 := time.Now()
			if err := pipeline.Run(ctx, pipeline.Options{Name: "bench", Source: s, Destination: d, Store: store,
				Flush: config.Flush{Rows: 200000}, Logger: quiet}); err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			rate := float64(n) / time.Since(t0).Seconds()
			best = max(best, rate)
		}
		fmt.Printf("%-34s %12.0f records/s\n", name, best)
		return best, nil
	}
	fmt.Printf("%d records of 5 columns (int64, decimal, text, timestamptz, bool), best of %d runs\n", n, runs)
	baseline, err := measure("in-process source -> discard", inSource, inDest)
	if err != nil {
		return err
	}
	ps, err := measure("plugin source -> discard", plugSource, inDest)
	if err != nil {
		return err
	}
	pd, err := measure("in-process source -> plugin dest", inSource, plugDest)
	if err != nil {
		return err
	}
	fmt.Printf("plugin source / in-process:        %.2f\n", ps/baseline)
	fmt.Printf("plugin destination / in-process:   %.2f\n", pd/baseline)
	return nil
}

// schema and row are the rows gensource produces, built here in process.
var schema = record.NewSchema("gen", "rows", []record.Column{
	{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
	{Name: "amount", SourceType: "numeric(12,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}, Nullable: true},
	{Name: "name", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
	{Name: "at", SourceType: "timestamptz", Type: record.Type{Kind: record.KindTimestampTZ}, Nullable: true},
	{Name: "flag", SourceType: "boolean", Type: record.Type{Kind: record.KindBool}, Nullable: true},
})

func row(n uint64) record.Record {
	var pos [8]byte
	binary.BigEndian.PutUint64(pos[:], n)
	ts := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return record.Record{
		Op: record.OpCreate, Schema: schema, Pos: pos[:], CommitTS: ts,
		After: []record.Value{int64(n), record.Decimal(fmt.Sprintf("%d.%02d", n, n%100)), fmt.Sprintf("row-%d", n),
			record.TimestampOf(ts), n%2 == 0},
	}
}

// genSource is gensource in process.
type genSource struct{ n uint64 }

func (g *genSource) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	next := uint64(1)
	if len(start) == 8 {
		next = binary.BigEndian.Uint64(start) + 1
	}
	for next <= g.n {
		b := make([]record.Record, min(1000, g.n-next+1))
		for i := range b {
			b[i] = row(next)
			next++
		}
		if err := emit(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (g *genSource) Ack(context.Context, record.Position) error { return nil }
func (g *genSource) Close(context.Context) error                { return nil }

// discard is discarddest in process.
type discard struct{ rows int64 }

func (d *discard) Write(_ context.Context, recs []record.Record) error {
	d.rows += int64(len(recs))
	return nil
}
func (d *discard) Buffered() (int64, int64)    { return d.rows, 0 }
func (d *discard) Flush(context.Context) error { d.rows = 0; return nil }
func (d *discard) Close(context.Context) error { return nil }
