// Package plugins tests connectd's plugin connectors end to end
// (plugins/README.md): the real connectd binary runs the example plugins
// (plugins/examples/jsonl-source and ndjson-destination) next to built-in
// connectors and a real PostgreSQL, and the tests check what lands, row by row.
package plugins

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/internal/testenv"
)

// What every test of the package shares, each built or started by the first test
// that needs it (none in -short mode).
var (
	sharedBin     = testenv.SharedConnectd()
	sharedPlugins = &testenv.Shared[string]{Start: buildPlugins} // holds jsonl-source and ndjson-destination
	sharedPG      = testenv.SharedPostgres(testenv.PostgresOptions{})
)

func connectdBin(t testing.TB) string         { t.Helper(); return sharedBin.Get(t) }
func pluginDir(t testing.TB) string           { t.Helper(); return sharedPlugins.Get(t) }
func pgServer(t testing.TB) *testenv.Postgres { t.Helper(); return sharedPG.Get(t) }

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range []interface{ Stop() error }{sharedPG, sharedPlugins, sharedBin} {
		if err := s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/plugins:", err)
		}
	}
	os.Exit(code)
}

// buildPlugins builds the example plugins into a temp directory.
func buildPlugins(ctx context.Context) (dir string, stop func() error, err error) {
	dir, err = os.MkdirTemp("", "connectd-e2e-plugins-")
	if err != nil {
		return "", nil, fmt.Errorf("build plugins: %w", err)
	}
	stop = func() error { return os.RemoveAll(dir) }
	for _, p := range []string{"jsonl-source", "ndjson-destination"} {
		if err := testenv.Build(ctx, "", "./plugins/examples/"+p, filepath.Join(dir, p)); err != nil {
			_ = stop()
			return "", nil, err
		}
	}
	return dir, stop, nil
}

var serial atomic.Int64

// unique suffixes name with a number used once per test binary, so that repeated
// runs (-count=N) against the same server do not collide.
func unique(name string) string { return fmt.Sprintf("%s_%d", name, serial.Add(1)) }

// newDatabase creates a database for one test; it returns its DSN and a connection
// (UTC session) closed when the test ends.
func newDatabase(t *testing.T, name string) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	name = unique(name)
	dsn, err := pgServer(t).CreateDatabase(ctx, name)
	if err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	mustExec(t, conn, "SET TimeZone = 'UTC'")
	return dsn, conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// result is how one connectd command ended.
type result struct {
	code           int // exit status; -1 when killed by a signal
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, tail(r.stdout, 30), tail(r.stderr, 60))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// syncConfig runs `connectd sync -c config` and fails the test unless it exits 0.
func syncConfig(t *testing.T, config string) result {
	t.Helper()
	out, err := testenv.Connectd{Bin: connectdBin(t)}.Run(3*time.Minute, "sync", "-c", config)
	if err != nil {
		t.Fatal(err)
	}
	if out.TimedOut {
		t.Fatalf("connectd sync did not exit within 3m; killed it\n--- stderr:\n%s", tail(out.Stderr, 60))
	}
	r := result{code: out.Code, stdout: out.Stdout, stderr: out.Stderr}
	if r.code != 0 {
		t.Fatalf("connectd sync -c %s: want exit 0, got %s", config, r)
	}
	return r
}

// daemon is a `connectd run` in the background.
type daemon struct {
	proc   *testenv.Process
	stderr *testenv.Buffer // stdout and stderr
}

func startRun(t *testing.T, config string) *daemon {
	t.Helper()
	d := &daemon{stderr: &testenv.Buffer{}}
	p, err := testenv.Connectd{Bin: connectdBin(t)}.Start(d.stderr, d.stderr, "run", "-c", config)
	if err != nil {
		t.Fatalf("start connectd run: %v", err)
	}
	d.proc = p
	t.Cleanup(p.Kill)
	return d
}

func (d *daemon) running() bool { return d.proc.Running() }

// stopClean sends SIGTERM and fails the test unless connectd exits 0.
func (d *daemon) stopClean(t *testing.T) {
	t.Helper()
	d.proc.Signal(syscall.SIGTERM)
	if !d.proc.Wait(90 * time.Second) {
		d.proc.Kill()
		t.Fatalf("connectd run did not exit within 90s of SIGTERM\n--- log:\n%s", tail(d.stderr.String(), 60))
	}
	if code := d.proc.ExitCode(); code != 0 {
		t.Fatalf("connectd run after SIGTERM: exit %d\n--- log:\n%s", code, tail(d.stderr.String(), 60))
	}
}

// waitFor polls cond until it holds; it fails the test with what cond last said
// when it does not within timeout, or when the daemon exits first.
func waitFor(t *testing.T, timeout time.Duration, d *daemon, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if d != nil && !d.running() {
			t.Fatalf("waiting for %s: connectd run exited (%v); last state: %s\n--- log:\n%s", what, d.proc.Err(), state, tail(d.stderr.String(), 60))
		}
		if time.Now().After(deadline) {
			log := ""
			if d != nil {
				log = "\n--- log:\n" + tail(d.stderr.String(), 60)
			}
			t.Fatalf("waiting for %s: not reached within %s; last state: %s%s", what, timeout, state, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// childPlugin returns the pid of parent's child process running the executable
// named exe (a plugin started by connectd), or 0 when there is none.
func childPlugin(parent int, exe string) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut after its ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid != parent {
			continue
		}
		if target, err := os.Readlink(filepath.Join(d, "exe")); err == nil && filepath.Base(target) == exe {
			return pid
		}
	}
	return 0
}
