// Package testenv starts throwaway servers for tests: PostgreSQL with logical
// replication, an S3 gateway (versitygw) and MariaDB with a row-based binlog. Each
// server lives in its own temp directory on a free loopback port, never touches the
// system instances, and leaves nothing running after Stop.
//
// A test package usually starts what it needs once in TestMain and stops it at the end.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// freePort asks the kernel for a free loopback TCP port. The port is released before
// it is returned, so another process may take it first; callers retry on collision.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// account is the OS user a server runs as. PostgreSQL and MariaDB refuse to run as
// root, so when the tests run as root the servers run as a service account instead.
type account struct {
	name string
	cred *syscall.Credential // nil: run as the current user
}

// serviceAccount returns the account to run a server as: the current user when not
// root, otherwise the named service user (created when missing).
func serviceAccount(name string) (account, error) {
	if os.Geteuid() != 0 {
		return account{}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		// The user is missing on a fresh machine that has the binaries from a tarball
		// or a partial install; a system account is all the server needs.
		out, uerr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/bin/false", name).CombinedOutput()
		if uerr != nil {
			return account{}, fmt.Errorf("testenv: create user %s to run the server as (it refuses root): %v: %s", name, uerr, out)
		}
		if u, err = user.Lookup(name); err != nil {
			return account{}, fmt.Errorf("testenv: look up user %s: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("testenv: user %s: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("testenv: user %s: gid %q: %w", name, u.Gid, err)
	}
	return account{name: name, cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}, nil
}

// command builds a command that runs as the account, in dir, with a minimal
// environment (the test's HOME may not be readable by the service account).
func (a account) command(dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C", "LC_ALL=C", "HOME=" + dir, "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	// A server forked by the command may inherit its pipes; do not wait forever for them.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// chown gives the whole tree to the account, so a server running as it can write there.
func (a account) chown(dir string) error {
	if a.cred == nil {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(a.cred.Uid), int(a.cred.Gid))
	})
}

// makeTempDir creates a fresh directory for one server. Unix sockets live inside it,
// and their paths are limited to 107 bytes, so a long $TMPDIR falls back to /tmp.
// The parents must be traversable by the service account, which /tmp always is.
func makeTempDir(prefix string) (string, error) {
	base := os.TempDir()
	if len(base) > 60 || !worldTraversable(base) {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("testenv: make temp dir: %w", err)
	}
	return dir, nil
}

func worldTraversable(dir string) bool {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" || d == "." {
			return true
		}
	}
}

// logTail returns the last n lines of a log file, for error messages.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log at %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// processAlive reports whether pid names a live (non-zombie) process. Servers that
// daemonise are reparented to init, which in a container may never reap them, so a
// zombie counts as gone.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) {
		return true
	}
	return data[i+2] != 'Z'
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, n)
		}
	}
	return kids
}

// waitGone waits until none of pids is alive, or the timeout passes.
func waitGone(pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, p := range pids {
			if processAlive(p) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: processes %v still alive after %s", alive, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readLines reads the first n lines of a small file.
func readLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// repoRoot finds the directory holding this module's go.mod, walking up from the
// working directory (go test runs in the package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/connectd/connectd")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: not inside the connectd module")
		}
		dir = parent
	}
}

// spawnReqs feeds the spawner goroutine. Servers are started with Pdeathsig so that
// a test binary that dies (go test's timeout panics) takes its servers with it. Linux
// sends that signal when the forking *thread* exits, so every server is forked from
// one goroutine locked to a thread that lives as long as the process.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startServer starts cmd as a long-running server: its own process group, killed
// when the test process dies.
func startServer(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every server
			for r := range spawnReqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnReqs <- r
	return <-r.done
}

// server is a started server process and the outcome of its Wait.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid once exited is closed
}

func launch(cmd *exec.Cmd) (*server, error) {
	if err := startServer(cmd); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends sig and waits up to timeout for the process to exit, then SIGKILLs its
// process group.
func (s *server) stop(sig syscall.Signal, timeout time.Duration) error {
	if !s.running() {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
		return nil
	case <-time.After(timeout):
	}
	s.kill()
	return fmt.Errorf("did not exit within %s of %s; killed", timeout, sig)
}

// kill SIGKILLs the process group and waits for the process to be reaped.
func (s *server) kill() {
	if !s.running() {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// waitReady polls ping until it succeeds, the process exits, timeout passes or ctx ends.
func waitReady(ctx context.Context, s *server, timeout time.Duration, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = ping(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited during startup: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("server not ready: %w (last error: %v)", ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitAllThreadsStopped waits until every thread of pid is in the stopped state.
func waitAllThreadsStopped(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("process %d: no threads to inspect", pid)
		}
		stopped := true
		for _, task := range tasks {
			data, err := os.ReadFile(task)
			if err != nil {
				continue // the thread exited
			}
			i := bytes.LastIndexByte(data, ')')
			if i < 0 || i+2 >= len(data) || (data[i+2] != 'T' && data[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d: not every thread stopped within %s", pid, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
