package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/pipeline"
	"github.com/connectd/connectd/record"
)

// The status API must accept what the pipeline and sources report.
var _ pipeline.Observer = (*Connector)(nil)

// clock is a settable time source, so no test depends on the wall clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestRegistry() (*Registry, *clock) {
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	r := New(nil)
	r.now = clk.now
	return r, clk
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthz(t *testing.T) {
	r, _ := newTestRegistry()
	code, body := get(t, r.Handler(), "/healthz")
	if code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("healthz = %d %q", code, body)
	}
}

func TestReadyzNamesConnectorsNotRunning(t *testing.T) {
	r, _ := newTestRegistry()
	h := r.Handler()
	orders, shop := r.Observer("orders"), r.Observer("shop")

	code, body := get(t, h, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"orders"`) || !strings.Contains(body, `"shop"`) {
		t.Fatalf("before start: %d %s", code, body)
	}
	orders.SetState(pipeline.StateRunning, nil)
	orders.SetPhase(PhaseSnapshot)
	shop.SetState(pipeline.StateDone, nil)
	if code, body := get(t, h, "/readyz"); code != 200 {
		t.Fatalf("running and done: %d %s", code, body)
	}
	shop.SetState(pipeline.StateFailed, errors.New("wal_level is replica"))
	code, body = get(t, h, "/readyz")
	var got struct {
		Ready    bool       `json:"ready"`
		NotReady []notReady `json:"not_ready"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if code != 503 || got.Ready || len(got.NotReady) != 1 || got.NotReady[0].Name != "shop" ||
		got.NotReady[0].State != "failed" || got.NotReady[0].LastError != "wal_level is replica" {
		t.Fatalf("after failure: %d %s", code, body)
	}
}

func TestConnectorsJSON(t *testing.T) {
	r, clk := newTestRegistry()
	h := r.Handler()
	c := r.Observer("orders")
	c.SetState(pipeline.StateRunning, nil)
	c.SetPhase(PhaseSnapshot)
	c.SnapshotProgress("public.orders", 1200, 5000)
	c.SnapshotProgress("public.lines", 10, 0)
	c.Read(1210)
	c.Written(1210, 50000)
	c.Flushed(1210, 50000, 300*time.Millisecond)
	c.Committed(record.Position{0x01, 0xab}, clk.now().Add(-time.Minute))

	var views []map[string]any
	code, body := get(t, h, "/v1/connectors")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if err := json.Unmarshal([]byte(body), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 1 {
		t.Fatalf("%d connectors, want 1", len(views))
	}
	v := views[0]
	for _, k := range []string{"name", "state", "phase", "source_position", "committed_position", "lag_bytes",
		"lag_seconds", "retained_wal_bytes", "unconfirmed_wal_bytes", "snapshot", "last_error", "records_total", "flushes_total", "updated_at"} {
		if _, ok := v[k]; !ok {
			t.Errorf("key %q missing from %s", k, body)
		}
	}
	if v["name"] != "orders" || v["state"] != "running" || v["phase"] != "snapshot" ||
		v["committed_position"] != "01ab" || v["records_total"] != 1210.0 || v["flushes_total"] != 1.0 {
		t.Errorf("unexpected values: %s", body)
	}
	if v["lag_seconds"] != nil {
		t.Errorf("lag_seconds = %v during a snapshot, want null", v["lag_seconds"])
	}
	if v["retained_wal_bytes"] != nil {
		t.Errorf("retained_wal_bytes = %v before the source measured it, want null", v["retained_wal_bytes"])
	}
	snap := v["snapshot"].([]any)
	first := snap[0].(map[string]any)
	if len(snap) != 2 || first["table"] != "public.orders" || first["rows"] != 1200.0 || first["total"] != 5000.0 || first["percent"] != 24.0 {
		t.Errorf("snapshot = %v", snap)
	}

	c.SetPhase(PhaseStreaming)
	c.SourceLag(4096, 2)
	c.SourcePosition("0/16B3748")
	c.SourceRetained(1<<20, 512)
	c.Read(5)
	views = nil
	_, body = get(t, h, "/v1/connectors")
	if err := json.Unmarshal([]byte(body), &views); err != nil {
		t.Fatal(err)
	}
	v = views[0]
	if v["lag_seconds"] != 60.0 || v["lag_bytes"] != 4096.0 || v["source_position"] != "0/16B3748" {
		t.Errorf("streaming: lag_seconds=%v lag_bytes=%v source_position=%v", v["lag_seconds"], v["lag_bytes"], v["source_position"])
	}
	if v["retained_wal_bytes"] != float64(1<<20) || v["unconfirmed_wal_bytes"] != 512.0 {
		t.Errorf("streaming: retained_wal_bytes=%v unconfirmed_wal_bytes=%v", v["retained_wal_bytes"], v["unconfirmed_wal_bytes"])
	}
	if p := v["snapshot"].([]any)[0].(map[string]any)["percent"]; p != 100.0 {
		t.Errorf("snapshot percent once streaming = %v, want 100", p)
	}
}

func TestIdleCaughtUpConnectorHasNoLag(t *testing.T) {
	r, clk := newTestRegistry()
	c := r.Observer("orders")
	c.SetPhase(PhaseStreaming)
	c.Read(3)
	c.Flushed(3, 300, time.Millisecond)
	c.Committed(record.Position{1}, clk.now())
	clk.add(time.Hour)
	if s, _ := c.lagSeconds(clk.now()); s != 3600 {
		t.Errorf("lag before the source reports being caught up = %v, want 3600", s)
	}
	c.SourceLag(0, 0)
	if s, ok := c.lagSeconds(clk.now()); !ok || s != 0 {
		t.Errorf("caught-up idle lag = %v %v, want 0", s, ok)
	}
	c.Read(1) // read but not yet flushed: the hour counts again
	if s, _ := c.lagSeconds(clk.now()); s != 3600 {
		t.Errorf("lag with unflushed records = %v, want 3600", s)
	}
}

func TestMetricsExposeSeries(t *testing.T) {
	r, clk := newTestRegistry()
	c := r.Observer("orders")
	c.SetState(pipeline.StateRunning, nil)
	c.SetPhase(PhaseSnapshot)
	c.SnapshotProgress("public.orders", 1200, 5000)
	c.Read(7)
	c.Written(7, 700)
	c.Flushed(7, 700, 250*time.Millisecond)
	c.SourceLag(123, 1)
	c.SourceRetained(65536, 4096)
	c.Committed(record.Position{1}, clk.now().Add(-10*time.Second))
	c.SetPhase(PhaseStreaming)
	r.Observer("shop").SetState(pipeline.StateRetrying, errors.New("connection refused"))

	code, body := get(t, r.Handler(), "/metrics")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	for _, want := range []string{
		`connectd_records_read_total{connector="orders"} 7`,
		`connectd_records_written_total{connector="orders"} 7`,
		`connectd_bytes_written_total{connector="orders"} 700`,
		`connectd_flushes_total{connector="orders"} 1`,
		`connectd_flush_duration_seconds_count{connector="orders"} 1`,
		`connectd_commit_lag_seconds{connector="orders"} 10`,
		`connectd_source_lag_bytes{connector="orders"} 123`,
		`connectd_source_retained_bytes{connector="orders"} 65536`,
		`connectd_source_unconfirmed_bytes{connector="orders"} 4096`,
		`connectd_errors_total{connector="shop"} 1`,
		`connectd_snapshot_rows{connector="orders",table="public.orders"} 1200`,
		`connectd_snapshot_rows_total_estimate{connector="orders",table="public.orders"} 5000`,
		`connectd_connector_up{connector="orders"} 1`,
		`connectd_connector_up{connector="shop"} 0`,
	} {
		if !strings.Contains("\n"+body, "\n"+want+"\n") {
			t.Errorf("metrics lack the line %q", want)
		}
	}
	if !strings.Contains(body, "\ngo_goroutines ") {
		t.Error("metrics lack the Go runtime collector")
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	a, b := New(nil), New(nil)
	a.Observer("orders").Read(5)
	b.Observer("orders").Read(1)
	_, body := get(t, b.Handler(), "/metrics")
	if !strings.Contains(body, `connectd_records_read_total{connector="orders"} 1`+"\n") {
		t.Errorf("second registry shows another's counts:\n%s", body)
	}
	if first := a.Observer("orders"); a.Observer("orders") != first {
		t.Error("Observer returns a new state for a known connector")
	}
}

// TestSnapshotRateFollowsTheReadsAndGivesAnETA: the rate is a moving average that
// moves to a new speed within a few of its windows, the ETA is the rows left at that
// rate, and both show in the status API and the metrics; a resumed snapshot's rate
// leaves out the rows read before it.
func TestSnapshotRateFollowsTheReadsAndGivesAnETA(t *testing.T) {
	r, clk := newTestRegistry()
	c := r.Observer("orders")
	c.SetPhase(PhaseSnapshot)
	c.SnapshotProgress("public.orders", 400_000, 2_000_000) // resumed: 400k read before
	rows := int64(400_000)
	for range 10 { // 10k rows/s for 10 s
		clk.add(time.Second)
		rows += 10_000
		c.SnapshotProgress("public.orders", rows, 2_000_000)
	}
	if v := r.Views()[0].Snapshot[0]; v.RowsPerSecond != 10_000 || v.ETASeconds == nil || *v.ETASeconds != 150 {
		t.Fatalf("at 10k rows/s: %+v, want 10000 rows/s and 150 s left", v)
	}
	for range 60 { // then 40k rows/s for a minute
		clk.add(time.Second)
		rows += 40_000
		c.SnapshotProgress("public.orders", rows, 2_000_000)
	}
	v := r.Views()[0].Snapshot[0]
	if v.RowsPerSecond < 39_000 || v.RowsPerSecond > 40_000 {
		t.Errorf("after a minute at 40k rows/s the rate is %v", v.RowsPerSecond)
	}
	if v.ETASeconds != nil {
		t.Errorf("the estimate is passed (%d of %d rows), yet ETA %v", v.Rows, v.Total, *v.ETASeconds)
	}
	c.SnapshotProgress("public.orders", rows, 4_000_000)
	_, body := get(t, r.Handler(), "/metrics")
	for _, want := range []string{`connectd_snapshot_rows_per_second{connector="orders",table="public.orders"} 39`, `connectd_snapshot_eta_seconds{connector="orders",table="public.orders"} 27.`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s...:\n%s", want, body)
		}
	}
	_, body = get(t, r.Handler(), "/v1/connectors")
	if !strings.Contains(body, `"rows_per_second": 39`) || !strings.Contains(body, `"eta_seconds": 28`) {
		t.Errorf("status API lacks the rate or the ETA:\n%s", body)
	}
	c.SetPhase(PhaseStreaming)
	if v := r.Views()[0].Snapshot[0]; v.ETASeconds != nil {
		t.Errorf("streaming, yet ETA %v", *v.ETASeconds)
	}
}

func TestServeShutsDownOnCancel(t *testing.T) {
	r, _ := newTestRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, r.Handler(), nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(b)) != "ok" {
		t.Errorf("healthz over TCP: %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after cancel = %v, want nil", err)
	}
	// The address is taken while ln is open elsewhere: Serve must say so.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if err := Serve(context.Background(), ln2.Addr().String(), r.Handler(), nil); err == nil || !strings.Contains(err.Error(), "status: listen") {
		t.Errorf("Serve on a busy address = %v", err)
	}
}
