package fault

import (
	"context"
	"math/rand"
	"testing"
	"time"
)

// load is a table's preloaded rows.
type load struct {
	table string
	rows  int64
}

// plan is how many faults of each kind a test injects.
type plan struct {
	killsRandom, killsAfterFlush, killsDuringUpload int
	walsender, pgRestarts, s3Pauses, diskFulls      int
	s3Pause                                         time.Duration
	diskHold                                        time.Duration
	bigTxn, burst                                   int64
	killMax, gapMax                                 time.Duration // random kill delay, pause between faults
	pace                                            time.Duration // workload: most sleep between transactions
}

func shortPlan() plan {
	return plan{killsRandom: 10, killsAfterFlush: 6, killsDuringUpload: 4,
		walsender: 3, pgRestarts: 2, s3Pauses: 2, diskFulls: 2,
		s3Pause: 12 * time.Second, diskHold: 5 * time.Second, bigTxn: 50_000, burst: 40_000,
		killMax: 3 * time.Second, gapMax: 1500 * time.Millisecond, pace: 2 * time.Millisecond}
}

func longPlan(kills int) plan {
	return plan{killsRandom: kills / 2, killsAfterFlush: kills / 4, killsDuringUpload: kills - kills/2 - kills/4,
		walsender: 60, pgRestarts: 20, s3Pauses: 4, diskFulls: 10,
		s3Pause: time.Minute, diskHold: 20 * time.Second, bigTxn: 1_000_000, burst: 100_000,
		// Short gaps and a slower workload keep an hour of faults, and the lake it
		// leaves, within what one machine reconciles in minutes.
		killMax: 1500 * time.Millisecond, gapMax: 600 * time.Millisecond, pace: 60 * time.Millisecond}
}

// TestStreamingFaults runs the random workload while connectd streams it to S3 and to
// a file:// lake, and injects every kind of fault at random moments; then it catches
// up with `connectd sync` and checks both lakes change by change.
func TestStreamingFaults(t *testing.T) {
	s := seed()
	t.Logf("seed %d (rerun with -seed %d or FAULT_SEED=%d)", s, s, s)
	rng := rand.New(rand.NewSource(s))
	p := shortPlan()
	diskSize := "256m"
	if long() {
		p = longPlan(killCount(1000))
		diskSize = "4g"
	} else if k := killCount(0); k > 0 {
		p.killsRandom, p.killsAfterFlush, p.killsDuringUpload = k/2, k/4, k-k/2-k/4
	}
	e := newPGEnv(t, "stream", rng, diskSize, func(e *env) {
		ctx := context.Background()
		for _, l := range []load{{"fault.accounts", 2000}, {"fault.events", 2000}, {"fault.scratch", 50}} {
			if err := e.m.preload(ctx, e.conn, l.table, l.rows); err != nil {
				t.Fatal(err)
			}
		}
	})
	e.d.start(t)
	e.waitSnapshot(10 * time.Minute)

	w, err := newWorkload(context.Background(), e.dsn, rng.Int63(), e.m)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	w.pace = p.pace
	w.start()
	stopped := false
	defer func() {
		if !stopped {
			w.stop()
		}
	}()

	var faults []func()
	add := func(n int, f func()) {
		for i := 0; i < n; i++ {
			faults = append(faults, f)
		}
	}
	add(p.killsRandom, func() { e.killAfter(p.killMax) })
	add(p.killsAfterFlush, e.killAfterFlush)
	add(p.killsDuringUpload, e.killDuringUpload)
	add(p.walsender, e.terminateWalsender)
	add(p.pgRestarts, func() { e.restartPostgres(rng.Intn(2) == 0) })
	add(p.s3Pauses-1, func() { e.pauseS3(p.s3Pause, false, 0) })
	add(p.diskFulls, func() { e.fillDisk(p.diskHold) })
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	// The backpressure check comes early, while the tables are small; the huge
	// transaction a third of the way in, so that kills land while it streams.
	faults = append([]func(){func() { e.pauseS3(p.s3Pause, true, p.burst) }}, faults...)
	big := len(faults) / 3
	faults = append(faults[:big], append([]func(){func() {
		t.Logf("the workload commits one transaction of %d rows", p.bigTxn)
		w.bigReq <- p.bigTxn
		go func() { <-w.bigDone }()
	}}, faults[big:]...)...)

	e.runFaults(w, faults, p.gapMax)
	stopWorkload(t, w, &stopped)
	e.finish()
}

// TestSnapshotFaults kills connectd again and again during the initial snapshot of a
// table of 100k+ rows; the snapshot must resume, so every row is in each lake once.
func TestSnapshotFaults(t *testing.T) {
	s := seed()
	t.Logf("seed %d (rerun with -seed %d or FAULT_SEED=%d)", s, s, s)
	rng := rand.New(rand.NewSource(s))
	rows, kills := int64(200_000), 10
	if long() {
		rows, kills = 1_000_000, 100
	}
	e := newPGEnv(t, "snap", rng, "1g", func(e *env) {
		ctx := context.Background()
		for _, l := range []load{{"fault.accounts", rows}, {"fault.events", 5000}, {"fault.scratch", 100}} {
			if err := e.m.preload(ctx, e.conn, l.table, l.rows); err != nil {
				t.Fatal(err)
			}
		}
	})
	for i := 0; i < kills && !e.snapshotCommitted(); i++ {
		if i%3 == 2 {
			e.killAfterFlush()
		} else {
			e.killAfter(time.Second)
		}
	}
	t.Logf("%d kills during the snapshot", e.faults)
	e.waitSnapshot(20 * time.Minute)
	e.finish()
}
