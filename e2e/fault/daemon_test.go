package fault

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/offsets"
)

// daemon runs `connectd run` for one test, again and again: every start appends the
// process's output to one log file, so a failure can show what the runs said.
type daemon struct {
	bin     string // the connectd binary: connectdBin unless the test needs another
	config  string
	listen  string
	logPath string
	runs    int
	killed  bool // the last run ended by kill or stop, not on its own

	proc *testenv.Process // the last run; nil before the first
}

func newDaemon(t *testing.T, config, listen, logPath string) *daemon {
	d := &daemon{bin: connectdBin, config: config, listen: listen, logPath: logPath}
	t.Cleanup(func() {
		if d.running() {
			d.proc.Kill()
		}
	})
	return d
}

// start starts a new `connectd run`.
func (d *daemon) start(t *testing.T) {
	t.Helper()
	if d.running() {
		t.Fatal("daemon: start while running")
	}
	d.runs++
	d.killed = false
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "===== run %d, %s\n", d.runs, time.Now().UTC().Format(time.RFC3339Nano))
	p, err := testenv.Connectd{Bin: d.bin}.Start(logf, logf, "run", "-c", d.config, "--log-format", "json")
	if err != nil {
		logf.Close()
		t.Fatalf("start connectd run: %v", err)
	}
	// The child holds its own descriptor of the log.
	logf.Close()
	d.proc = p
}

func (d *daemon) running() bool { return d.proc != nil && d.proc.Running() }

func (d *daemon) pid() int { return d.proc.Pid() }

// err is how the last run ended (nil: exit 0, or never started); valid once it is
// not running.
func (d *daemon) err() error {
	if d.proc == nil {
		return nil
	}
	return d.proc.Err()
}

// kill SIGKILLs the daemon and waits until it is gone. It fails the test if the daemon
// had already exited on its own: `run` must not give up on transient faults.
func (d *daemon) kill(t *testing.T) {
	t.Helper()
	if !d.running() {
		t.Fatalf("connectd run exited on its own before the kill (%v); log tail:\n%s", d.err(), d.logTail(80))
	}
	d.killed = true
	d.proc.Kill()
}

// stop sends SIGTERM and waits; a clean stop exits 0.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if !d.running() {
		t.Fatalf("connectd run exited on its own (%v); log tail:\n%s", d.err(), d.logTail(80))
	}
	d.killed = true
	d.proc.Signal(syscall.SIGTERM)
	if !d.proc.Wait(3 * time.Minute) {
		d.proc.Kill()
		t.Fatalf("connectd run did not exit within 3m of SIGTERM; log tail:\n%s", d.logTail(80))
	}
	if d.err() != nil {
		t.Errorf("connectd run after SIGTERM: %v, want exit 0; log tail:\n%s", d.err(), d.logTail(80))
	}
}

// waitMetricMoves waits until the metric name{connector="conn"} moves past the first
// value read, the daemon exits, or timeout passes.
func (d *daemon) waitMetricMoves(name, conn string, timeout, poll time.Duration) {
	base := -1.0
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && d.running() {
		v, err := d.metric(name, conn)
		if err == nil {
			if base < 0 {
				base = v
			} else if v > base {
				return
			}
		}
		time.Sleep(poll)
	}
}

// waitChange polls probe until it answers other than it first did, the daemon exits,
// or timeout passes.
func (d *daemon) waitChange(timeout, poll time.Duration, probe func() string) {
	base := probe()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && d.running() && probe() == base {
		time.Sleep(poll)
	}
}

// logTail is the last n lines of the log file.
func (d *daemon) logTail(n int) string {
	return testenv.FileTail(d.logPath, n)
}

// connectorView is the part of a /v1/connectors entry the suite reads.
type connectorView struct {
	Name              string `json:"name"`
	State             string `json:"state"`
	Phase             string `json:"phase"`
	CommittedPosition string `json:"committed_position"`
	LastError         string `json:"last_error"`
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// connectors reads GET /v1/connectors; an error while the daemon starts up.
func (d *daemon) connectors() ([]connectorView, error) {
	resp, err := httpClient.Get("http://" + d.listen + "/v1/connectors")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /v1/connectors: %d %s", resp.StatusCode, body)
	}
	var all []connectorView
	if err := json.Unmarshal(body, &all); err != nil {
		return nil, fmt.Errorf("GET /v1/connectors: %v: %s", err, body)
	}
	return all, nil
}

// metric reads one sample of /metrics: name{connector="conn"}.
func (d *daemon) metric(name, conn string) (float64, error) {
	resp, err := httpClient.Get("http://" + d.listen + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	want := fmt.Sprintf(`connector="%s"`, conn)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, want) {
			continue
		}
		f := strings.Fields(line)
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("metric %s{%s} not found", name, want)
}

// rss is the daemon's resident set size in bytes (VmRSS).
func (d *daemon) rss() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB`).FindSubmatch(data)
	if m == nil {
		return 0, errors.New("no VmRSS in /proc status")
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024, err
}

// freeAddr returns a loopback address nobody listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// committed reads the connector's committed position (hex) from the offsets store
// connectd uses; "" when it has none. The store may be down for a moment (a fault
// restarting the database that holds it): it is asked again for up to a minute.
func committed(t *testing.T, store offsets.Store, conn string) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		pos, err := store.Load(ctx, conn)
		cancel()
		if err == nil {
			if pos == nil {
				return ""
			}
			return pos.String()
		}
		if time.Now().After(deadline) {
			// A torn offset would be a bug of its own (commits are atomic).
			t.Fatalf("committed position of %s: %v", conn, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// snapshotDone reports whether a committed position (hex) lies past the end of the
// initial snapshot. Both sources (see sources/postgres and sources/mysql position.go)
// start snapshot positions with 0x01 and stream positions with 0x02, and mark the
// snapshot's last record with 0xff as its 18th byte.
func snapshotDone(pos string) bool {
	pos = strings.ToLower(pos)
	return strings.HasPrefix(pos, "02") || (strings.HasPrefix(pos, "01") && len(pos) >= 36 && pos[34:36] == "ff")
}

// runCmd runs a connectd command to completion with a generous timeout.
func runCmd(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	return runCmdWith(t, connectdBin, timeout, args...)
}

// runCmdWith is runCmd with another binary.
func runCmdWith(t *testing.T, bin string, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	r, err := testenv.Connectd{Bin: bin}.RunCombined(timeout, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.TimedOut {
		t.Fatalf("connectd %s did not exit within %s\n%s", strings.Join(args, " "), timeout, tailString(r.Stdout, 80))
	}
	return r.Code, r.Stdout
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
