package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/offsets"
)

var serial atomic.Int64

// env is one test's world: its database, two connectors (one to S3, one to a file://
// lake on a small disk of its own), the daemon and the fault injector.
type env struct {
	injector
	dsn     string
	conn    *pgx.Conn // PostgreSQL: the injector's own connection (faults, final comparison)
	src     sourceRows
	m       *model
	w       *workload // nil until the workload starts
	s3Conn  string
	fileCon string
	bucket  string
	disk    string // the file:// lake's file system: a tmpfs when mounting works
	diskOK  bool   // disk is a tmpfs of its own, which the disk-full fault may fill
	lakeDir string
	offsets string        // the offsets URL in connectd's config
	store   offsets.Store // the same store, read by the test
	config  string
}

// injector is what every fault loop keeps: the daemon it faults, its random source
// and a count of the faults by kind.
type injector struct {
	t      *testing.T
	rng    *rand.Rand
	d      *daemon
	faults int
	byKind map[string]int
	last   string // kind of the last fault
}

func newInjector(t *testing.T, rng *rand.Rand) injector {
	return injector{t: t, rng: rng, byKind: map[string]int{}}
}

// newPGEnv creates a PostgreSQL database with the workload's tables (preload fills
// them before connectd starts) and the env of its two connectors.
func newPGEnv(t *testing.T, name string, rng *rand.Rand, diskSize string, preload func(*env)) *env {
	t.Helper()
	ctx := context.Background()
	n := serial.Add(1)
	dbName := fmt.Sprintf("%s_%d", name, n)
	if err := pgServer.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(pgServer.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + dbName
	dsn := u.String()
	e := newEnv(t, name, n, rng, diskSize, newModel(pgSpecs), func(string) string {
		return fmt.Sprintf("    source:\n      type: postgres\n      dsn: %q\n      tables: [\"fault.*\"]\n", dsn)
	})
	e.dsn = dsn
	e.reconnect()
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	e.src = func(q string) (map[int64][]string, error) { return pgRows(e.conn)(q) }
	if _, err := e.conn.Exec(ctx, schemaDDL); err != nil {
		t.Fatal(err)
	}
	preload(e)
	return e
}

// newEnv prepares the two connectors of a test (source is the YAML source block of
// a connector) and the daemon; the caller sets up the source database and e.src.
func newEnv(t *testing.T, name string, n int64, rng *rand.Rand, diskSize string, m *model, source func(conn string) string) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{injector: newInjector(t, rng), m: m}
	dir := t.TempDir()
	// The pid keeps names apart across test processes running at once: connectd
	// stages S3 uploads in $TMPDIR/connectd-staging/<connector> and wipes that folder
	// when it starts.
	e.s3Conn = fmt.Sprintf("%s_s3_%d_%d", name, os.Getpid(), n)
	e.fileCon = fmt.Sprintf("%s_file_%d_%d", name, os.Getpid(), n)
	e.bucket = strings.ReplaceAll(e.s3Conn, "_", "-")
	if err := s3Server.CreateBucket(ctx, e.bucket); err != nil {
		t.Fatal(err)
	}
	e.disk = filepath.Join(dir, "disk")
	if err := os.Mkdir(e.disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+diskSize, "tmpfs", e.disk).CombinedOutput(); err != nil {
		t.Logf("disk-full fault disabled: cannot mount a tmpfs for the file:// lake (%v: %s); the lake lives in %s", err, strings.TrimSpace(string(out)), e.disk)
	} else {
		e.diskOK = true
		t.Cleanup(func() {
			if out, err := exec.Command("umount", e.disk).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", e.disk, err, out)
			}
		})
	}
	e.lakeDir = filepath.Join(e.disk, "lake")
	e.offsets = offsetsURL(t, dir, e.bucket, n)
	store, err := offsets.Open(ctx, e.offsets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e.store = store
	e.config = filepath.Join(dir, "connectd.yaml")
	listen := freeAddr(t)
	flush := "      flush: {rows: 500, bytes: 16MiB, interval: 1s}\n"
	cfg := fmt.Sprintf("offsets: %q\nserver:\n  listen: %s\nconnectors:\n", e.offsets, listen)
	cfg += fmt.Sprintf("  %s:\n%s    destination:\n      type: parquet\n      url: s3://%s/lake\n", e.s3Conn, source(e.s3Conn), e.bucket)
	cfg += fmt.Sprintf("      s3: {endpoint: %q, region: %s, path_style: true, access_key_id: %s, secret_access_key: %s}\n",
		s3Server.Endpoint, s3Server.Region, s3Server.AccessKey, s3Server.SecretKey)
	cfg += flush
	cfg += fmt.Sprintf("  %s:\n%s    destination:\n      type: parquet\n      url: file://%s\n", e.fileCon, source(e.fileCon), e.lakeDir)
	cfg += flush
	if err := os.WriteFile(e.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("connectd-fault-%s-%d.log", name, os.Getpid()))
	_ = os.Remove(logPath)
	e.d = newDaemon(t, e.config, listen, logPath)
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("FAULT_KEEP_LOG") == "" {
			os.Remove(logPath)
		} else {
			t.Logf("connectd's log (every run): %s", logPath)
		}
	})
	return e
}

func (e *env) reconnect() {
	e.t.Helper()
	e.conn = connectRetry(e.t, e.conn, e.dsn)
}

// connectRetry closes old (when set) and connects to dsn, retrying for ten seconds
// while a restarted server comes up.
func connectRetry(t *testing.T, old *pgx.Conn, dsn string) *pgx.Conn {
	t.Helper()
	if old != nil {
		old.Close(context.Background())
	}
	var err error
	for i := 0; i < 100; i++ {
		var c *pgx.Conn
		if c, err = pgx.Connect(context.Background(), dsn); err == nil {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("connect %s: %v", dsn, err)
	return nil
}

func (e *injector) count(kind string) {
	e.faults++
	e.byKind[kind]++
	e.last = kind
}

// sleep waits a random time in [min, max).
func (e *injector) sleep(min, max time.Duration) {
	time.Sleep(min + time.Duration(e.rng.Int63n(int64(max-min))))
}

// ensureRunning starts the daemon when a fault left it stopped, and fails the test
// when it stopped on its own.
func (e *injector) ensureRunning() {
	e.t.Helper()
	if e.d.proc != nil && !e.d.running() && !e.d.killed {
		e.t.Fatalf("connectd run exited on its own: %v; log tail:\n%s", e.d.err(), e.d.logTail(80))
	}
	if !e.d.running() {
		e.d.start(e.t)
	}
}

// snapshotCommitted reports whether both connectors have committed the end of the
// initial snapshot.
func (e *env) snapshotCommitted() bool {
	return snapshotDone(committed(e.t, e.store, e.s3Conn)) && snapshotDone(committed(e.t, e.store, e.fileCon))
}

// waitSnapshot waits, with the daemon running, until both connectors have committed
// the end of the snapshot.
func (e *env) waitSnapshot(timeout time.Duration) {
	e.t.Helper()
	e.ensureRunning()
	deadline := time.Now().Add(timeout)
	for !e.snapshotCommitted() {
		if !e.d.running() {
			e.t.Fatalf("connectd run exited during the snapshot: %v; log tail:\n%s", e.d.err(), e.d.logTail(80))
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the snapshot was not committed within %s (committed: %s=%q %s=%q); log tail:\n%s", timeout,
				e.s3Conn, committed(e.t, e.store, e.s3Conn), e.fileCon, committed(e.t, e.store, e.fileCon), e.d.logTail(60))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// --- faults ---

// killAfter SIGKILLs connectd after a random delay (any phase: reading, writing,
// flushing, uploading, committing).
func (e *env) killAfter(max time.Duration) {
	e.t.Helper()
	e.ensureRunning()
	e.sleep(0, max)
	e.d.kill(e.t)
	e.count("kill at a random moment")
}

// killAfterFlush SIGKILLs connectd as soon as the S3 connector's flush counter moves:
// the data is durable and the offset commit is in flight or just done.
func (e *env) killAfterFlush() {
	e.t.Helper()
	e.ensureRunning()
	e.d.waitMetricMoves("connectd_flushes_total", e.s3Conn, 60*time.Second, 5*time.Millisecond)
	e.d.kill(e.t)
	e.count("kill right after a flush")
}

// killDuringUpload freezes S3, so that an upload hangs, and SIGKILLs connectd then.
func (e *env) killDuringUpload() {
	e.t.Helper()
	e.ensureRunning()
	e.sleep(0, time.Second)
	if err := s3Server.Pause(); err != nil {
		e.t.Fatal(err)
	}
	e.sleep(200*time.Millisecond, 2*time.Second)
	e.d.kill(e.t)
	if err := s3Server.Resume(); err != nil {
		e.t.Fatal(err)
	}
	e.count("kill during an upload (S3 frozen)")
}

// terminateWalsender ends the replication connections from the server side.
func (e *env) terminateWalsender() {
	e.t.Helper()
	e.ensureRunning()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int
		err := e.conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots
WHERE slot_name = ANY($1) AND active_pid IS NOT NULL`, []string{"connectd_" + e.s3Conn, "connectd_" + e.fileCon}).Scan(&n)
		if err != nil {
			e.t.Fatalf("terminate walsender: %v", err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no walsender of connectd to terminate within 60s; log tail:\n%s", e.d.logTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.count("pg_terminate_backend of the walsender")
}

// restartPostgres restarts the server between two workload transactions: cleanly,
// or after a SIGKILL of every server process (crash recovery).
func (e *env) restartPostgres(crash bool) {
	e.t.Helper()
	e.ensureRunning()
	e.w.mu.Lock()
	defer e.w.mu.Unlock()
	if crash {
		pgServer.Kill()
	}
	e.sleep(0, 2*time.Second)
	if err := pgServer.Restart(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	if err := e.w.reconnect(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.reconnect()
	if crash {
		e.count("PostgreSQL crash (SIGKILL) and restart")
	} else {
		e.count("PostgreSQL restart")
	}
}

// pauseS3 freezes the S3 server for d. With check, it also proves backpressure: the
// workload commits a burst bigger than connectd's buffers, connectd's RSS stays within
// 3x + 64 MiB of its size before the pause, and it stops reading the source. 3x because
// connectd runs the collector at a target of 200 (internal/gctune): its heap may reach
// three times the live data before a cycle, so 2x failed on GC timing alone (165 MiB
// against a bound of 162 once) while reading had stopped.
func (e *env) pauseS3(d time.Duration, check bool, burst int64) {
	e.t.Helper()
	e.ensureRunning()
	e.sleep(0, time.Second)
	var rss0 int64
	var read0 float64
	var committed0 int64
	if check {
		var err error
		if rss0, err = e.d.rss(); err != nil {
			e.t.Fatal(err)
		}
		read0 = e.mustMetric("connectd_records_read_total", e.s3Conn)
	}
	if err := s3Server.Pause(); err != nil {
		e.t.Fatal(err)
	}
	e.count("S3 frozen")
	start := time.Now()
	if check {
		committed0 = e.w.committed.Load()
		e.w.bigReq <- burst
	}
	var rssMax int64
	var samples []float64
	for time.Since(start) < d {
		time.Sleep(250 * time.Millisecond)
		if !check {
			continue
		}
		if !e.d.running() {
			break
		}
		if r, err := e.d.rss(); err == nil && r > rssMax {
			rssMax = r
		}
		if v, err := e.d.metric("connectd_records_read_total", e.s3Conn); err == nil {
			samples = append(samples, v)
		}
	}
	var read1 float64
	var committed1 int64
	if check && len(samples) > 0 {
		read1 = samples[len(samples)-1]
		committed1 = e.w.committed.Load()
	}
	if err := s3Server.Resume(); err != nil {
		e.t.Fatal(err)
	}
	if !check {
		return
	}
	<-e.w.bigDone
	if !e.d.running() {
		e.t.Fatalf("connectd run exited while S3 was frozen: %v; log tail:\n%s", e.d.err(), e.d.logTail(80))
	}
	read := int64(read1 - read0)
	wrote := committed1 - committed0
	e.t.Logf("backpressure: S3 frozen %s: RSS %d MiB before, at most %d MiB during; %s read %d records while the workload committed %d",
		d, rss0>>20, rssMax>>20, e.s3Conn, read, wrote)
	if bound := 3*rss0 + 64<<20; rssMax > bound {
		e.t.Errorf("backpressure: connectd's RSS grew to %d MiB while S3 was frozen, over the bound 3x%d MiB + 64 MiB", rssMax>>20, rss0>>20)
	}
	if wrote < burst {
		e.t.Errorf("backpressure: the burst of %d rows was not committed while S3 was frozen (%d records); the check proves nothing", burst, wrote)
	}
	if read >= wrote {
		e.t.Errorf("backpressure: %s read %d records while S3 was frozen, all %d the source committed: reading did not stop", e.s3Conn, read, wrote)
	}
}

func (e *env) mustMetric(name, conn string) float64 {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := e.d.metric(name, conn)
		if err == nil {
			return v
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("read metric %s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fillDisk fills the file:// lake's file system for a while, then frees it; connectd
// must keep running and, once there is room again, deliver.
func (e *env) fillDisk(hold time.Duration) {
	e.t.Helper()
	if !e.diskOK {
		return
	}
	e.ensureRunning()
	filler := filepath.Join(e.disk, "filler")
	f, err := os.Create(filler)
	if err != nil {
		e.t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				e.t.Fatalf("fill %s: %v", e.disk, err)
			}
			break
		}
	}
	f.Close()
	e.count("file:// lake's disk full")
	before := committed(e.t, e.store, e.fileCon)
	time.Sleep(hold)
	if err := os.Remove(filler); err != nil {
		e.t.Fatal(err)
	}
	if !e.d.running() {
		e.t.Fatalf("connectd run exited when the disk was full: %v; log tail:\n%s", e.d.err(), e.d.logTail(80))
	}
	// Liveness: once there is room, the file connector commits again (its backoff is
	// at most a minute; the workload keeps writing).
	deadline := time.Now().Add(4 * time.Minute)
	for committed(e.t, e.store, e.fileCon) == before {
		if time.Now().After(deadline) {
			e.t.Errorf("the file:// connector did not commit anything within 4m of the disk being freed; log tail:\n%s", e.d.logTail(40))
			return
		}
		if !e.d.running() {
			e.t.Fatalf("connectd run exited after the disk was full: %v; log tail:\n%s", e.d.err(), e.d.logTail(80))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// finish stops connectd, catches up with `connectd sync`, and reconciles both lakes
// with the workload's log and the source tables.
func (e *env) finish() {
	e.t.Helper()
	e.ensureRunning()
	// A SIGTERM that lands before connectd has set up its signal handling kills it
	// like any process; wait until it serves its status API.
	e.mustMetric("connectd_connector_up", e.s3Conn)
	e.d.stop(e.t)
	code, out := runCmd(e.t, 30*time.Minute, "sync", "-c", e.config, "--log-format", "json")
	if code != 0 {
		e.t.Fatalf("connectd sync: exit %d\n%s", code, tailString(out, 80))
	}
	dl := filepath.Join(e.t.TempDir(), "s3lake")
	if err := s3Server.Download(context.Background(), e.bucket, "lake/", dl); err != nil {
		e.t.Fatal(err)
	}
	var all counts
	for _, lake := range []struct{ label, root string }{
		{"s3://" + e.bucket + "/lake", filepath.Join(dl, "lake")},
		{"file://" + e.lakeDir, e.lakeDir},
	} {
		c := reconcile(e.t, lake.root, e.m, e.src, lake.label)
		e.t.Logf("%s: %s", lake.label, c)
		all.checked += c.checked
		all.missing += c.missing
		all.duplicates += max(c.duplicates, c.dupPos) // a record twice at the same _pos counts in both
		if !c.clean() {
			e.t.Errorf("%s differs from the source: %s", lake.label, c)
		}
	}
	kinds := make([]string, 0, len(e.byKind))
	for k, n := range e.byKind {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
	}
	e.t.Logf("faults: %s", strings.Join(kinds, "; "))
	totals.ran.Store(true)
	totals.faults.Add(int64(e.faults))
	totals.checked.Add(int64(all.checked))
	totals.missing.Add(int64(all.missing))
	totals.duplicates.Add(int64(all.duplicates))
	e.t.Logf("faults injected: %d, changes checked: %d, missing: %d, duplicates: %d", e.faults, all.checked, all.missing, all.duplicates)
}

// offsetsURL is where a test's connectd keeps its offsets: a directory, or with
// FAULT_OFFSETS=s3 a bucket of the S3 server (whose pauses then also hold commits
// back), or with FAULT_OFFSETS=postgres a database of the PostgreSQL server (whose
// restarts and crashes then also break the store's connection).
func offsetsURL(t *testing.T, dir, bucket string, n int64) string {
	ctx := context.Background()
	switch kind := os.Getenv("FAULT_OFFSETS"); kind {
	case "", "file":
		return "file://" + filepath.Join(dir, "offsets")
	case "s3":
		b := bucket + "-offsets"
		if err := s3Server.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
		// connectd and the test read the store with the AWS chain's credentials.
		t.Setenv("AWS_ACCESS_KEY_ID", s3Server.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", s3Server.SecretKey)
		return fmt.Sprintf("s3://%s/offsets?region=%s&path_style=true&endpoint=%s", b, s3Server.Region, url.QueryEscape(s3Server.Endpoint))
	case "postgres":
		dsn, err := pgServer.CreateDatabase(ctx, fmt.Sprintf("offsets_%d_%d", os.Getpid(), n))
		if err != nil {
			t.Fatal(err)
		}
		return dsn
	default:
		t.Fatalf("FAULT_OFFSETS=%q: want file, s3 or postgres", kind)
		return ""
	}
}

// runFaults injects the faults one after the other while w runs, with a pause of up
// to gapMax after each and connectd started again when a fault left it down. A
// workload error or a failed check ends it early; the caller stops the workload.
func (e *injector) runFaults(w *workload, faults []func(), gapMax time.Duration) {
	t := e.t
	t.Helper()
	for i, f := range faults {
		if err := w.failed(); err != nil {
			t.Fatalf("workload: %v", err)
		}
		if t.Failed() {
			break
		}
		f()
		if !long() || i%50 == 0 {
			t.Logf("step %d/%d: %s (%d faults), workload %d transactions, %d records", i+1, len(faults), e.last, e.faults, w.txns.Load(), w.committed.Load())
		}
		e.ensureRunning()
		e.sleep(100*time.Millisecond, gapMax)
	}
}

// stopWorkload stops w once the faults are over and logs what it committed.
func stopWorkload(t *testing.T, w *workload, stopped *bool) {
	t.Helper()
	*stopped = true
	if err := w.stop(); err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload: %d transactions, %d records committed", w.txns.Load(), w.committed.Load())
}
