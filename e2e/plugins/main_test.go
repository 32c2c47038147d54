// Package plugins tests connectd's plugin connectors end to end (SPEC section 7,
// issue 5): the real connectd binary runs the example plugins
// (plugins/examples/jsonl-source and ndjson-destination) next to built-in
// connectors and a real PostgreSQL, and the tests check what lands, row by row.
package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/e2e/testenv"
)

// What every test of the package shares.
var (
	connectdBin string
	pluginDir   string // holds jsonl-source and ndjson-destination
	pgServer    *testenv.Postgres
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "connectd-e2e-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/plugins:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	pluginDir = filepath.Join(dir, "plugins")
	connectdBin = filepath.Join(dir, "connectd")
	if bin := os.Getenv("CONNECTD_BIN"); bin != "" {
		connectdBin = bin
	} else if err := build(ctx, connectdBin, "./cmd/connectd"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/plugins:", err)
		return 1
	}
	for _, p := range []string{"jsonl-source", "ndjson-destination"} {
		if err := build(ctx, filepath.Join(pluginDir, p), "./plugins/examples/"+p); err != nil {
			fmt.Fprintln(os.Stderr, "e2e/plugins:", err)
			return 1
		}
	}
	pgServer, err = testenv.StartPostgres(ctx, testenv.PostgresOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/plugins: start postgres:", err)
		return 1
	}
	defer pgServer.Stop()
	return m.Run()
}

// build builds pkg, relative to the module root (two levels up from e2e/plugins,
// where go test runs), into out.
func build(ctx context.Context, out, pkg string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root := filepath.Join(wd, "..", "..")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
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
	if err := pgServer.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	u, err := url.Parse(pgServer.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect %s: %v", u, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	mustExec(t, conn, "SET TimeZone = 'UTC'")
	return u.String(), conn
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

func exitCode(cmd *exec.Cmd, err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1
		}
		return ee.ExitCode()
	}
	return -2
}

// syncConfig runs `connectd sync -c config` and fails the test unless it exits 0.
func syncConfig(t *testing.T, config string) result {
	t.Helper()
	cmd := exec.Command(connectdBin, "sync", "-c", config)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		r := result{code: exitCode(cmd, err), stdout: stdout.String(), stderr: stderr.String()}
		if r.code != 0 {
			t.Fatalf("connectd sync -c %s: want exit 0, got %s", config, r)
		}
		return r
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("connectd sync did not exit within 3m; killed it\n--- stderr:\n%s", tail(stderr.String(), 60))
		return result{}
	}
}

// safeBuffer collects a child's output while the test reads it.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is a `connectd run` in the background.
type daemon struct {
	cmd    *exec.Cmd
	stderr *safeBuffer
	done   chan struct{}
	err    error // valid once done is closed
}

func startRun(t *testing.T, config string) *daemon {
	t.Helper()
	d := &daemon{stderr: &safeBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(connectdBin, "run", "-c", config)
	d.cmd.Stdout, d.cmd.Stderr = d.stderr, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start connectd run: %v", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if d.running() {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stopClean sends SIGTERM and fails the test unless connectd exits 0.
func (d *daemon) stopClean(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(90 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Fatalf("connectd run did not exit within 90s of SIGTERM\n--- log:\n%s", tail(d.stderr.String(), 60))
	}
	if code := exitCode(d.cmd, d.err); code != 0 {
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
			t.Fatalf("waiting for %s: connectd run exited (%v); last state: %s\n--- log:\n%s", what, d.err, state, tail(d.stderr.String(), 60))
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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
