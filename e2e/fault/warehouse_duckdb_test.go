package fault

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// The duckdb destination under faults: connectd built with it (-tags duckdb) loads the
// workload into one DuckDB file, a schema per connector (merge and append). DuckDB runs
// inside connectd, so a SIGKILL of connectd is a crash of the database too: every kill
// must leave the file at a flush boundary, its position in _connectd_offsets with it.

// killWhileLoading SIGKILLs connectd a moment after the records it hands to its
// destination move: a flush of them is loading or about to. DuckDB shows no other
// process its open transactions (nor may another process open the file), so the moment
// is chosen from connectd's metrics rather than seen on the target.
func (e *whEnv) killWhileLoading() {
	e.t.Helper()
	e.ensureRunning()
	base := -1.0
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && e.d.running() {
		v, err := e.d.metric("connectd_records_written_total", e.merge)
		if err == nil {
			if base < 0 {
				base = v
			} else if v > base {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	e.sleep(0, 300*time.Millisecond)
	e.d.kill(e.t)
	e.count("kill while loading (records handed to the destination)")
}

// killOnTargetWAL SIGKILLs connectd as soon as the DuckDB file's write-ahead log
// changes: DuckDB writes a transaction to it when it commits, and empties it when it
// checkpoints, so the kill lands while a flush commits (a torn log tail) or right after
// (the offsets store's commit in flight), or in a checkpoint.
func (e *whEnv) killOnTargetWAL() {
	e.t.Helper()
	e.ensureRunning()
	wal := e.duck + ".wal"
	state := func() string {
		fi, err := os.Stat(wal)
		if err != nil {
			return "none"
		}
		return fmt.Sprintf("%s %d", fi.ModTime(), fi.Size())
	}
	base := state()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && e.d.running() && state() == base {
		time.Sleep(time.Millisecond)
	}
	e.d.kill(e.t)
	e.count("kill as the target's WAL changes (a commit or a checkpoint)")
}

// TestWarehouseDuckDBStreamingFaults streams the random workload into a merge and an
// append table set of one DuckDB file and SIGKILLs connectd at random moments, while it
// loads (the large transaction makes large flushes) and as the file's log changes; then
// it catches up with `connectd sync` and checks both: merge equals the source row for
// row, append holds every change exactly once.
func TestWarehouseDuckDBStreamingFaults(t *testing.T) {
	e, form := newStreamingWhEnv(t, "whduck", "duckdb")
	k := form.kills
	faults := append(times(k-k/3-k/3, func() { e.killAfter(form.killMax) }), times(k/3, e.killWhileLoading)...)
	faults = append(faults, times(k/3, e.killOnTargetWAL)...)
	e.streamFaults(form, faults, e.killWhileLoading, e.killWhileLoading, e.killOnTargetWAL)
}
