package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// MariaDBOptions configures StartMariaDB.
type MariaDBOptions struct {
	// ExtraConf holds more server options (name -> value, as in my.cnf), overriding
	// the defaults.
	ExtraConf map[string]string
}

// MariaDB is a MariaDB server started by StartMariaDB, with a row-based binlog and
// strict GTIDs, as the MySQL source needs.
type MariaDB struct {
	// DSN reaches the server over TCP as root with no password, in go-sql-driver
	// form: root@tcp(127.0.0.1:PORT)/.
	DSN string
	// Port is the server's TCP port on 127.0.0.1.
	Port int
	// Dir is the server's temp directory: data/, my.cnf, mariadbd.log and the socket.
	Dir string

	server, client string
	confPath       string
	logPath        string
	acct           account
	proc           *server
}

// StartMariaDB initialises a fresh data directory and starts mariadbd on a free
// loopback port. On failure nothing is left running and the error carries the tail
// of the server log.
func StartMariaDB(ctx context.Context, o MariaDBOptions) (*MariaDB, error) {
	serverBin, installBin, clientBin, err := mariadbBinaries(ctx)
	if err != nil {
		return nil, err
	}
	acct, err := serviceAccount("mysql")
	if err != nil {
		return nil, err
	}
	dir, err := makeTempDir("connectd-mariadb-")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{
		Dir:      dir,
		server:   serverBin,
		client:   clientBin,
		confPath: filepath.Join(dir, "my.cnf"),
		logPath:  filepath.Join(dir, "mariadbd.log"),
		acct:     acct,
	}
	if err := m.initialise(ctx, installBin); err != nil {
		m.Stop()
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if m.Port, lastErr = freePort(); lastErr != nil {
			break
		}
		m.DSN = fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.Port)
		if lastErr = m.writeConf(o); lastErr != nil {
			break
		}
		if lastErr = m.start(ctx); lastErr == nil {
			return m, nil
		}
		if !strings.Contains(logTail(m.logPath, 20), "Address already in use") {
			break
		}
	}
	m.Stop()
	return nil, lastErr
}

func (m *MariaDB) initialise(ctx context.Context, installBin string) error {
	if err := m.acct.chown(m.Dir); err != nil {
		return fmt.Errorf("testenv: mariadb: chown %s: %w", m.Dir, err)
	}
	// "normal" root auth creates root@localhost, root@127.0.0.1 and root@::1 with an
	// empty password, reachable over TCP (the default is unix_socket only).
	cmd := m.acct.command(m.Dir, installBin, "--no-defaults", "--datadir="+filepath.Join(m.Dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := runCtx(ctx, cmd); err != nil {
		return fmt.Errorf("testenv: mariadb: %s in %s: %w\n%s", filepath.Base(installBin), m.Dir, err, out)
	}
	return nil
}

func (m *MariaDB) writeConf(o MariaDBOptions) error {
	conf := map[string]string{
		"datadir":                        filepath.Join(m.Dir, "data"),
		"socket":                         filepath.Join(m.Dir, "mariadbd.sock"),
		"pid-file":                       filepath.Join(m.Dir, "mariadbd.pid"),
		"port":                           fmt.Sprint(m.Port),
		"bind-address":                   "127.0.0.1",
		"skip-name-resolve":              "ON",
		"log_bin":                        "binlog",
		"binlog_format":                  "ROW",
		"binlog_row_image":               "FULL",
		"server_id":                      "1",
		"gtid_strict_mode":               "ON",
		"character_set_server":           "utf8mb4",
		"collation_server":               "utf8mb4_general_ci",
		"default_time_zone":              "+00:00",
		"innodb_buffer_pool_size":        "64M",
		"innodb_log_file_size":           "32M",
		"innodb_flush_log_at_trx_commit": "2",
		"sync_binlog":                    "0",
		"performance_schema":             "OFF",
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
	b.WriteString("[mariadbd]\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, conf[k])
	}
	if err := os.WriteFile(m.confPath, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("testenv: mariadb: write %s: %w", m.confPath, err)
	}
	return nil
}

// start runs mariadbd as a child of the test process and waits until root can
// query it over TCP.
func (m *MariaDB) start(ctx context.Context) error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: mariadb: open log: %w", err)
	}
	defer logf.Close()
	if err := m.acct.chown(m.logPath); err != nil {
		return fmt.Errorf("testenv: mariadb: chown log: %w", err)
	}
	// --defaults-file must come first; the log goes to stderr, which is the log file.
	cmd := m.acct.command(m.Dir, m.server, "--defaults-file="+m.confPath)
	cmd.Stdout = logf
	cmd.Stderr = logf
	proc, err := launch(cmd)
	if err != nil {
		return fmt.Errorf("testenv: mariadb: start %s: %w", m.server, err)
	}
	m.proc = proc
	if err := waitReady(ctx, proc, 60*time.Second, func(ctx context.Context) error {
		_, err := m.Query(ctx, "SELECT 1")
		return err
	}); err != nil {
		proc.kill()
		return fmt.Errorf("testenv: mariadb: start on port %d: %w\nserver log:\n%s", m.Port, err, logTail(m.logPath, 30))
	}
	return nil
}

// Exec runs SQL statements (separated by semicolons) as root.
func (m *MariaDB) Exec(ctx context.Context, sql string) error {
	_, err := m.Query(ctx, sql)
	return err
}

// Query runs SQL as root through the mariadb client and returns its tab-separated
// output without column names, one line per row.
func (m *MariaDB) Query(ctx context.Context, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, m.client, "--no-defaults", "--protocol=TCP", "-h", "127.0.0.1",
		"-P", fmt.Sprint(m.Port), "-u", "root", "--batch", "--skip-column-names", "-e", sql)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testenv: mariadb: query %q: %w: %s", sql, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Stop shuts the server down and removes its directory. It is safe to call more
// than once.
func (m *MariaDB) Stop() error {
	var errs []error
	if m.proc != nil && m.proc.running() {
		if err := m.proc.stop(syscall.SIGTERM, 60*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("testenv: mariadb: stop: %w", err))
		}
	}
	if err := os.RemoveAll(m.Dir); err != nil {
		errs = append(errs, fmt.Errorf("testenv: mariadb: remove %s: %w", m.Dir, err))
	}
	return errors.Join(errs...)
}

// Restart stops the server (if it runs) and starts it again on the same port with
// the same data; after Kill it runs crash recovery.
func (m *MariaDB) Restart(ctx context.Context) error {
	if m.proc != nil && m.proc.running() {
		if err := m.proc.stop(syscall.SIGTERM, 60*time.Second); err != nil {
			return fmt.Errorf("testenv: mariadb: stop for restart: %w", err)
		}
	}
	return m.start(ctx)
}

// Kill SIGKILLs the server, as a crash would, and waits until it is gone.
func (m *MariaDB) Kill() {
	if m.proc != nil {
		m.proc.kill()
	}
}

// mariadbBinaries finds mariadbd, its install-db script and the client, installing
// the distribution's server package when they are missing and we are root.
func mariadbBinaries(ctx context.Context) (server, install, client string, err error) {
	find := func() (string, string, string) {
		return lookFirst("mariadbd", "mysqld"), lookFirst("mariadb-install-db", "mysql_install_db"), lookFirst("mariadb", "mysql")
	}
	server, install, client = find()
	if (server == "" || install == "" || client == "") && os.Geteuid() == 0 {
		if _, lerr := exec.LookPath("apt-get"); lerr == nil {
			if ierr := aptInstall(ctx, "mariadb-server", "mariadb-client"); ierr != nil {
				return "", "", "", fmt.Errorf("testenv: mariadb: binaries missing and apt-get install failed: %w", ierr)
			}
			server, install, client = find()
		}
	}
	if server == "" || install == "" || client == "" {
		return "", "", "", fmt.Errorf("testenv: mariadb: need mariadbd (%q), mariadb-install-db (%q) and mariadb (%q); install mariadb-server", server, install, client)
	}
	return server, install, client, nil
}

// lookFirst returns the first of names found on PATH or in the sbin folders, which
// a non-root PATH often lacks.
func lookFirst(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	return ""
}
