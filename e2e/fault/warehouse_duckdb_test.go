package fault

import (
	"fmt"
	"os"
	"strings"
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
	e.d.waitMetricMoves("connectd_records_written_total", e.merge, 30*time.Second, 2*time.Millisecond)
	e.sleep(0, 300*time.Millisecond)
	e.d.kill(e.t)
	e.count("kill while loading (records handed to the destination)")
}

// killOnTargetWAL SIGKILLs connectd as soon as the DuckDB file's write-ahead log
// changes once connectd is loading: DuckDB writes a transaction to it as it commits,
// so the kill lands while a flush commits (a torn log tail) or right after it (the
// offsets store's commit in flight); now and then in a checkpoint, which empties the
// log. It first waits for a flush of the connector it watches: starting connectd
// replays and checkpoints the log, a change that is no flush's.
func (e *whEnv) killOnTargetWAL() {
	e.t.Helper()
	e.ensureRunning()
	conn := e.someConnector()
	e.d.waitMetricMoves("connectd_flushes_total", conn, 30*time.Second, 5*time.Millisecond)
	wal := e.duck + ".wal"
	e.d.waitChange(30*time.Second, 100*time.Microsecond, func() string {
		fi, err := os.Stat(wal)
		if err != nil {
			return "none"
		}
		return fmt.Sprintf("%s %d", fi.ModTime(), fi.Size())
	})
	e.d.kill(e.t)
	e.count("kill as the target's WAL changes (a commit, or a checkpoint)")
}

// TestWarehouseDuckDBStreamingFaults streams the random workload into a merge and an
// append table set of one DuckDB file and SIGKILLs connectd at random moments, while it
// loads (the large transaction makes large flushes) and as the file's log changes; then
// it catches up with `connectd sync` and checks both: merge equals the source row for
// row, append holds every change exactly once.
func TestWarehouseDuckDBStreamingFaults(t *testing.T) {
	e, form := newStreamingWhEnv(t, "whduck", "duckdb")
	if !long() && killCount(0) == 0 {
		form.kills = 10 // the short form's case runs about a minute
	}
	k := form.kills
	faults := append(times(k-k/3-k/3, func() { e.killAfter(form.killMax) }), times(k/3, e.killWhileLoading)...)
	faults = append(faults, times(k/3, e.killOnTargetWAL)...)
	e.streamFaults(form, faults, e.killWhileLoading, e.killWhileLoading, e.killOnTargetWAL)
	if log, err := os.ReadFile(e.d.logPath); err == nil {
		t.Logf("restarts that found the target's position ahead of the offsets store (a kill between the two commits): %d",
			strings.Count(string(log), "the destination committed past the offsets store"))
	}
}
