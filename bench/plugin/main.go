// Command plugin measures what running a connector as a plugin costs: records per
// second through pipeline.Run with a plugin at one end against the same records with
// a built-in connector there, as ratios. The goal (docs/benchmarks.md) is a ratio of at least
// 0.8 (a plugin costs less than 20% of throughput).
//
// Two comparisons:
//
//   - against a no-op at the other end (plugins/host/testdata/gensource and
//     discarddest against in-process equivalents): the plugin boundary's cost alone
//     (gRPC over a local socket, encoding and decoding), the worst case;
//
//   - what a user sees: the plugin source into the built-in parquet destination
//     (file://, zstd) against the in-process source into the same destination.
//
//   - real connectors: the example plugins jsonl-source (into parquet) and
//     ndjson-destination (from the in-process generator), each against the very same
//     connector code run in process through sdk.EmbedSource / EmbedDestination.
//     These connectors do real work per record (parse a JSON line, format one), as
//     a user's would, so the boundary's cost shows next to that work.
//
// The cases run in turn, runs times, so that a change in the machine's load touches
// them all; each figure is the median of its runs, and each ratio the median of the
// ratios of neighbouring runs. Wall-clock throughput on a shared machine moves with
// the other load, so the CPU time each case takes (connectd's and the plugin
// process's together, from getrusage) is also reported, as records per CPU-second:
// the plugin's cost in work rather than in time.
//
//	go run ./bench/plugin [-n 1000000] [-runs 5]
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/parquet"
	"github.com/connectd/connectd/internal/gctune"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/plugins/examples/jsonl-source/jsonl"
	"github.com/connectd/connectd/plugins/examples/ndjson-destination/ndjson"
	"github.com/connectd/connectd/plugins/host"
	"github.com/connectd/connectd/plugins/sdk"
	"github.com/connectd/connectd/record"
)

func main() {
	n := flag.Uint64("n", 1000000, "records per run")
	runs := flag.Int("runs", 5, "runs of each case; the median is reported")
	only := flag.String("only", "", "run only the cases whose name contains this")
	cpuprofile := flag.String("cpuprofile", "", "write connectd's CPU profile here")
	flag.Parse()
	// Both kinds of cases run in this process: collect garbage as connectd does.
	gctune.Set(gctune.Connectd)
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
	if err := run(*n, *runs, *only); err != nil {
		log.Print(err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

type benchCase struct {
	name  string
	src   func() (connector.Source, error)
	dst   func(dir string) (connector.Destination, error)
	rates []float64 // records per second, per run
	cpu   []float64 // records per CPU-second, per run
}

func run(n uint64, runs int, only string) error {
	dir, err := os.MkdirTemp("", "connectd-bench-plugin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for p, pkg := range map[string]string{"gensource": "./plugins/host/testdata/gensource", "discarddest": "./plugins/host/testdata/discarddest",
		"jsonl-source": "./plugins/examples/jsonl-source", "ndjson-destination": "./plugins/examples/ndjson-destination"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p), pkg)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s (run from the repository root): %w", p, err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	srcCfg := &host.Config{Name: "gensource", Config: map[string]any{"records": n, "batch": 1000}}
	dstCfg := &host.Config{Name: "discarddest"}

	inSource := func() (connector.Source, error) { return &genSource{n: n}, nil }
	plugSource := func() (connector.Source, error) {
		return host.SourceKind{Dir: dir}.Open(ctx, connector.SourceParams{Name: "bench", Mode: connector.ModeSync,
			Config: config.Source{Type: "plugin", Config: srcCfg}, Logger: quiet, Status: connector.NopStatus{}})
	}
	inDest := func(string) (connector.Destination, error) { return &discard{}, nil }
	plugDest := func(string) (connector.Destination, error) {
		return host.DestinationKind{Dir: dir}.Open(ctx, connector.DestinationParams{Name: "bench",
			Config: config.Destination{Type: "plugin", Config: dstCfg}, Logger: quiet})
	}
	parquetDest := func(out string) (connector.Destination, error) {
		return parquet.Kind{}.Open(ctx, connector.DestinationParams{Name: "bench",
			Config: config.Destination{Type: "parquet", Config: &parquet.Config{URL: "file://" + out}}, Logger: quiet})
	}
	jsonlPath := filepath.Join(dir, "rows.jsonl")
	if err := writeJSONL(jsonlPath, n); err != nil {
		return err
	}
	jsonlCfg := map[string]any{"path": jsonlPath, "namespace": "gen", "table": "rows", "time_column": "at",
		"columns": []map[string]any{{"name": "id", "type": "int64", "key": true}, {"name": "amount", "type": "decimal(12,2)"},
			{"name": "name", "type": "string"}, {"name": "at", "type": "timestamptz"}, {"name": "flag", "type": "bool"}}}
	env := sdk.Env{Connector: "bench", Sync: true, Logger: quiet}
	jsonlEmbedded := func() (connector.Source, error) {
		return sdk.EmbedSource[jsonl.Config](&jsonl.Source{}, mustJSON(jsonlCfg), env)
	}
	jsonlPlugin := func() (connector.Source, error) {
		return host.SourceKind{Dir: dir}.Open(ctx, connector.SourceParams{Name: "bench", Mode: connector.ModeSync, Logger: quiet, Status: connector.NopStatus{},
			Config: config.Source{Type: "plugin", Config: &host.Config{Name: "jsonl-source", Config: jsonlCfg}}})
	}
	ndjsonEmbedded := func(out string) (connector.Destination, error) {
		return sdk.EmbedDestination[ndjson.Config](ctx, &ndjson.Destination{}, mustJSON(map[string]any{"dir": out}), env)
	}
	ndjsonPlugin := func(out string) (connector.Destination, error) {
		return host.DestinationKind{Dir: dir}.Open(ctx, connector.DestinationParams{Name: "bench", Logger: quiet,
			Config: config.Destination{Type: "plugin", Config: &host.Config{Name: "ndjson-destination", Config: map[string]any{"dir": out}}}})
	}
	cases := []*benchCase{
		{name: "in-process source -> discard", src: inSource, dst: inDest},
		{name: "plugin source -> discard", src: plugSource, dst: inDest},
		{name: "in-process source -> plugin dest", src: inSource, dst: plugDest},
		{name: "in-process source -> parquet", src: inSource, dst: parquetDest},
		{name: "plugin source -> parquet", src: plugSource, dst: parquetDest},
		{name: "jsonl-source embedded -> parquet", src: jsonlEmbedded, dst: parquetDest},
		{name: "jsonl-source plugin -> parquet", src: jsonlPlugin, dst: parquetDest},
		{name: "in-process source -> ndjson embedded", src: inSource, dst: ndjsonEmbedded},
		{name: "in-process source -> ndjson plugin", src: inSource, dst: ndjsonPlugin},
	}
	cases = slices.DeleteFunc(cases, func(c *benchCase) bool { return only != "" && !strings.Contains(c.name, only) })

	fmt.Printf("%d records of 5 columns (int64, decimal, text, timestamptz, bool), median of %d runs\n", n, runs)
	for i := 0; i < runs; i++ {
		for _, c := range cases {
			rate, cpu, err := measure(ctx, c, n, filepath.Join(dir, fmt.Sprintf("run-%d", i)), quiet)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			c.rates = append(c.rates, rate)
			c.cpu = append(c.cpu, cpu)
		}
	}
	byName := map[string]*benchCase{}
	for _, c := range cases {
		byName[c.name] = c
		fmt.Printf("%-38s %9.0f records/s %9.0f records/CPU-s   (runs:", c.name, median(c.rates), median(c.cpu))
		for _, r := range c.rates {
			fmt.Printf(" %.0f", r)
		}
		fmt.Println(")")
	}
	ratio := func(label, num, den string) {
		a, b := byName[num], byName[den]
		if a == nil || b == nil {
			return
		}
		var rs, cs []float64
		for i := range a.rates {
			rs = append(rs, a.rates[i]/b.rates[i])
			cs = append(cs, a.cpu[i]/b.cpu[i])
		}
		fmt.Printf("%-48s %.2f  (per CPU-second: %.2f)\n", label, median(rs), median(cs))
	}
	ratio("plugin source / in-process (no-op dest):", "plugin source -> discard", "in-process source -> discard")
	ratio("plugin destination / in-process (no-op src):", "in-process source -> plugin dest", "in-process source -> discard")
	ratio("plugin source / in-process (into parquet):", "plugin source -> parquet", "in-process source -> parquet")
	ratio("jsonl-source plugin / embedded (parquet):", "jsonl-source plugin -> parquet", "jsonl-source embedded -> parquet")
	ratio("ndjson-destination plugin / embedded:", "in-process source -> ndjson plugin", "in-process source -> ndjson embedded")
	return nil
}

// cpuTime is the CPU time used so far by this process and by its children that
// have ended (a plugin process is waited for when it is stopped).
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// measure runs one case once, with fresh offsets and output, and returns records per
// second and per CPU-second (the plugin process's included: it has ended when
// pipeline.Run returns).
func measure(ctx context.Context, c *benchCase, n uint64, dir string, log *slog.Logger) (rate, cpu float64, err error) {
	out := filepath.Join(dir, "lake")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	store, err := offsets.NewFile(filepath.Join(dir, "offsets"))
	if err != nil {
		return 0, 0, err
	}
	runtime.GC() // the previous case's garbage is not this one's cost
	c0, t0 := cpuTime(), time.Now()
	s, err := c.src()
	if err != nil {
		return 0, 0, err
	}
	d, err := c.dst(out)
	if err != nil {
		return 0, 0, err
	}
	if err := pipeline.Run(ctx, pipeline.Options{Name: "bench", Source: s, Destination: d, Store: store,
		Flush: config.Flush{Rows: 200000}, Logger: log}); err != nil {
		return 0, 0, err
	}
	return float64(n) / time.Since(t0).Seconds(), float64(n) / (cpuTime() - c0).Seconds(), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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

// writeJSONL writes the generated rows as the JSON lines jsonl-source reads.
func writeJSONL(path string, n uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := uint64(1); i <= n; i++ {
		ts := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		fmt.Fprintf(w, `{"id":%d,"amount":%d.%02d,"name":"row-%d","at":"%s","flag":%t}`+"\n", i, i, i%100, i, ts.Format(time.RFC3339), i%2 == 0)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
