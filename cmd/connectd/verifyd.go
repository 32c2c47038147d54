package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/status"
	"github.com/connectd/connectd/verify"
)

// maxVerifyWait bounds how long a background verify waits for the daemon's own
// pipeline to deliver up to the verify point.
const maxVerifyWait = 10 * time.Minute

// verifyExamples is how many differing keys a background run logs.
const verifyExamples = 3

// backgroundVerify verifies connector n every vc.Every (each wait up to 10% longer, so
// that connectors started together do not read their sources at the same moment)
// until ctx ends. A run that fails is logged and recorded; it never stops the
// connector, which the daemon's pipeline runs on its own.
func (a *app) backgroundVerify(ctx context.Context, n string, vc config.Verify, obs *status.Connector) {
	log := a.log.With("connector", n)
	for {
		wait := vc.Every + time.Duration(rand.Int64N(int64(vc.Every)/10+1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rep, err := a.verifyInBackground(ctx, n, vc)
		if ctx.Err() != nil {
			return // the daemon stops: a cancelled run is no result
		}
		obs.Verified(verifyRun(time.Now(), rep, err))
		logVerify(log, rep, err)
	}
}

// verifyInBackground is one background run: the same verification as `connectd
// verify`, sampled and rate limited, waiting for the daemon's own pipeline (which
// holds the connector's lease) instead of syncing.
func (a *app) verifyInBackground(ctx context.Context, n string, vc config.Verify) (*verify.Report, error) {
	opt := verify.Options{
		Sample:    float64(vc.Sample),
		ReadLimit: float64(vc.Rate),
		Logger:    a.log.With("connector", n),
	}
	return a.verifyConnector(ctx, n, verifyScope{wait: min(vc.Every, maxVerifyWait)}, opt)
}

// verifyRun is what the status registry keeps of a run.
func verifyRun(at time.Time, rep *verify.Report, err error) status.VerifyRun {
	run := status.VerifyRun{At: at, Err: err}
	if err != nil || rep == nil {
		return run
	}
	for _, t := range rep.Tables {
		run.Tables = append(run.Tables, status.VerifyTable{
			Table:           t.Table,
			Equal:           t.Equal(),
			SourceRows:      t.SourceRows,
			DestinationRows: t.DestRows,
			Missing:         t.Missing,
			Extra:           t.Extra,
			Differing:       t.Differing,
		})
	}
	return run
}

// logVerify logs a run's outcome: info when equal, a warning per differing table with
// its counts and first keys, an error when the run failed.
func logVerify(log *slog.Logger, rep *verify.Report, err error) {
	if err != nil {
		log.Error("verify: the background run failed; the connector keeps running", "err", err)
		return
	}
	if rep.Equal() {
		log.Info("verify: the destination equals the source", "tables", len(rep.Tables), "at", rep.Boundary)
		return
	}
	for _, t := range rep.Tables {
		if t.Equal() {
			continue
		}
		var keys []string
		for i := range t.Examples[:min(len(t.Examples), verifyExamples)] {
			keys = append(keys, t.Examples[i].Summary())
		}
		log.Warn("verify: the destination differs from the source", "table", t.Table, "at", rep.Boundary,
			"missing", t.Missing, "extra", t.Extra, "differing", t.Differing,
			"duplicate_positions", t.DuplicatePositions, "unresolved", t.Unresolved,
			"source_rows", t.SourceRows, "destination_rows", t.DestRows, "sample_percent", t.Sample, "examples", strings.Join(keys, "; "))
	}
}
