package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildConnectd returns a connectd binary for the tests of a package: the one named
// by CONNECTD_BIN when set (a release build, another commit), otherwise
// ./cmd/connectd of the module at root ("" finds the module from the working
// directory) built into a temp directory. cleanup removes what was built; call it
// once the binary is no longer needed.
func BuildConnectd(ctx context.Context, root string) (path string, cleanup func(), err error) {
	return BuildConnectdTagged(ctx, root, "CONNECTD_BIN")
}

// BuildConnectdDuckDB is BuildConnectd for the binary with the duckdb destination
// (make build-duckdb): the one named by CONNECTD_DUCKDB_BIN when set, otherwise
// ./cmd/connectd built with -tags duckdb,duckdb_arrow (the Makefile's DUCKDB_TAGS).
func BuildConnectdDuckDB(ctx context.Context, root string) (path string, cleanup func(), err error) {
	return BuildConnectdTagged(ctx, root, "CONNECTD_DUCKDB_BIN", "duckdb", "duckdb_arrow")
}

// BuildConnectdTagged returns the binary named by the environment variable binEnv
// when it is set, otherwise ./cmd/connectd built with the build tags into a temp
// directory (cleanup removes it).
func BuildConnectdTagged(ctx context.Context, root, binEnv string, tags ...string) (path string, cleanup func(), err error) {
	if bin := os.Getenv(binEnv); bin != "" {
		return bin, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "connectd-e2e-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("testenv: build connectd: %w", err)
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "connectd")
	if err := Build(ctx, root, "./cmd/connectd", path, tags...); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// Build runs `go build -o out pkg` in the module at root ("" finds the module from
// the working directory, as go test runs in the package directory), with -tags when
// tags are given. A tagged build has cgo on: the tags select the connectors that
// link C libraries (DuckDB), which a build with CGO_ENABLED=0 in the environment
// would leave unbuildable.
func Build(ctx context.Context, root, pkg, out string, tags ...string) error {
	if root == "" {
		var err error
		if root, err = repoRoot(); err != nil {
			return fmt.Errorf("go build %s: %w", pkg, err)
		}
	}
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	if len(tags) > 0 {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return nil
}

// FreeAddr returns a loopback address nobody listens on (for a moment: another
// process may take the port before the caller does).
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testenv: find free address: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Connectd runs one connectd binary (or any command: Bin is just the executable).
type Connectd struct {
	Bin string
}

// Result is how one command run to completion ended.
type Result struct {
	Code           int // exit status; -1 when killed by a signal, -2 when it could not be waited for
	Stdout, Stderr string
	// TimedOut is set when the command was still running after the timeout and was
	// killed; Code is then -1.
	TimedOut bool
}

// Run runs Bin with args to completion, killing it when it is still running after
// timeout. An error means it could not be started.
func (c Connectd) Run(timeout time.Duration, args ...string) (Result, error) {
	var stdout, stderr bytes.Buffer
	code, timedOut, err := c.run(timeout, &stdout, &stderr, args)
	return Result{Code: code, Stdout: stdout.String(), Stderr: stderr.String(), TimedOut: timedOut}, err
}

// RunCombined is Run with stdout and stderr interleaved into Result.Stdout.
func (c Connectd) RunCombined(timeout time.Duration, args ...string) (Result, error) {
	var out bytes.Buffer
	code, timedOut, err := c.run(timeout, &out, &out, args)
	return Result{Code: code, Stdout: out.String(), TimedOut: timedOut}, err
}

func (c Connectd) run(timeout time.Duration, stdout, stderr io.Writer, args []string) (code int, timedOut bool, err error) {
	p, err := c.Start(stdout, stderr, args...)
	if err != nil {
		return 0, false, err
	}
	select {
	case <-p.Done():
		return p.ExitCode(), false, nil
	case <-time.After(timeout):
		p.Kill()
		return p.ExitCode(), true, nil
	}
}

// Start starts Bin with args in the background, its output going to stdout and
// stderr (the same writer is fine; a Buffer can be read while the process runs).
func (c Connectd) Start(stdout, stderr io.Writer, args ...string) (*Process, error) {
	cmd := exec.Command(c.Bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %v: %w", filepath.Base(c.Bin), args, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Process is a command started in the background.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process (nothing once it has exited).
func (p *Process) Signal(sig syscall.Signal) {
	if p.Running() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Kill SIGKILLs the process, if it still runs, and waits until it is gone.
func (p *Process) Kill() {
	if p.Running() {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// Wait waits up to timeout for the process to exit; false when it still runs.
func (p *Process) Wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Err is what waiting for the process returned (nil: exit 0); valid once Done.
func (p *Process) Err() error { return p.err }

// ExitCode is the exit status once Done: -1 when killed by a signal, -2 when the
// process could not be waited for.
func (p *Process) ExitCode() int { return ExitCode(p.err) }

// Usage is what the process cost, once Done.
func (p *Process) Usage() Usage { return UsageOf(p.cmd.ProcessState) }

// ExitCode turns what exec.Cmd.Wait returned into an exit status: 0 for nil, -1 when
// the process was killed by a signal, -2 when it could not be waited for.
func ExitCode(err error) int {
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

// Usage is the resources a process that has exited used, from its rusage.
type Usage struct {
	MaxRSS    int64 // peak resident set size, bytes
	User, Sys time.Duration
}

// UsageOf reads a finished process's rusage; zero when there is none (not started,
// not waited for).
func UsageOf(ps *os.ProcessState) Usage {
	if ps == nil {
		return Usage{}
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return Usage{}
	}
	return Usage{
		MaxRSS: ru.Maxrss * 1024, // KiB on Linux
		User:   time.Duration(ru.Utime.Nano()),
		Sys:    time.Duration(ru.Stime.Nano()),
	}
}

// Buffer collects a child's output while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it never fails.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FileTail is the last n lines of a file (a process's log), for failure messages;
// what went wrong when the file cannot be read.
func FileTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
