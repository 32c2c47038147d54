package fault

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTwoProcessFaults runs a second connectd on the same config while the first
// streams the workload, as a cron sync, a second container or a restarted pod whose
// old process still drains would: the second is started and killed again and again,
// the first is killed while the second waits (so the second takes the connectors
// over, and is killed in turn), and syncs are started beside the daemon. The lease
// must keep the two from interleaving: both lakes end with every change once.
func TestTwoProcessFaults(t *testing.T) {
	s := seed()
	t.Logf("seed %d (rerun with -seed %d or FAULT_SEED=%d)", s, s, s)
	rng := rand.New(rand.NewSource(s))
	rounds := 8
	if long() {
		rounds = 100
	}
	e := newPGEnv(t, "two", rng, "256m", func(e *env) {
		ctx := context.Background()
		for _, l := range []load{{"fault.accounts", 1000}, {"fault.events", 1000}, {"fault.scratch", 50}} {
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
	w.pace = 2 * time.Millisecond
	w.start()
	stopped := false
	defer func() {
		if !stopped {
			w.stop()
		}
	}()
	second := e.secondDaemon()

	for i := 0; i < rounds && !t.Failed(); i++ {
		if err := w.failed(); err != nil {
			t.Fatalf("workload: %v", err)
		}
		e.ensureRunning()
		switch rng.Intn(3) {
		case 0:
			e.secondKilledWhileWaiting(second)
		case 1:
			e.firstKilledSecondTakesOver(second)
		case 2:
			e.syncBesideTheDaemon()
		}
		t.Logf("round %d/%d: %s (%d faults), workload %d transactions, %d records", i+1, rounds, e.last, e.faults, w.txns.Load(), w.committed.Load())
		e.sleep(100*time.Millisecond, 1500*time.Millisecond)
	}
	if second.running() {
		second.kill(t)
	}
	stopped = true
	if err := w.stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload: %d transactions, %d records committed", w.txns.Load(), w.committed.Load())
	e.finish()
}

// secondDaemon is a `connectd run` on a copy of the config that differs only in its
// status address (two processes cannot listen on one), logging to a file of its own.
func (e *env) secondDaemon() *daemon {
	e.t.Helper()
	data, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	listen := freeAddr(e.t)
	cfg := strings.Replace(string(data), "listen: "+e.d.listen, "listen: "+listen, 1)
	if cfg == string(data) {
		e.t.Fatalf("no listen: %s in %s", e.d.listen, e.config)
	}
	path := filepath.Join(filepath.Dir(e.config), "second.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		e.t.Fatal(err)
	}
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("connectd-fault-two-second-%d.log", os.Getpid()))
	_ = os.Remove(logPath)
	d := newDaemon(e.t, path, listen, logPath)
	e.t.Cleanup(func() {
		if !e.t.Failed() && os.Getenv("FAULT_KEEP_LOG") == "" {
			os.Remove(logPath)
		} else {
			e.t.Logf("the second connectd's log (every run): %s", logPath)
		}
	})
	return d
}

// states reads the connectors' states from a daemon's status API ("" while it starts).
func states(d *daemon) map[string]string {
	all, err := d.connectors()
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, c := range all {
		out[c.Name] = c.State
	}
	return out
}

// waitStates waits until every connector of d is in state want.
func (e *env) waitStates(d *daemon, who, want string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := states(d)
		if st[e.s3Conn] == want && st[e.fileCon] == want {
			return
		}
		if !d.running() {
			e.t.Fatalf("the %s connectd exited (%v) while its connectors should become %s; log tail:\n%s", who, d.err(), want, d.logTail(60))
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the %s connectd's connectors are %v after %s, want all %s; log tail:\n%s", who, st, timeout, want, d.logTail(60))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// secondKilledWhileWaiting starts a second daemon, lets it wait for the first
// (naming it), and kills it.
func (e *env) secondKilledWhileWaiting(second *daemon) {
	e.t.Helper()
	// The first must hold the connectors before the second starts, or the second
	// may win them (which is fine, but not this fault).
	e.waitStates(e.d, "first", "running", time.Minute)
	second.start(e.t)
	e.waitStates(second, "second", "waiting", time.Minute)
	e.sleep(0, 2*time.Second)
	if tail := second.logTail(40); !strings.Contains(tail, fmt.Sprintf("pid %d since", e.d.pid())) {
		e.t.Errorf("the waiting connectd does not name the holder (pid %d); log tail:\n%s", e.d.pid(), tail)
	}
	second.kill(e.t)
	e.count("second connectd killed while waiting")
}

// firstKilledSecondTakesOver starts a second daemon, kills the first while the
// second waits, lets the second run the connectors, then kills it too (at a random
// moment, often mid-flush); the first is restarted by the next round.
func (e *env) firstKilledSecondTakesOver(second *daemon) {
	e.t.Helper()
	// The first must hold the connectors before the second starts, or the second
	// may win them (which is fine, but not this fault).
	e.waitStates(e.d, "first", "running", time.Minute)
	second.start(e.t)
	e.waitStates(second, "second", "waiting", time.Minute)
	e.sleep(0, time.Second)
	e.d.kill(e.t)
	e.count("first connectd killed while a second waits")
	e.waitStates(second, "second", "running", time.Minute)
	e.sleep(0, 3*time.Second)
	second.kill(e.t)
	e.count("second connectd killed after taking over")
}

// syncBesideTheDaemon runs `connectd sync` on the daemon's config: it must exit
// non-zero at once, naming the daemon, and change nothing.
func (e *env) syncBesideTheDaemon() {
	e.t.Helper()
	e.waitStates(e.d, "first", "running", time.Minute)
	code, out := runCmd(e.t, 2*time.Minute, "sync", "-c", e.config)
	if code == 0 || !strings.Contains(out, "is held by host") || !strings.Contains(out, fmt.Sprintf("pid %d since", e.d.pid())) {
		e.t.Fatalf("connectd sync beside the daemon (pid %d): exit %d, want non-zero naming it:\n%s", e.d.pid(), code, tailString(out, 40))
	}
	e.count("sync beside the daemon refused")
}
