package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/verify"
)

// verifyFlags are the options of `connectd verify`.
type verifyFlags struct {
	connectors []string
	tables     []string
	sample     float64
	json       bool
	wait       time.Duration
	rangeRows  int
	tempDir    string
	method     string
	cpuProfile string
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify -c FILE [--connector NAME]... [--table T]... [--sample PCT] [--json]",
		Short: "Compare what the destination holds with the source at one consistent point; exit 1 when they differ",
		Long: `verify reads each selected table of the source in one consistent snapshot, rebuilds
the destination's state from the records it holds up to the snapshot's point, and
compares them key by key: row counts and checksums per key range first, then the keys
and columns of the ranges that differ. When the connector has not delivered up to that
point yet, verify syncs it first (or, while another process runs it, waits up to --wait
for it to get there). Exit status: 0 equal, 1 not equal or failed, 2 usage error.
See docs/operations.md, "Verifying the lake".`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return g.verify(c.Context(), f)
		},
	}
	addConfigFlag(c, g)
	fl := c.Flags()
	fl.StringArrayVar(&f.connectors, "connector", nil, "verify only this connector (repeatable)")
	fl.StringArrayVar(&f.tables, "table", nil, "verify only this table, schema.table or a glob (repeatable)")
	fl.Float64Var(&f.sample, "sample", 100, "percent of the keys to compare, chosen by a hash of the key (0 < PCT <= 100)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for a connector that another process runs to deliver up to the verify point")
	fl.IntVar(&f.rangeRows, "range-rows", 0, "rows per compared key range (memory is bounded by it); 0: the default")
	fl.StringVar(&f.method, "method", verify.MethodRows, "rows: read the source's rows and hash them here (the least work for the source's server); digest: have the source's server hash key ranges itself where it can, so that rows cross the network only from ranges that differ")
	fl.StringVar(&f.tempDir, "temp-dir", "", "where key ranges are spilled while comparing; default: the system's temporary directory")
	// For the benchmark (docs/benchmarks.md): where verify's time goes, without a test binary.
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the run to this file")
	_ = fl.MarkHidden("cpuprofile")
	return c
}

// verifyOutput is what --json prints.
type verifyOutput struct {
	Equal      bool             `json:"equal"`
	Connectors []*verify.Report `json:"connectors"`
}

// errNotEqual ends a verify whose report shows differences (exit status 1, the report
// already printed).
var errNotEqual = errors.New("the destination differs from the source (see the report)")

func (g *globalFlags) verify(ctx context.Context, f verifyFlags) error {
	if f.sample <= 0 || f.sample > 100 {
		return usageErr(fmt.Errorf("--sample %g: want a percentage above 0 and at most 100", f.sample))
	}
	if f.method != verify.MethodRows && f.method != verify.MethodDigest {
		return usageErr(fmt.Errorf("--method %q: want %s or %s", f.method, verify.MethodRows, verify.MethodDigest))
	}
	if f.rangeRows < 0 {
		return usageErr(fmt.Errorf("--range-rows %d: want 0 or more", f.rangeRows))
	}
	for _, t := range f.tables {
		if _, err := path.Match(t, ""); err != nil {
			return usageErr(fmt.Errorf("--table %q: %w", t, err))
		}
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	a, err := g.load(ctx, true)
	if err != nil {
		return err
	}
	defer a.close()
	sel, err := a.selected(f.connectors)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	opt := verify.Options{RangeRows: f.rangeRows, Sample: f.sample, TempDir: f.tempDir, Method: f.method, Logger: a.log}
	// One JSON document for the whole run, for schedulers; text as each connector ends.
	all := verifyOutput{Equal: true, Connectors: []*verify.Report{}}
	for _, n := range sel {
		rep, err := a.verifyConnector(ctx, n, verifyScope{tables: f.tables, wait: f.wait, sync: true}, opt)
		if err != nil {
			return fmt.Errorf("verify %s: %w", n, err)
		}
		if !f.json {
			if err := rep.WriteText(g.stdout); err != nil {
				return err
			}
		}
		all.Connectors = append(all.Connectors, rep)
		all.Equal = all.Equal && rep.Equal()
	}
	if f.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			return err
		}
	}
	if !all.Equal {
		return &exitError{code: 1, err: errNotEqual}
	}
	return nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// verifyScope is what one verification of a connector may do besides comparing.
type verifyScope struct {
	tables []string      // patterns of the tables compared; all when empty
	wait   time.Duration // how long to wait for another process to reach the verify point
	// sync lets verify run the connector itself up to the verify point when no other
	// process holds it; the daemon's background verify waits for its own pipeline.
	sync bool
}

// verifyConnector verifies one connector's tables, for `connectd verify` and the
// daemon's background runs. The order matters: the snapshot is opened first, so that
// its boundary is a point the source had reached; then the destination is brought up
// to that point (by a sync of our own, or by waiting for the process that runs the
// connector); only then is the destination read.
func (a *app) verifyConnector(ctx context.Context, n string, sc verifyScope, opt verify.Options) (*verify.Report, error) {
	sk, dk, err := a.kinds(n)
	if err != nil {
		return nil, err
	}
	cfg := a.cfg.Connectors[n]
	so, ok := sk.(connector.SnapshotOpener)
	if !ok {
		return nil, fmt.Errorf("source type %q cannot be verified: it cannot read its tables in a consistent snapshot", cfg.Source.Type)
	}
	ro, ok := dk.(connector.ReaderOpener)
	if !ok {
		return nil, fmt.Errorf("destination type %q cannot be verified: it cannot read back what it holds", cfg.Destination.Type)
	}
	log := a.log.With("connector", n)

	snap, err := so.OpenSnapshot(ctx, a.sourceParams(n, connector.ModeSync, nil))
	if err != nil {
		return nil, fmt.Errorf("open the source's snapshot: %w", err)
	}
	defer func() {
		if err := snap.Close(context.WithoutCancel(ctx)); err != nil {
			log.Warn("closing the source's snapshot", "err", err)
		}
	}()
	log.Info("verify: source snapshot open", "at", snap.DescribeBoundary())

	var committed record.Position
	if sc.sync {
		committed, err = a.reachBoundary(ctx, n, snap, sc.wait)
	} else {
		committed, err = a.awaitBoundary(ctx, n, snap, sc.wait)
	}
	if err != nil {
		return nil, err
	}
	epoch, _, err := pipeline.SplitEpoch(committed)
	if err != nil {
		return nil, fmt.Errorf("the committed position: %w", err)
	}
	boundary := pipeline.WithEpoch(epoch, snap.Boundary())

	tables, err := selectTables(snap.Tables(), sc.tables)
	if err != nil {
		return nil, err
	}
	rd, err := ro.OpenReader(ctx, a.destinationParams(n))
	if err != nil {
		return nil, fmt.Errorf("open the destination for reading: %w", err)
	}
	defer func() {
		if err := rd.Close(context.WithoutCancel(ctx)); err != nil {
			log.Warn("closing the destination's reader", "err", err)
		}
	}()

	rep := &verify.Report{Connector: n, Position: a.describe(n, committed), Boundary: snap.DescribeBoundary()}
	for _, t := range tables {
		log.Info("verify: comparing", "table", t.QualifiedName())
		tr, err := verify.Table(ctx, snap, rd, t, boundary, opt)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.QualifiedName(), err)
		}
		rep.Tables = append(rep.Tables, tr)
	}
	return rep, nil
}

// reachBoundary returns a committed position at or past the snapshot's boundary. When
// the destination is behind, it syncs the connector itself; when another process holds
// the connector, it waits up to wait for that process to commit far enough.
func (a *app) reachBoundary(ctx context.Context, n string, snap connector.Snapshot, wait time.Duration) (record.Position, error) {
	committed, reached, err := a.reached(ctx, n, snap)
	if err != nil || reached {
		return committed, err
	}
	log := a.log.With("connector", n)
	log.Info("verify: the destination is behind the verify point; syncing first", "committed", a.describe(n, committed))
	holder := offsets.ThisProcess(version, "connectd verify")
	spec := a.pipelineSpec(n, holder, connector.ModeSync, pipeline.NopObserver{})
	err = pipeline.NewSupervisor(a.log).Run(ctx, []pipeline.Spec{spec}, true)
	if err == nil {
		// A sync delivers everything the source had committed when it began reading,
		// which was after the snapshot: all of the snapshot's changes are in the
		// destination now, even when no later change moved the committed position
		// past the boundary.
		committed, err = a.store.Load(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("read the committed position after the sync: %w", err)
		}
		return committed, nil
	}
	if !offsets.IsHeld(err) {
		return nil, fmt.Errorf("sync up to the verify point: %w", err)
	}
	log.Info("verify: another process runs the connector; waiting for it to deliver up to the verify point", "wait", wait)
	return a.awaitBoundary(ctx, n, snap, wait)
}

// awaitBoundary waits up to wait for the process running the connector (another one,
// or this daemon's own pipeline) to commit at or past the snapshot's boundary.
func (a *app) awaitBoundary(ctx context.Context, n string, snap connector.Snapshot, wait time.Duration) (record.Position, error) {
	deadline := time.Now().Add(wait)
	for {
		committed, reached, err := a.reached(ctx, n, snap)
		if err != nil || reached {
			return committed, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the process running the connector has not committed past %s within %s (committed: %s): check that it runs (connectd's status page), or stop it and verify again",
				snap.DescribeBoundary(), wait, a.describe(n, committed))
		}
		t := time.NewTimer(leasePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// reached reports whether the connector's committed position is at or past the
// snapshot's boundary (in the current epoch).
func (a *app) reached(ctx context.Context, n string, snap connector.Snapshot) (record.Position, bool, error) {
	committed, err := a.store.Load(ctx, n)
	if err != nil {
		return nil, false, fmt.Errorf("read the committed position: %w", err)
	}
	_, src, err := pipeline.SplitEpoch(committed)
	if err != nil {
		return nil, false, fmt.Errorf("the committed position: %w", err)
	}
	return committed, src != nil && src.Compare(snap.Boundary()) >= 0, nil
}

// selectTables keeps the tables matching one of the patterns (all when none).
func selectTables(all []*record.Schema, patterns []string) ([]*record.Schema, error) {
	if len(patterns) == 0 {
		return all, nil
	}
	var out []*record.Schema
	used := make([]bool, len(patterns))
	for _, t := range all {
		for i, p := range patterns {
			if ok, _ := path.Match(p, t.QualifiedName()); ok {
				out = append(out, t)
				used[i] = true
				break
			}
		}
	}
	for i, p := range patterns {
		if !used[i] {
			names := make([]string, len(all))
			for j, t := range all {
				names[j] = t.QualifiedName()
			}
			return nil, usageErr(fmt.Errorf("--table %q matches none of the connector's tables %v", p, names))
		}
	}
	return out, nil
}
