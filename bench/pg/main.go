// Command pg is connectd's PostgreSQL benchmark (docs/benchmarks.md). In one
// run on one machine it starts a throwaway PostgreSQL, builds the real connectd binary
// and measures it against the physical limits of the same server:
//
//   - snapshot: connectd `sync` (snapshot: initial_only) of a table into a file:// lake,
//     next to `COPY (SELECT * FROM t) TO STDOUT` of the same table into io.Discard;
//   - verify: `connectd verify` of that table against that lake, every key and a 5%
//     sample, next to the snapshot's time and CPU;
//   - firenibble: connectd `sync` of the 16-column firenibble table with 1, 2 and N
//     snapshot readers, next to `COPY (SELECT ...) TO STDOUT (FORMAT binary)` of it;
//   - streaming: connectd `sync` (snapshot: never) draining a slot that holds a mixed
//     insert/update/delete workload, next to pg_recvlogical draining the same changes
//     (pgoutput, protocol 1) from a second slot into /dev/null;
//   - oltp: the same for a workload of mostly one-row transactions from several
//     concurrent clients, where a cost per transaction shows;
//   - one huge transaction streamed through connectd, with its peak RSS;
//   - the idle-source retained WAL, when the postgres source has heartbeats.
//
// Each connectd figure is the wall time of the whole `connectd sync` process (start to
// exit: connect, read, write, flush, commit), and its peak RSS comes from wait4's
// rusage. Run it with `make bench` (bench/run.sh) from the repository root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/connectd/connectd/internal/testenv"
)

type options struct {
	rows    int64  // snapshot table size
	changes int64  // streaming workload size (row changes)
	clients int    // concurrent clients of the oltp workload
	bigtx   int64  // rows in the one huge transaction
	preload int64  // rows in the streaming table before the slots exist
	keep    bool   // keep the temp dir (lakes, logs) for inspection
	wrap    string // command prefix for each connectd sync, {dir} is the connector's directory
	idle    time.Duration
	skip    map[string]bool
	bin     string // a prebuilt connectd; empty: go build ./cmd/connectd
	fence   bool   // flush the WAL with a synchronous commit before each consumer
	// connectdFirst drains with connectd before pg_recvlogical.
	connectdFirst bool
	// verifyProfile writes a CPU profile of each connectd verify into its directory.
	verifyProfile bool
	// verifyRangeRows, when > 0, is verify's --range-rows (what bounds its memory).
	verifyRangeRows int
	fireRows        int64  // rows of the firenibble table
	fireReaders     string // snapshot_parallel values for the firenibble syncs, N: cores
}

func main() {
	var o options
	var skip string
	flag.Int64Var(&o.rows, "rows", 5_000_000, "rows in the snapshot table")
	flag.Int64Var(&o.changes, "changes", 1_000_000, "row changes in the streaming workload")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients writing the oltp workload")
	flag.Int64Var(&o.bigtx, "bigtx", 5_000_000, "rows inserted by the one huge transaction")
	flag.Int64Var(&o.preload, "preload", 0, "rows in the streaming table before the workload (default changes/4)")
	flag.DurationVar(&o.idle, "idle", 3*time.Minute, "how long the idle-source heartbeat phase writes to another database")
	flag.Int64Var(&o.fireRows, "firenibble-rows", 10_000_000, "rows in the firenibble table (the parallel snapshot phase)")
	flag.StringVar(&o.fireReaders, "firenibble-readers", "1,2,N", "snapshot_parallel values of the firenibble syncs; N is this machine's cores")
	flag.StringVar(&skip, "skip", "", "comma-separated phases to skip: snapshot,verify,firenibble,stream,oltp,bigtx,idle (verify needs snapshot)")
	flag.BoolVar(&o.fence, "fence", true, "flush the WAL with a synchronous commit before each consumer (false shows the sync tail wait, see docs/benchmarks.md)")
	flag.BoolVar(&o.connectdFirst, "connectd-first", false, "drain each streaming phase with connectd first, then pg_recvlogical (default: pg_recvlogical first)")
	flag.StringVar(&o.bin, "bin", "", "use this connectd binary instead of building ./cmd/connectd from the working tree")
	flag.BoolVar(&o.verifyProfile, "verify-profile", false, "write a CPU profile of each connectd verify (verify-*.pprof in the connector's directory; implies -keep)")
	flag.IntVar(&o.verifyRangeRows, "verify-range-rows", 0, "connectd verify --range-rows (0: verify's default)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (lakes, connectd logs) and print its path")
	flag.StringVar(&o.wrap, "wrap", "", "run each connectd sync under this command, {dir} being the connector's directory, e.g. \"perf record -g -o {dir}/perf.data --\" (implies -keep; RSS figures are then the wrapper's)")
	flag.Parse()
	o.keep = o.keep || o.wrap != "" || o.verifyProfile
	o.skip = map[string]bool{}
	for _, s := range splitComma(skip) {
		o.skip[s] = true
	}
	if o.preload <= 0 {
		o.preload = max(o.changes/4, 10_000)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	started := time.Now()
	facts := machineFacts()
	tmp, err := os.MkdirTemp("", "connectd-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	bin := o.bin
	if bin == "" {
		logf("building connectd")
		bin = filepath.Join(tmp, "connectd")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/connectd")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/connectd (run the benchmark from the repository root): %w", err)
		}
		facts.commit = workingTreeCommit()
	} else {
		facts.commit = "prebuilt " + bin
		if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
			facts.commit += " (" + strings.TrimSpace(string(out)) + ")"
		}
	}

	logf("starting PostgreSQL")
	pg, err := testenv.StartPostgres(ctx, testenv.PostgresOptions{ExtraConf: map[string]string{
		"shared_buffers":       "1GB",
		"max_wal_size":         "8GB",
		"checkpoint_timeout":   "30min",
		"maintenance_work_mem": "256MB",
		"work_mem":             "64MB",
		"wal_sender_timeout":   "5min",
	}})
	if err != nil {
		return err
	}
	defer pg.Stop()
	b := &bench{o: o, pg: pg, bin: bin, tmp: tmp, facts: facts}
	if err := b.connect(ctx); err != nil {
		return err
	}
	defer b.conn.Close(context.Background())
	if b.facts.pgVersion, err = b.queryString(ctx, "SELECT version()"); err != nil {
		return err
	}

	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"snapshot", b.snapshotPhase},
		{"firenibble", b.firenibblePhase},
		{"stream", b.streamPhase},
		{"oltp", b.oltpPhase},
		{"bigtx", b.bigTxPhase},
		{"idle", b.idlePhase},
	}
	for _, p := range phases {
		if o.skip[p.name] {
			b.notes = append(b.notes, fmt.Sprintf("%s: skipped (-skip)", p.name))
			continue
		}
		if err := p.fn(ctx); err != nil {
			return fmt.Errorf("%s phase: %w", p.name, err)
		}
	}
	b.facts.loadEnd = loadAvg()
	b.report(os.Stdout, time.Since(started))
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
