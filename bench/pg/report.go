package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// facts describe the machine and build the figures were taken on.
type facts struct {
	date      time.Time
	cpus      int
	cpuModel  string
	memTotal  string
	goVersion string
	pgVersion string
	commit    string
	loadStart string
	loadEnd   string
}

func machineFacts() facts {
	f := facts{date: time.Now().UTC(), cpus: runtime.NumCPU(), goVersion: runtime.Version(), loadStart: loadAvg()}
	f.cpuModel = procField("/proc/cpuinfo", "model name")
	f.memTotal = procField("/proc/meminfo", "MemTotal")
	return f
}

// workingTreeCommit names what a binary built from the working tree holds.
func workingTreeCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", "cmd", "sources", "destinations", "pipeline", "record", "config", "connector", "offsets", "status", "plugins").Output(); err == nil && len(st) > 0 {
		c += " + uncommitted changes"
	}
	return c
}

func procField(path, key string) string {
	file, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (b *bench) report(w io.Writer, total time.Duration) {
	f := b.facts
	fmt.Fprintf(w, "\nconnectd PostgreSQL benchmark, %s (total %s)\n", f.date.Format("2006-01-02 15:04 UTC"), total.Round(time.Second))
	fmt.Fprintf(w, "machine:    %d CPUs (%s), %s RAM, load average at start %s, at end %s\n", f.cpus, f.cpuModel, f.memTotal, f.loadStart, f.loadEnd)
	fmt.Fprintf(w, "postgres:   %s\n", f.pgVersion)
	fmt.Fprintf(w, "go:         %s; connectd built from %s\n", f.goVersion, f.commit)
	fmt.Fprintf(w, "connectd:   `connectd sync`, parquet to file://, flush {rows: 1000000, bytes: 128MiB, interval: 60s}, zstd;\n")
	fmt.Fprintf(w, "            figures are the wall time of the whole process, peak RSS from wait4 rusage\n\n")

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tconnectd\tlimit\tlimit is\tratio\tconnectd peak RSS\t")
	if s := b.snap; s != nil {
		fmt.Fprintf(tw, "snapshot, %s rows\t%s rows/s\t%s rows/s\tCOPY TO STDOUT\t%.2f\t%.0f MiB\t\n",
			num(s.rows), num(int64(perSec(s.rows, s.connectd.wall))), num(int64(perSec(s.rows, s.copyBest))),
			perSec(s.rows, s.connectd.wall)/perSec(s.rows, s.copyBest), s.connectd.rssMiB())
	}
	if s := b.stream; s != nil {
		fmt.Fprintf(tw, "streaming, %s changes\t%s changes/s\t%s changes/s\tpg_recvlogical\t%.2f\t%.0f MiB\t\n",
			num(s.changes), num(int64(perSec(s.changes, s.connectd.wall))), num(int64(perSec(s.changes, s.recvlogical))),
			perSec(s.changes, s.connectd.wall)/perSec(s.changes, s.recvlogical), s.connectd.rssMiB())
	}
	if s := b.oltp; s != nil {
		fmt.Fprintf(tw, "oltp, %s changes\t%s changes/s\t%s changes/s\tpg_recvlogical\t%.2f\t%.0f MiB\t\n",
			num(s.changes), num(int64(perSec(s.changes, s.connectd.wall))), num(int64(perSec(s.changes, s.recvlogical))),
			perSec(s.changes, s.connectd.wall)/perSec(s.changes, s.recvlogical), s.connectd.rssMiB())
	}
	if s := b.bigtx; s != nil {
		fmt.Fprintf(tw, "one transaction, %s inserts\t%s changes/s\t%s changes/s\tpg_recvlogical\t%.2f\t%.0f MiB\t\n",
			num(s.changes), num(int64(perSec(s.changes, s.connectd.wall))), num(int64(perSec(s.changes, s.recvlogical))),
			perSec(s.changes, s.connectd.wall)/perSec(s.changes, s.recvlogical), s.connectd.rssMiB())
	}
	tw.Flush()

	fmt.Fprintln(w, "\ndetails:")
	if s := b.snap; s != nil {
		c := s.connectd
		fmt.Fprintf(w, "  snapshot:  table %s (%.0f MiB on disk, loaded and vacuumed in %s)\n", num(s.rows), mib(s.tableSize), s.loadTime.Round(time.Second))
		fmt.Fprintf(w, "             COPY TO STDOUT into io.Discard: %s (best of %s); CPU of that run: server backend %s, client (pgx) %s\n",
			s.copyBest.Round(time.Millisecond), durations(s.copyRuns), s.copyServerCPU.Round(time.Millisecond), s.copyClientCPU.Round(time.Millisecond))
		fmt.Fprintf(w, "             connectd sync: %s wall, of which the source's snapshot (log \"snapshot complete\") %s; CPU user %s sys %s\n",
			c.wall.Round(time.Millisecond), c.snapshotElapsed.Round(time.Millisecond), c.cpuUser.Round(time.Millisecond), c.cpuSys.Round(time.Millisecond))
		fmt.Fprintf(w, "             lake: %s rows in %d files, %.0f MiB; rows/s over the snapshot part only: %s\n",
			num(c.lakeRows), c.files, mib(c.lakeSize), num(int64(perSec(s.rows, c.snapshotElapsed))))
		fmt.Fprintf(w, "             CPU per million rows: connectd %.2f s, COPY server backend %.2f s, COPY client %.2f s\n",
			perMillion(c.cpuUser+c.cpuSys, s.rows), perMillion(s.copyServerCPU, s.rows), perMillion(s.copyClientCPU, s.rows))
		if len(b.verify) > 0 {
			b.reportVerify(w, s)
		}
	}
	for _, x := range []struct {
		name string
		s    *streamResult
	}{{"streaming", b.stream}, {"oltp", b.oltp}, {"bigtx", b.bigtx}} {
		s := x.s
		if s == nil {
			continue
		}
		c := s.connectd
		single := ""
		if s.singleTxns > 0 {
			single = fmt.Sprintf(" (%s of one row)", num(s.singleTxns))
		}
		fmt.Fprintf(w, "  %-10s %s changes (%s inserts, %s updates, %s deletes) in %s transactions%s, %.0f MiB of WAL, made in %s\n", x.name+":",
			num(s.changes), num(s.inserts), num(s.upd), num(s.del), num(s.txns), single, mib(s.walBytes), s.workload.Round(time.Millisecond))
		fmt.Fprintf(w, "             pg_recvlogical: %s, CPU user %s sys %s; connectd sync: %s wall (streaming part %s), CPU user %s sys %s\n",
			s.recvlogical.Round(time.Millisecond), s.recvUser.Round(time.Millisecond), s.recvSys.Round(time.Millisecond),
			c.wall.Round(time.Millisecond), c.streamElapsed.Round(time.Millisecond),
			c.cpuUser.Round(time.Millisecond), c.cpuSys.Round(time.Millisecond))
		fmt.Fprintf(w, "             lake: %s records in %d files, %.0f MiB\n", num(c.lakeRows), c.files, mib(c.lakeSize))
		fmt.Fprintf(w, "             CPU per million changes: connectd %.2f s, pg_recvlogical %.2f s; walsender serving connectd %.2f s, serving pg_recvlogical %.2f s\n",
			perMillion(c.cpuUser+c.cpuSys, s.changes), perMillion(s.recvUser+s.recvSys, s.changes), perMillion(s.connectdSenderCPU, s.changes), perMillion(s.recvSenderCPU, s.changes))
	}
	if r := b.idle; r != nil {
		fmt.Fprintf(w, "  idle:      %s of writes to another database (%.0f MiB of WAL) while two `connectd run` watched idle tables\n", r.window, mib(r.walWritten))
		fmt.Fprintf(w, "             heartbeat %s: slot retained WAL max %.1f MiB, at the end %.1f MiB (confirmed lag %.1f MiB); peak RSS %.0f MiB\n",
			r.heartbeat, mib(r.with.maxRetained), mib(r.with.finalRetained), mib(r.with.finalLag), r.with.rss)
		fmt.Fprintf(w, "             no heartbeat:  slot retained WAL max %.1f MiB, at the end %.1f MiB (confirmed lag %.1f MiB); peak RSS %.0f MiB\n",
			mib(r.without.maxRetained), mib(r.without.finalRetained), mib(r.without.finalLag), r.without.rss)
	}
	if r := b.idle; r != nil && len(r.series) > 0 {
		var sb strings.Builder
		for _, p := range r.series {
			fmt.Fprintf(&sb, " %s:%.0f/%.0f", p.at, p.with, p.out)
		}
		fmt.Fprintf(w, "             retained MiB over time (heartbeat/none):%s\n", sb.String())
	}
	b.reportFire(w)
	for _, n := range b.notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// reportVerify puts each connectd verify next to the sync that made the lake: time
// ratio, CPU per million rows on both sides, peak RSS.
func (b *bench) reportVerify(w io.Writer, s *snapResult) {
	c := s.connectd
	fmt.Fprintf(w, "  verify:    `connectd verify --json` of the same table against the lake the sync made (PostgreSQL CPU: every server process, /proc)\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\trun\twall\ttime / sync's\tCPU-s per M rows\tPostgreSQL CPU-s per M rows\tpeak RSS\tranges\trows compared (source, lake)\t")
	fmt.Fprintf(tw, "\tconnectd sync (snapshot)\t%s\t1.00\t%.2f\t%.2f\t%.0f MiB\t\t%s, %s\t\n",
		c.wall.Round(time.Millisecond), perMillion(c.cpuUser+c.cpuSys, s.rows), perMillion(s.syncServerCPU, s.rows), c.rssMiB(), num(s.rows), num(c.lakeRows))
	for _, v := range b.verify {
		fmt.Fprintf(tw, "\tverify %s\t%s\t%.2f\t%.2f\t%.2f\t%.0f MiB\t%d\t%s, %s\t\n",
			v.name, v.proc.wall.Round(time.Millisecond), v.proc.wall.Seconds()/c.wall.Seconds(),
			perMillion(v.proc.cpuUser+v.proc.cpuSys, s.rows), perMillion(v.serverCPU, s.rows), v.proc.rssMiB(), v.ranges, num(v.sourceRows), num(v.destRows))
	}
	tw.Flush()
	for _, v := range b.verify {
		fmt.Fprintf(w, "             verify %s: CPU user %s sys %s, PostgreSQL %s; the table's comparison (report's elapsed) %s",
			v.name, v.proc.cpuUser.Round(time.Millisecond), v.proc.cpuSys.Round(time.Millisecond), v.serverCPU.Round(time.Millisecond), v.tableElapsed.Round(time.Millisecond))
		if v.profile != "" {
			fmt.Fprintf(w, "; CPU profile %s", v.profile)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "             (CPU per million rows is per row of the table for every run, the sample's included)\n")
}

func durations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.Round(time.Millisecond).String()
	}
	return strings.Join(s, ", ")
}

// num renders 1234567 as 1,234,567.
func num(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func perMillion(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return d.Seconds() * 1e6 / float64(n)
}
