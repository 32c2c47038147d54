// Command mysql benchmarks the mysql source against the physical limit next to it:
// it starts a throwaway MariaDB (row binlog), loads a table, takes connectd's snapshot
// of it, writes at least -changes row changes into fresh binlog files, then decodes
// those files twice: with `mariadb-binlog --base64-output=decode-rows -v` into
// /dev/null, and with `connectd sync` into a file:// Parquet lake. It prints the
// changes/s of each, their ratio and connectd's peak RSS. Run it with
// `go run ./bench/mysql` from the repository root (see bench/run.sh).
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/connectd/connectd/internal/testenv"
)

func main() {
	rows := flag.Int64("rows", envInt("ROWS", 200000), "rows loaded (and snapshotted) before the measured changes (env ROWS)")
	changes := flag.Int64("changes", envInt("CHANGES", 1000000), "row changes written to the binlog and measured (env CHANGES)")
	stmt := flag.Int64("stmt", 1000, "rows changed per statement (one rows event group each)")
	flag.StringVar(&prebuilt, "bin", "", "use this connectd binary instead of building ./cmd/connectd")
	flag.IntVar(&clients, "clients", 8, "concurrent clients writing the oltp workload")
	skip := flag.String("skip", "", "comma-separated workloads to skip: large,oltp")
	keep := flag.Bool("keep", false, "keep the temp directory (binlogs, lake, logs)")
	flag.StringVar(&wrap, "wrap", "", `command prefix for the measured connectd sync, e.g. "perf record -g -o /tmp/connectd.perf --" (its figures then include the wrapper)`)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	for _, w := range strings.Split(*skip, ",") {
		skipped[w] = true
	}
	err := run(ctx, *rows, *changes, *stmt, *keep)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/mysql:", err)
		os.Exit(1)
	}
}

// wrap prefixes the measured connectd command (-wrap).
var wrap string

// clients is how many connections write the oltp workload (-clients); skipped
// names the workloads not measured (-skip).
var (
	clients int
	skipped = map[string]bool{}
)

// prebuilt is a connectd binary to measure instead of the working tree's (-bin).
var prebuilt string

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "bench/mysql: %s=%q is not a number; using %d\n", name, v, def)
	}
	return def
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(ctx context.Context, rows, changes, stmt int64, keep bool) error {
	tmp, err := os.MkdirTemp("", "connectd-bench-mysql-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bin := prebuilt
	if bin == "" {
		bin = filepath.Join(tmp, "connectd")
		step("go build ./cmd/connectd")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/connectd").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/connectd (run from the repository root): %w\n%s", err, out)
		}
	}
	binlogTool, err := exec.LookPath("mariadb-binlog")
	if err != nil {
		if binlogTool, err = exec.LookPath("mysqlbinlog"); err != nil {
			return errors.New("neither mariadb-binlog nor mysqlbinlog is on PATH")
		}
	}

	step("starting MariaDB (row binlog)")
	maria, err := testenv.StartMariaDB(ctx, testenv.MariaDBOptions{ExtraConf: map[string]string{
		"innodb_buffer_pool_size": "256M", "max_binlog_size": "256M",
	}})
	if err != nil {
		return err
	}
	defer maria.Stop()
	db, err := openDB(maria.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	var version string
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return err
	}

	step("loading bench.t: %d rows", rows)
	if _, err := db.ExecContext(ctx, `CREATE DATABASE bench;
CREATE TABLE bench.t (id bigint PRIMARY KEY, n int NOT NULL, price decimal(12,2), note varchar(64), at datetime(6))`); err != nil {
		return err
	}
	for from := int64(1); from <= rows; from += 50000 {
		if _, err := db.ExecContext(ctx, insertRange(from, min(from+49999, rows))); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	cfg := filepath.Join(tmp, "connectd.yaml")
	lake := filepath.Join(tmp, "lake")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`offsets: file://%s/offsets
connectors:
  bench:
    source:
      type: mysql
      dsn: mysql://root@127.0.0.1:%d/
      server_id: 7001
      tables: ["bench.t"]
      snapshot: initial
    destination:
      type: parquet
      url: file://%s
      flush: {rows: 1000000, bytes: 128MiB, interval: 60s}
`, tmp, maria.Port, lake)), 0o600); err != nil {
		return err
	}
	step("connectd sync: snapshot of the loaded table (its position is where the measured changes begin)")
	snap, err := connectd(ctx, bin, cfg, filepath.Join(tmp, "snapshot.log"))
	if err != nil {
		return err
	}

	shapes := []struct {
		name, what string
		work       func() (int64, time.Duration, error)
	}{
		{"large", fmt.Sprintf("updates, inserts, deletes; %d rows per statement, each its own transaction", stmt), func() (int64, time.Duration, error) {
			return workload(ctx, db, rows, changes, stmt)
		}},
		{"oltp", fmt.Sprintf("90%% one-row transactions, the rest 2-5 rows, from %d clients", clients), func() (int64, time.Duration, error) {
			return oltpWorkload(ctx, maria.DSN, changes)
		}},
	}
	for _, sh := range shapes {
		if skipped[sh.name] {
			continue
		}
		if err := measure(ctx, db, maria, binlogTool, bin, cfg, lake, tmp, sh.name, sh.what, changes, sh.work); err != nil {
			return fmt.Errorf("%s workload: %w", sh.name, err)
		}
	}
	fmt.Printf("(%s, %d CPUs, %s, %s; snapshot of the setup: %d rows in %s, %.0f rows/s, peak RSS %.1f MiB)\n",
		version, runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, time.Now().UTC().Format("2006-01-02"),
		rows, snap.wall.Round(time.Millisecond), float64(rows)/snap.wall.Seconds(), mib(snap.rss))
	return nil
}

// measure writes one workload into fresh binlog files, then decodes them with
// mariadb-binlog into /dev/null and with connectd sync into the lake, and prints both.
func measure(ctx context.Context, db *sql.DB, maria *testenv.MariaDB, binlogTool, bin, cfg, lake, tmp, name, what string, changes int64, work func() (int64, time.Duration, error)) error {
	step("%s: writing %d row changes (%s) into fresh binlog files", name, changes, what)
	if _, err := db.ExecContext(ctx, "FLUSH BINARY LOGS"); err != nil {
		return err
	}
	first, err := currentBinlog(ctx, db)
	if err != nil {
		return err
	}
	written, took, err := work()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "FLUSH BINARY LOGS"); err != nil {
		return err
	}
	files, err := binlogsFrom(ctx, db, first, filepath.Join(maria.Dir, "data"))
	if err != nil {
		return err
	}
	var binlogBytes int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			binlogBytes += st.Size()
		}
	}
	fmt.Printf("    %d changes in %s (%.0f/s written), %d binlog files, %.1f MiB\n", written, took.Round(time.Millisecond),
		float64(written)/took.Seconds(), len(files), float64(binlogBytes)/(1<<20))

	step("%s: %s --base64-output=decode-rows -v > /dev/null", name, filepath.Base(binlogTool))
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	dec := exec.CommandContext(ctx, binlogTool, append([]string{"--no-defaults", "--base64-output=decode-rows", "-v"}, files...)...)
	dec.Stdout = devnull
	var decErr strings.Builder
	dec.Stderr = &decErr
	t0 := time.Now()
	if err := dec.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", binlogTool, err, decErr.String())
	}
	decWall := time.Since(t0)
	decUsage := testenv.UsageOf(dec.ProcessState)
	// Untimed: check that it printed every row it decoded (### INSERT/UPDATE/DELETE).
	decoded, err := countDecoded(ctx, binlogTool, files)
	if err != nil {
		return err
	}
	if decoded != written {
		return fmt.Errorf("%s decoded %d row changes, the workload made %d", binlogTool, decoded, written)
	}

	step("%s: connectd sync: the same changes into file:// Parquet", name)
	before, lakeBefore, _, err := testenv.CountLake(lake)
	if err != nil {
		return err
	}
	sync, err := connectd(ctx, bin, cfg, filepath.Join(tmp, name+".log"), strings.Fields(wrap)...)
	if err != nil {
		return err
	}
	after, lakeBytes, _, err := testenv.CountLake(lake)
	if err != nil {
		return err
	}
	if delivered := after - before; delivered != written {
		return fmt.Errorf("connectd delivered %d records, the workload made %d changes", delivered, written)
	}

	decRate := float64(written) / decWall.Seconds()
	conRate := float64(written) / sync.wall.Seconds()
	tool := filepath.Base(binlogTool)
	fmt.Printf(`
MySQL / MariaDB binlog decoding, %s workload (%s)
  changes in the binlog  %9d         %d files, %.1f MiB
  %-22s %9d changes %8s   %10.0f changes/s  peak RSS %6.1f MiB  CPU user %s sys %s
  connectd sync          %9d changes %8s   %10.0f changes/s  peak RSS %6.1f MiB  CPU user %s sys %s (lake +%.1f MiB)
  ratio connectd / %s: %.2f by wall time, %.2f by CPU time (changes per CPU-second)
`, name, what, written, len(files), float64(binlogBytes)/(1<<20),
		tool+" -v", written, decWall.Round(time.Millisecond), decRate, mib(decUsage.MaxRSS), decUsage.User.Round(time.Millisecond), decUsage.Sys.Round(time.Millisecond),
		written, sync.wall.Round(time.Millisecond), conRate, mib(sync.rss), sync.user.Round(time.Millisecond), sync.sys.Round(time.Millisecond), float64(lakeBytes-lakeBefore)/(1<<20),
		tool, conRate/decRate, (decUsage.User+decUsage.Sys).Seconds()/max((sync.user+sync.sys).Seconds(), 1e-9))
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func openDB(dsn string) (*sql.DB, error) {
	c, err := gomysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	c.MultiStatements = true
	conn, err := gomysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

func insertRange(from, to int64) string {
	return fmt.Sprintf(`INSERT INTO bench.t SELECT seq, seq %% 1000, seq / 100, CONCAT('row ', seq, ' of the benchmark table'), '2024-01-01' + INTERVAL seq SECOND
FROM bench.seq_%d_to_%d`, from, to)
}

// workload writes changes row changes in statements of stmt rows, each in its own
// transaction: half updates, then inserts and deletes. It returns the rows changed.
func workload(ctx context.Context, db *sql.DB, rows, changes, stmt int64) (int64, time.Duration, error) {
	t0 := time.Now()
	var done int64
	lo, hi := int64(1), rows // live ids are lo..hi
	for i := 0; done < changes; i++ {
		n := min(stmt, changes-done)
		var q string
		switch {
		case i%10 < 5 && hi-lo+1 >= n:
			start := lo + (int64(i)*7919)%(hi-lo+1-n+1)
			q = fmt.Sprintf("UPDATE bench.t SET n = n + 1, price = price + 0.01, note = CONCAT('updated ', id) WHERE id BETWEEN %d AND %d", start, start+n-1)
		case i%10 < 8 || hi-lo+1 < n:
			q = insertRange(hi+1, hi+n)
			hi += n
		default:
			q = fmt.Sprintf("DELETE FROM bench.t WHERE id BETWEEN %d AND %d", lo, lo+n-1)
			lo += n
		}
		res, err := db.ExecContext(ctx, q)
		if err != nil {
			return done, 0, fmt.Errorf("workload: %s: %w", q, err)
		}
		got, _ := res.RowsAffected()
		if got != n {
			return done, 0, fmt.Errorf("workload: %s: %d rows changed, want %d", q, got, n)
		}
		done += got
	}
	return done, time.Since(t0), nil
}

func currentBinlog(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		return "", errors.New("SHOW MASTER STATUS is empty: binary log off")
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	return string(vals[0]), nil
}

// binlogsFrom lists the closed binlog files from first on, as paths in dataDir.
func binlogsFrom(ctx context.Context, db *sql.DB, first, dataDir string) ([]string, error) {
	cur, err := currentBinlog(ctx, db)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name := string(vals[0])
		if name >= first && name != cur {
			out = append(out, filepath.Join(dataDir, name))
		}
	}
	return out, rows.Err()
}

// proc is what one connectd process cost.
type proc struct {
	wall, user, sys time.Duration
	rss             int64
}

// connectd runs `connectd sync` (after the wrapper command, if any) with JSON logs
// into logPath.
func connectd(ctx context.Context, bin, cfg, logPath string, wrapper ...string) (proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return proc{}, err
	}
	defer logf.Close()
	args := append(append(wrapper[len(wrapper):], wrapper...), bin, "sync", "-c", cfg, "--log-format", "json")
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	err = cmd.Run()
	u := testenv.UsageOf(cmd.ProcessState)
	p := proc{wall: time.Since(t0), rss: u.MaxRSS, user: u.User, sys: u.Sys}
	if err != nil {
		return p, fmt.Errorf("connectd sync: %w\n%s", err, tail(logPath, 20))
	}
	return p, nil
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// countDecoded counts the row images mariadb-binlog -v prints as pseudo-SQL.
func countDecoded(ctx context.Context, tool string, files []string) (int64, error) {
	cmd := exec.CommandContext(ctx, tool, append([]string{"--no-defaults", "--base64-output=decode-rows", "-v"}, files...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var n int64
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if len(l) > 4 && l[0] == '#' && (strings.HasPrefix(string(l), "### INSERT ") || strings.HasPrefix(string(l), "### UPDATE ") || strings.HasPrefix(string(l), "### DELETE ")) {
			n++
		}
	}
	if err := cmd.Wait(); err != nil {
		return n, fmt.Errorf("%s: %w", tool, err)
	}
	return n, sc.Err()
}

// oltpClient is one client of the oltp workload. Its keys are base + k*clients + w
// and start with none live; its live keys are the index range [lo, hi): inserts
// extend it, deletes take its oldest.
type oltpClient struct {
	w, n, base   int64
	lo, hi       int64
	rng          *rand.Rand
	changes, txn int64
}

// oltpBase puts the oltp workload's keys far above the loaded table's.
const oltpBase = 1_000_000_000_000

// next picks one row change: about 45% inserts, 40% updates, 15% deletes (inserts
// only while few rows are live).
func (c *oltpClient) next() string {
	id := func(k int64) int64 { return c.base + k*c.n + c.w }
	live := c.hi - c.lo
	p := c.rng.IntN(100)
	switch {
	case p < 40 && live > 2:
		return fmt.Sprintf("UPDATE bench.t SET n = n + 1, price = price + 0.01, note = CONCAT('updated ', id) WHERE id = %d", id(c.lo+c.rng.Int64N(live)))
	case p < 55 && live > 100:
		c.lo++
		return fmt.Sprintf("DELETE FROM bench.t WHERE id = %d", id(c.lo-1))
	default:
		c.hi++
		k := id(c.hi - 1)
		return fmt.Sprintf("INSERT INTO bench.t VALUES (%d, %d, %d.%02d, 'row %d of the oltp workload', '2024-01-01' + INTERVAL %d SECOND)", k, k%1000, k%100000, k%100, k, k%100000000)
	}
}

// oltpWorkload makes changes row changes from clients connections: 90% of the
// transactions change one row (an autocommitted statement), the rest 2-5 rows.
func oltpWorkload(ctx context.Context, dsn string, changes int64) (int64, time.Duration, error) {
	db, err := openDB(dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t0 := time.Now()
	var (
		wg    gosync.WaitGroup
		mu    gosync.Mutex
		errs  []error
		total int64
	)
	n := int64(clients)
	for w := range n {
		c := &oltpClient{w: w, n: n, base: oltpBase, rng: rand.New(rand.NewPCG(42, uint64(w)))}
		share := changes / n
		if w == n-1 {
			share = changes - share*(n-1)
		}
		wg.Go(func() {
			err := c.run(ctx, db, share)
			mu.Lock()
			defer mu.Unlock()
			total += c.changes
			if err != nil {
				errs = append(errs, fmt.Errorf("oltp client %d: %w", w, err))
				cancel()
			}
		})
	}
	wg.Wait()
	return total, time.Since(t0), errors.Join(errs...)
}

func (c *oltpClient) run(ctx context.Context, db *sql.DB, share int64) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for c.changes < share {
		size := int64(1)
		if c.rng.IntN(10) == 0 {
			size = 2 + c.rng.Int64N(4)
		}
		size = min(size, share-c.changes)
		if size == 1 {
			if err := execOne(ctx, conn, c.next()); err != nil {
				return err
			}
		} else if err := c.multi(ctx, conn, size); err != nil {
			return err
		}
		c.changes += size
		c.txn++
	}
	return nil
}

func (c *oltpClient) multi(ctx context.Context, conn *sql.Conn, size int64) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after Commit, a no-op
	for range size {
		if err := execOne(ctx, tx, c.next()); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// execOne runs a statement that must change exactly one row.
func execOne(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string) error {
	res, err := db.ExecContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	if got, _ := res.RowsAffected(); got != 1 {
		return fmt.Errorf("%s: %d rows changed, want 1", q, got)
	}
	return nil
}
