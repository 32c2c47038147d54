package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/connectd/connectd/bench/internal/proc"
)

// The firenibble table: the 16-column schema Airbyte's Postgres benchmark used and
// PeerDB's published reproduction (github.com/PeerDB-io/ab-scale-testing, README.md)
// made f0 the primary key of; PeerDB, Airbyte and Wirekite quote their snapshot
// figures on it. Its VARCHARs hold 32 random alphanumeric characters there; here 32
// hex characters of md5, made by the server so that loading 10 million rows is quick.
const firenibbleDDL = `CREATE TABLE bench.firenibble (
  f0  bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
  f1  bigint, f2 bigint, f3 integer,
  f4  double precision, f5 double precision, f6 double precision, f7 double precision,
  f8  varchar, f9 varchar,
  f10 date, f11 date, f12 date,
  f13 varchar, f14 varchar, f15 varchar
)`

const firenibbleCols = "f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15"

// firenibbleRow makes the 15 generated columns of row i, random as in the original
// (dates anywhere in years 1..9999).
const firenibbleRow = `(random() * 9.2e18)::int8, (random() * 9.2e18)::int8, (random() * 2.1e9)::int4,
  random(), random(), random(), random(),
  md5(i::text || 'a'), md5(i::text || 'b'),
  date '0001-01-01' + (random() * 3650000)::int, date '0001-01-01' + (random() * 3650000)::int,
  date '0001-01-01' + (random() * 3650000)::int,
  md5(i::text || 'c'), md5(i::text || 'd'), md5(i::text || 'e')`

// fireResult is the firenibble phase: COPY binary of the table into a discarding
// reader, and connectd syncs of it with several reader counts.
type fireResult struct {
	rows      int64
	tableSize int64
	loadTime  time.Duration
	copyBest  time.Duration
	copyRuns  []time.Duration
	copyBytes int64
	// CPU time of the best COPY run: the server backend's.
	copyServerCPU time.Duration
	// COPY in text format (what connectd reads and decodes), once, with its
	// backend's CPU: what the binary format saves the server.
	textCopy      time.Duration
	textServerCPU time.Duration
	textBytes     int64
	runs          []fireRun
}

type fireRun struct {
	readers   int
	connectd  procResult
	serverCPU time.Duration // every PostgreSQL process during the sync
}

// readerCounts turns "1,2,N" into reader counts, N being this machine's cores.
func readerCounts(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range splitComma(s) {
		n := runtime.NumCPU()
		if f != "N" {
			var err error
			if n, err = strconv.Atoi(f); err != nil || n < 1 {
				return nil, fmt.Errorf("-firenibble-readers %q: want positive counts or N", s)
			}
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func (b *bench) firenibblePhase(ctx context.Context) error {
	counts, err := readerCounts(b.o.fireReaders)
	if err != nil {
		return err
	}
	r := &fireResult{rows: b.o.fireRows}
	b.fire = r
	logf("firenibble: loading bench.firenibble with %d rows", r.rows)
	if _, err := b.exec(ctx, "CREATE SCHEMA IF NOT EXISTS bench"); err != nil {
		return err
	}
	if _, err := b.exec(ctx, firenibbleDDL); err != nil {
		return err
	}
	t0 := time.Now()
	const chunk = 1_000_000
	for lo := int64(1); lo <= r.rows; lo += chunk {
		hi := min(lo+chunk-1, r.rows)
		if _, err := b.exec(ctx, "INSERT INTO bench.firenibble (f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15) SELECT "+firenibbleRow+" FROM generate_series($1::int8, $2::int8) AS i", lo, hi); err != nil {
			return err
		}
		logf("  loaded rows %d..%d", lo, hi)
	}
	if _, err := b.exec(ctx, "VACUUM ANALYZE bench.firenibble"); err != nil {
		return err
	}
	r.loadTime = time.Since(t0)
	if r.tableSize, err = b.queryInt(ctx, "SELECT pg_table_size('bench.firenibble')"); err != nil {
		return err
	}

	// The limit: the server producing the rows in COPY binary, the cheapest form it
	// has, read by a client that throws them away. Twice; the first warms the cache.
	backend, err := b.queryInt(ctx, "SELECT pg_backend_pid()")
	if err != nil {
		return err
	}
	for i := 0; i < 2; i++ {
		srv0, _ := proc.CPU(int(backend))
		var cw countWriter
		t := time.Now()
		tag, err := b.conn.PgConn().CopyTo(ctx, &cw, "COPY (SELECT "+firenibbleCols+" FROM bench.firenibble) TO STDOUT (FORMAT binary)")
		if err != nil {
			return fmt.Errorf("COPY bench.firenibble TO STDOUT (FORMAT binary): %w", err)
		}
		d := time.Since(t)
		srv1, _ := proc.CPU(int(backend))
		if tag.RowsAffected() != r.rows {
			return fmt.Errorf("COPY returned %d rows, want %d", tag.RowsAffected(), r.rows)
		}
		r.copyRuns = append(r.copyRuns, d)
		logf("  COPY binary run %d: %s (%.0f rows/s)", i+1, d.Round(time.Millisecond), perSec(r.rows, d))
		if r.copyBest == 0 || d < r.copyBest {
			r.copyBest, r.copyServerCPU, r.copyBytes = d, srv1-srv0, cw.n
		}
	}

	srv0, _ := proc.CPU(int(backend))
	var cw countWriter
	t := time.Now()
	if _, err := b.conn.PgConn().CopyTo(ctx, &cw, "COPY (SELECT "+firenibbleCols+" FROM bench.firenibble) TO STDOUT"); err != nil {
		return fmt.Errorf("COPY bench.firenibble TO STDOUT: %w", err)
	}
	r.textCopy = time.Since(t)
	srv1, _ := proc.CPU(int(backend))
	r.textServerCPU, r.textBytes = srv1-srv0, cw.n
	logf("  COPY text: %s (%.0f rows/s)", r.textCopy.Round(time.Millisecond), perSec(r.rows, r.textCopy))

	for _, n := range counts {
		logf("firenibble: connectd sync with snapshot_parallel %d", n)
		srv0, before, err := serverCPU(ctx, b.pg, nil)
		if err != nil {
			return err
		}
		res, err := b.syncConnectd(ctx, connectorConfig{
			name: fmt.Sprintf("fire%d", n), table: "bench.firenibble", snapshot: "initial_only",
			extra: fmt.Sprintf("snapshot_parallel: %d", n),
		})
		if err != nil {
			return err
		}
		srv1, _, err := serverCPU(ctx, b.pg, before)
		if err != nil {
			return err
		}
		if res.lakeRows != r.rows {
			return fmt.Errorf("lake holds %d rows, the table %d", res.lakeRows, r.rows)
		}
		logf("  %d readers: %s wall (%.0f rows/s), peak RSS %.0f MiB", n, res.wall.Round(time.Millisecond), perSec(r.rows, res.wall), res.rssMiB())
		r.runs = append(r.runs, fireRun{readers: n, connectd: res, serverCPU: srv1 - srv0})
	}
	_, err = b.exec(ctx, "DROP TABLE bench.firenibble")
	return err
}

// countWriter is the discarding reader of the COPY baseline; it counts the bytes.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)

// reportFire prints the firenibble phase: each reader count next to COPY binary.
func (b *bench) reportFire(w io.Writer) {
	r := b.fire
	if r == nil {
		return
	}
	mbs := func(d time.Duration) float64 { return float64(r.tableSize) / (1 << 20) / d.Seconds() }
	fmt.Fprintf(w, "\nfirenibble snapshot: %s rows, 16 columns, %.0f MiB on disk (loaded and vacuumed in %s); MB/s is table MiB on disk per second\n",
		num(r.rows), mib(r.tableSize), r.loadTime.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\twall\trows/s\tMiB/s\tratio to COPY\tpeak RSS\tCPU-s/M rows connectd\tCPU-s/M rows server\t")
	fmt.Fprintf(tw, "COPY binary to a discarding reader\t%s\t%s\t%.0f\t1.00\t\t\t%.2f (backend)\t\n",
		r.copyBest.Round(time.Millisecond), num(int64(perSec(r.rows, r.copyBest))), mbs(r.copyBest), perMillion(r.copyServerCPU, r.rows))
	fmt.Fprintf(tw, "COPY text to a discarding reader\t%s\t%s\t%.0f\t%.2f\t\t\t%.2f (backend)\t\n",
		r.textCopy.Round(time.Millisecond), num(int64(perSec(r.rows, r.textCopy))), mbs(r.textCopy), r.copyBest.Seconds()/r.textCopy.Seconds(), perMillion(r.textServerCPU, r.rows))
	for _, x := range r.runs {
		c := x.connectd
		fmt.Fprintf(tw, "connectd sync, %d readers\t%s\t%s\t%.0f\t%.2f\t%.0f MiB\t%.2f\t%.2f (all processes)\t\n",
			x.readers, c.wall.Round(time.Millisecond), num(int64(perSec(r.rows, c.wall))), mbs(c.wall),
			r.copyBest.Seconds()/c.wall.Seconds(), c.rssMiB(), perMillion(c.cpuUser+c.cpuSys, r.rows), perMillion(x.serverCPU, r.rows))
	}
	tw.Flush()
	var parts []string
	for _, x := range r.runs {
		parts = append(parts, fmt.Sprintf("%d readers: source's snapshot %s, lake %d files %.0f MiB", x.readers,
			x.connectd.snapshotElapsed.Round(time.Millisecond), x.connectd.files, mib(x.connectd.lakeSize)))
	}
	fmt.Fprintf(w, "  COPY binary: best of %s, %.0f MiB sent; COPY text: %.0f MiB sent; %s\n", durations(r.copyRuns), mib(r.copyBytes), mib(r.textBytes), strings.Join(parts, "; "))
}
