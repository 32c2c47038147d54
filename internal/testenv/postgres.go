package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"
)

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// WalLevel is the server's wal_level; empty means "logical".
	WalLevel string
	// ExtraConf holds more postgresql.conf settings (name -> value, quoted as needed
	// by the caller: {"wal_sender_timeout": "'5s'"}). They override the defaults.
	ExtraConf map[string]string
}

// Postgres is a PostgreSQL server started by StartPostgres.
type Postgres struct {
	// DSN reaches the server over TCP as the superuser "postgres" (trust auth).
	DSN string
	// Port is the server's TCP port on 127.0.0.1.
	Port int
	// Dir is the server's temp directory: data/ (PGDATA), postgres.log and the socket.
	Dir string
	// BinDir holds the server's binaries (psql, pg_ctl, pg_dump, ...).
	BinDir string

	dataDir string
	logPath string
	acct    account
	proc    *server
}

// StartPostgres initialises a fresh cluster in a temp directory and starts it on a
// free loopback port with logical replication enabled. On failure nothing is left
// running and the error carries the tail of the server log.
func StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	bin, err := postgresBinDir(ctx)
	if err != nil {
		return nil, err
	}
	acct, err := serviceAccount("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("connectd-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Dir: dir, BinDir: bin, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "postgres.log"), acct: acct}
	if err := p.start(ctx, o); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) start(ctx context.Context, o PostgresOptions) error {
	if err := p.acct.chown(p.Dir); err != nil {
		return fmt.Errorf("testenv: postgres: chown %s: %w", p.Dir, err)
	}
	initdb := p.acct.command(p.Dir, filepath.Join(p.BinDir, "initdb"),
		"-D", p.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := runCtx(ctx, initdb); err != nil {
		return fmt.Errorf("testenv: postgres: initdb in %s: %w\n%s", p.dataDir, err, out)
	}
	walLevel := o.WalLevel
	if walLevel == "" {
		walLevel = "logical"
	}
	conf := map[string]string{
		"listen_addresses":           "'127.0.0.1'",
		"unix_socket_directories":    "'" + p.Dir + "'",
		"wal_level":                  walLevel,
		"max_replication_slots":      "20",
		"max_wal_senders":            "20",
		"fsync":                      "off",
		"synchronous_commit":         "off",
		"full_page_writes":           "off",
		"shared_buffers":             "32MB",
		"max_connections":            "50",
		"dynamic_shared_memory_type": "mmap", // keeps segments in PGDATA, not /dev/shm, so Kill leaks nothing
		"timezone":                   "'UTC'",
		"log_timezone":               "'UTC'",
		"logging_collector":          "off",
	}
	for k, v := range o.ExtraConf {
		conf[k] = v
	}
	keys := make([]string, 0, len(conf))
	for k := range conf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("\n# connectd testenv\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	if err := appendFile(filepath.Join(p.dataDir, "postgresql.conf"), b.String()); err != nil {
		return fmt.Errorf("testenv: postgres: write config: %w", err)
	}

	// The free port may be taken by someone else between our probe and the bind;
	// a later "port" line overrides an earlier one, so each retry just appends.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		if err := appendFile(filepath.Join(p.dataDir, "postgresql.conf"), fmt.Sprintf("port = %d\n", port)); err != nil {
			return fmt.Errorf("testenv: postgres: write config: %w", err)
		}
		p.Port = port
		p.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		lastErr = p.startPostmaster(ctx)
		if lastErr == nil {
			return nil
		}
		if tail := logTail(p.logPath, 20); !strings.Contains(tail, "could not bind") && !strings.Contains(tail, "could not create any TCP/IP sockets") {
			return lastErr
		}
	}
	return lastErr
}

// startPostmaster runs the postmaster as a child of the test process (not through
// pg_ctl, which daemonises it: an orphan killed by Kill would stay a zombie under a
// container's init that does not reap, and PostgreSQL takes a zombie's pid in
// postmaster.pid for a live server) and waits until it accepts connections.
func (p *Postgres) startPostmaster(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: postgres: open log: %w", err)
	}
	defer logf.Close()
	if err := p.acct.chown(p.logPath); err != nil {
		return fmt.Errorf("testenv: postgres: chown log: %w", err)
	}
	cmd := p.acct.command(p.Dir, filepath.Join(p.BinDir, "postgres"), "-D", p.dataDir)
	cmd.Stdout = logf
	cmd.Stderr = logf
	proc, err := launch(cmd)
	if err != nil {
		return fmt.Errorf("testenv: postgres: start %s: %w", cmd.Path, err)
	}
	p.proc = proc
	if err := waitReady(ctx, proc, 60*time.Second, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, p.DSN)
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	}); err != nil {
		proc.kill()
		return fmt.Errorf("testenv: postgres: start on port %d: %w\nserver log:\n%s", p.Port, err, logTail(p.logPath, 30))
	}
	return nil
}

// Stop shuts the server down (fast mode, or SIGKILL if that hangs) and removes its
// directory. It is safe to call more than once.
func (p *Postgres) Stop() error {
	var errs []error
	if p.proc != nil && p.proc.running() {
		// SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
		if err := p.proc.stop(syscall.SIGINT, 60*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("testenv: postgres: stop: %w", err))
			p.Kill()
		}
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testenv: postgres: remove %s: %w", p.Dir, err))
	}
	return errors.Join(errs...)
}

// Restart stops the server (if it runs) and starts it again on the same port with
// the same data, as after a clean reboot or, following Kill, a crash.
func (p *Postgres) Restart(ctx context.Context) error {
	if p.proc != nil && p.proc.running() {
		if err := p.proc.stop(syscall.SIGINT, 60*time.Second); err != nil {
			return fmt.Errorf("testenv: postgres: stop for restart: %w", err)
		}
	}
	return p.startPostmaster(ctx)
}

// Kill SIGKILLs the postmaster and every backend at once, as a power loss would, and
// waits until they are gone. The data directory stays; Restart runs crash recovery.
func (p *Postgres) Kill() {
	if p.proc == nil || !p.proc.running() {
		return
	}
	pid := p.proc.pid()
	shmID := p.sysvShmID()
	// Freeze the postmaster so it cannot fork a child we would miss. Backends are
	// session leaders of their own, so the postmaster's process group misses them.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := childPIDs(pid)
	for _, q := range kids {
		_ = syscall.Kill(q, syscall.SIGKILL)
	}
	p.proc.kill()
	_ = waitGone(kids, 30*time.Second)
	// The interlock segment outlives its processes (a clean shutdown removes it);
	// a backend still attached would make the next start refuse to run.
	if shmID >= 0 {
		_, _ = unix.SysvShmCtl(shmID, unix.IPC_RMID, nil)
	}
}

// Exec runs one SQL statement on the postgres database as the superuser.
func (p *Postgres) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		return fmt.Errorf("testenv: postgres: connect %s: %w", p.DSN, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("testenv: postgres: exec %q: %w", sql, err)
	}
	return nil
}

// CreateDatabase creates a database and returns the superuser DSN of it.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := p.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	u, err := url.Parse(p.DSN)
	if err != nil {
		return "", fmt.Errorf("testenv: postgres: parse DSN %s: %w", p.DSN, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Psql returns the path of the psql binary that matches the server.
func (p *Postgres) Psql() string { return filepath.Join(p.BinDir, "psql") }

// postmasterPID is the running postmaster's pid; 0 if it is not running.
func (p *Postgres) postmasterPID() int {
	if p.proc == nil || !p.proc.running() {
		return 0
	}
	return p.proc.pid()
}

// sysvShmID reads the id of the postmaster's System V interlock segment from line 7
// of postmaster.pid ("key id"); -1 if unknown.
func (p *Postgres) sysvShmID() int {
	lines, err := readLines(filepath.Join(p.dataDir, "postmaster.pid"), 7)
	if err != nil || len(lines) < 7 {
		return -1
	}
	f := strings.Fields(lines[6])
	if len(f) != 2 {
		return -1
	}
	id, err := strconv.Atoi(f[1])
	if err != nil {
		return -1
	}
	return id
}

// postgresBinDir finds the directory with initdb and pg_ctl, installing PostgreSQL
// from the distribution when there is none and we are root.
func postgresBinDir(ctx context.Context) (string, error) {
	if dir := findPostgresBinDir(); dir != "" {
		return dir, nil
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			if err := aptInstall(ctx, "postgresql"); err != nil {
				return "", fmt.Errorf("testenv: postgres: no PostgreSQL binaries and apt-get install failed: %w", err)
			}
			if dir := findPostgresBinDir(); dir != "" {
				return dir, nil
			}
		}
	}
	return "", errors.New("testenv: postgres: no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config, in /usr/lib/postgresql/*/bin or on PATH; install the postgresql package")
}

func findPostgresBinDir() string {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, b)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real)
		}
	}
	return ""
}

// pgMajor extracts the major version from /usr/lib/postgresql/<v>/bin.
func pgMajor(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// aptInstall installs Debian packages, refreshing the package lists if the first
// try fails (a fresh machine may have none).
func aptInstall(ctx context.Context, pkgs ...string) error {
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if _, err := install(); err == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w: %s", err, out)
	}
	if out, err := install(); err != nil {
		return fmt.Errorf("apt-get install %s: %w: %s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// runCtx runs cmd, killing it if ctx ends, and returns its combined output.
func runCtx(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return []byte(out.String()), err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done //nolint:errcheck // the kill's own error
		return []byte(out.String()), ctx.Err()
	}
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
