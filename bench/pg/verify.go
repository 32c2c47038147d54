package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/bench/internal/proc"
	"github.com/connectd/connectd/internal/testenv"
)

// verifyResult is one `connectd verify` of the snapshot table.
type verifyResult struct {
	name      string  // full | sample 5% | full, digest | sample 5%, digest
	sample    float64 // percent of the keys compared
	method    string  // --method, and the report's
	proc      procResult
	serverCPU time.Duration // every PostgreSQL process's CPU during the run
	// From the --json report.
	sourceRows, destRows int64
	ranges               int
	tableElapsed         time.Duration // verify's own figure for the table's comparison
	profile              string        // the CPU profile, when -verify-profile
}

// verifyPhase runs `connectd verify` on the connector the snapshot phase synced, over
// every key and over a 5% sample, with each method (the source's rows read here, or
// the source's server digesting key ranges), while the snapshot table is still there.
// The lake is already at the verify point (the sync ended there, and nothing has
// written to the table since), so verify only reads both sides and compares.
func (b *bench) verifyPhase(ctx context.Context) error {
	c := connectorConfig{name: "snap", table: "bench.snap", snapshot: "initial_only"}
	for _, run := range []struct {
		name   string
		sample float64
		method string
	}{{"full", 100, "rows"}, {"sample 5%", 5, "rows"}, {"full, digest", 100, "digest"}, {"sample 5%, digest", 5, "digest"}} {
		logf("verify: connectd verify (%s)", run.name)
		r, err := b.runVerify(ctx, c, run.name, run.sample, run.method)
		if err != nil {
			return err
		}
		logf("  connectd verify: %s wall, CPU user %s sys %s, PostgreSQL CPU %s, peak RSS %.0f MiB, %d source rows, %d lake rows, %d ranges",
			r.proc.wall.Round(time.Millisecond), r.proc.cpuUser.Round(time.Millisecond), r.proc.cpuSys.Round(time.Millisecond),
			r.serverCPU.Round(time.Millisecond), r.proc.rssMiB(), r.sourceRows, r.destRows, r.ranges)
		b.verify = append(b.verify, r)
	}
	return nil
}

// runVerify runs `connectd verify --json --sample PCT` to completion and measures it;
// a report that is not equal, or that compared another number of rows than the
// table holds, fails the benchmark.
func (b *bench) runVerify(ctx context.Context, c connectorConfig, name string, sample float64, method string) (*verifyResult, error) {
	r := &verifyResult{name: name, sample: sample, method: method}
	dir := filepath.Join(b.tmp, c.name)
	tag := "verify-" + strings.NewReplacer(" ", "", "%", "", ",", "-").Replace(name)
	out, err := os.Create(filepath.Join(dir, tag+".json"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	args := []string{"--json", "--sample", strconv.FormatFloat(sample, 'f', -1, 64)}
	args = append(args, "--method", method)
	if b.o.verifyRangeRows > 0 {
		args = append(args, "--range-rows", strconv.Itoa(b.o.verifyRangeRows))
	}
	if b.o.verifyProfile {
		r.profile = filepath.Join(dir, tag+".pprof")
		args = append(args, "--cpuprofile", r.profile)
	}

	srv0, before, err := serverCPU(ctx, b.pg, nil)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cmd, logPath, err := b.startConnectdOut(ctx, c, "verify", tag, out, args...)
	if err != nil {
		return nil, err
	}
	werr := cmd.Wait()
	end := time.Now()
	srv1, _, err := serverCPU(ctx, b.pg, before)
	if err != nil {
		return nil, err
	}
	r.proc = usage(cmd)
	r.proc.wall = end.Sub(start)
	r.proc.logPath = logPath
	r.serverCPU = srv1 - srv0
	if werr != nil {
		return r, fmt.Errorf("connectd verify %s (%s): %w\nlog tail:\n%s\nreport: %s", c.name, name, werr,
			testenv.FileTail(logPath, 30), testenv.FileTail(out.Name(), 30))
	}

	data, err := os.ReadFile(out.Name())
	if err != nil {
		return r, err
	}
	var rep struct {
		Equal      bool `json:"equal"`
		Connectors []struct {
			Tables []struct {
				SourceRows     int64   `json:"source_rows"`
				DestRows       int64   `json:"destination_rows"`
				Ranges         int     `json:"ranges"`
				ElapsedSeconds float64 `json:"elapsed_seconds"`
				Method         string  `json:"method"`
				MethodNote     string  `json:"method_note"`
			} `json:"tables"`
		} `json:"connectors"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return r, fmt.Errorf("connectd verify --json printed %q: %w", data, err)
	}
	if !rep.Equal || len(rep.Connectors) != 1 || len(rep.Connectors[0].Tables) != 1 {
		return r, fmt.Errorf("connectd verify (%s): want one equal table, got %s", name, data)
	}
	t := rep.Connectors[0].Tables[0]
	r.sourceRows, r.destRows, r.ranges = t.SourceRows, t.DestRows, t.Ranges
	if t.Method != method {
		return r, fmt.Errorf("connectd verify (%s): method %q (%s), want %q", name, t.Method, t.MethodNote, method)
	}
	r.tableElapsed = time.Duration(t.ElapsedSeconds * float64(time.Second))
	if sample == 100 && (r.sourceRows != b.snap.rows || r.destRows != b.snap.rows) {
		return r, fmt.Errorf("connectd verify compared %d source rows and %d lake rows, the table holds %d", r.sourceRows, r.destRows, b.snap.rows)
	}
	return r, nil
}

// serverCPU is the user+system CPU time the PostgreSQL server has spent so far: the
// postmaster's own, that of its children alive now, and that of the children it has
// waited for (cutime and cstime of the postmaster). The difference of two readings is
// what the server spent between them, on every backend and walsender a client used,
// including ones that started and ended in between, whose pids cannot be known.
//
// A backend goes on after its client has gone, and while it exits its time is in
// neither place (readings right after connectd's exit missed whole backends), so the
// second reading waits, for up to 10 s, until the children that were not there at the
// first (given as before) are reaped and two readings 50 ms apart agree.
func serverCPU(ctx context.Context, pg *testenv.Postgres, before map[int]bool) (time.Duration, map[int]bool, error) {
	deadline := time.Now().Add(10 * time.Second)
	last := time.Duration(-1)
	for {
		cpu, children, err := serverCPUOnce(pg)
		if err != nil || before == nil {
			return cpu, children, err
		}
		newer := 0
		for pid := range children {
			if !before[pid] {
				newer++
			}
		}
		if (newer == 0 && cpu == last) || time.Now().After(deadline) {
			return cpu, children, nil
		}
		last = cpu
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func serverCPUOnce(pg *testenv.Postgres) (time.Duration, map[int]bool, error) {
	pidFile := filepath.Join(pg.Dir, "data", "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, nil, fmt.Errorf("the server's CPU: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	postmaster, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, nil, fmt.Errorf("the server's CPU: %s: %w", pidFile, err)
	}
	st, err := proc.Read(postmaster)
	if err != nil {
		return 0, nil, fmt.Errorf("the server's CPU: %w", err)
	}
	total := st.UTime + st.STime + st.CUTime + st.CSTime
	children := map[int]bool{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, nil, fmt.Errorf("the server's CPU: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if cs, err := proc.Read(pid); err == nil && cs.PPID == postmaster {
			total += cs.UTime + cs.STime
			children[pid] = true
		}
	}
	return proc.Ticks(total), children, nil
}
