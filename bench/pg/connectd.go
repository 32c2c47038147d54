package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/connectd/connectd/internal/testenv"
)

// connectorConfig is one connector of a generated connectd config file.
type connectorConfig struct {
	name      string // slot and publication default to connectd_<name>
	table     string // schema.table
	snapshot  string // initial_only | never
	heartbeat string // empty: not set
	extra     string // one more source key, "key: value"; empty: none
}

// procResult is what one connectd process cost.
type procResult struct {
	wall     time.Duration
	maxRSS   int64 // bytes
	cpuUser  time.Duration
	cpuSys   time.Duration
	logPath  string
	lakeDir  string
	lakeRows int64
	lakeSize int64
	files    int
	// From the JSON log: "snapshot complete" elapsed, and the time from the
	// "streaming" line to the process exit.
	snapshotElapsed time.Duration
	streamElapsed   time.Duration
}

func (r procResult) rssMiB() float64 { return float64(r.maxRSS) / (1 << 20) }

// writeConfig writes a config for one connector into its own directory (offsets and
// lake inside) and returns the config path.
func (b *bench) writeConfig(c connectorConfig) (string, error) {
	dir := filepath.Join(b.tmp, c.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	hb := ""
	if c.heartbeat != "" {
		hb = "\n      heartbeat: " + c.heartbeat
	}
	if c.extra != "" {
		hb += "\n      " + c.extra
	}
	// The flush limits are the documented defaults, written out so the figures say
	// what they were measured with.
	cfg := fmt.Sprintf(`offsets: file://%s/offsets
connectors:
  %s:
    source:
      type: postgres
      dsn: %s
      tables: [%s]
      snapshot: %s%s
    destination:
      type: parquet
      url: file://%s/lake
      flush: {rows: 1000000, bytes: 128MiB, interval: 60s}
`, dir, c.name, b.pg.DSN, c.table, c.snapshot, hb, dir)
	path := filepath.Join(dir, "connectd.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o600)
}

// startConnectd starts `connectd <cmd>` on a config, with JSON logs into a file.
func (b *bench) startConnectd(ctx context.Context, c connectorConfig, command string) (*exec.Cmd, string, error) {
	return b.startConnectdOut(ctx, c, command, command, nil)
}

// startConnectdOut starts `connectd <cmd> <extra>...` with its output into <logName>.log
// in the connector's directory; stdout, when not nil, gets the standard output apart.
func (b *bench) startConnectdOut(ctx context.Context, c connectorConfig, command, logName string, stdout *os.File, extra ...string) (*exec.Cmd, string, error) {
	cfg, err := b.writeConfig(c)
	if err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(filepath.Dir(cfg), logName+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	args := append([]string{b.bin, command, "-c", cfg, "--log-format", "json"}, extra...)
	if b.o.wrap != "" && command == "sync" {
		// The wrapper (perf, strace) is the direct child then: its rusage, not
		// connectd's, is measured.
		w := strings.Fields(strings.ReplaceAll(b.o.wrap, "{dir}", filepath.Dir(cfg)))
		args = append(w, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", fmt.Errorf("start connectd %s: %w", command, err)
	}
	// The child holds its own descriptor; ours is not needed any more.
	logFile.Close()
	return cmd, logPath, nil
}

// syncConnectd runs `connectd sync` to completion and measures it.
func (b *bench) syncConnectd(ctx context.Context, c connectorConfig) (procResult, error) {
	start := time.Now()
	cmd, logPath, err := b.startConnectd(ctx, c, "sync")
	if err != nil {
		return procResult{}, err
	}
	werr := cmd.Wait()
	end := time.Now()
	res := usage(cmd)
	res.wall = end.Sub(start)
	res.logPath = logPath
	if werr != nil {
		return res, fmt.Errorf("connectd sync %s: %w\nlog tail:\n%s", c.name, werr, testenv.FileTail(logPath, 30))
	}
	res.snapshotElapsed, res.streamElapsed = parseLog(logPath, end)
	res.lakeDir = filepath.Join(b.tmp, c.name, "lake")
	if res.lakeRows, res.lakeSize, res.files, err = testenv.CountLake(res.lakeDir); err != nil {
		return res, err
	}
	return res, nil
}

func usage(cmd *exec.Cmd) procResult {
	u := testenv.UsageOf(cmd.ProcessState)
	return procResult{maxRSS: u.MaxRSS, cpuUser: u.User, cpuSys: u.Sys}
}

// parseLog reads the JSON log lines the figures need.
func parseLog(path string, exit time.Time) (snapshot, stream time.Duration) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Elapsed *int64    `json:"elapsed"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch line.Msg {
		case "snapshot complete":
			if line.Elapsed != nil {
				snapshot = time.Duration(*line.Elapsed)
			}
		case "streaming":
			stream = exit.Sub(line.Time)
		}
	}
	return snapshot, stream
}
