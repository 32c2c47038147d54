package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/testenv"
	"github.com/connectd/connectd/internal/testenv/lakedb"
)

// freeAddr returns a loopback address nobody listens on (for a moment).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// get fetches a URL and returns the status code and body; code 0 if unreachable.
func get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connectorView is the part of a /v1/connectors entry the test reads.
type connectorView struct {
	Name              string `json:"name"`
	State             string `json:"state"`
	Phase             string `json:"phase"`
	CommittedPosition string `json:"committed_position"`
	LastError         string `json:"last_error"`
	RecordsTotal      int64  `json:"records_total"`
}

// TestStatusAPI reads the status API of a running connectd: health, readiness, the
// connector's phase and committed position, and the records metric.
func TestStatusAPI(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_status")
	mustExec(t, conn, `CREATE TABLE public.things (id int PRIMARY KEY, v text);
INSERT INTO public.things SELECT g, 'v' || g FROM generate_series(1, 30) g`)
	p := newPipe(t, "status_api", dsn, false, "public.things")
	p.listen = freeAddr(t)
	p.writeConfig(t)
	base := "http://" + p.listen
	db := lakedb.DuckDB(t)
	dir := lakeTable(p.lakeDir, "public", "things")
	d := startRun(t, p.config)

	waitFor(t, 30*time.Second, d, "GET /healthz to answer 200", func() (bool, string) {
		code, body := get(base + "/healthz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	view := func() (connectorView, string) {
		code, body := get(base + "/v1/connectors")
		var all []connectorView
		if code != 200 {
			return connectorView{}, fmt.Sprintf("%d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &all); err != nil {
			return connectorView{}, fmt.Sprintf("bad JSON (%v): %s", err, body)
		}
		for _, v := range all {
			if v.Name == p.name {
				return v, body
			}
		}
		return connectorView{}, "connector missing: " + body
	}
	waitFor(t, 60*time.Second, d, "the snapshot in the lake and the connector streaming", func() (bool, string) {
		v, body := view()
		return v.Phase == "streaming" && v.CommittedPosition != "" && lakeCount(t, db, dir) == 30, body
	})
	if code, body := get(base + "/readyz"); code != 200 {
		t.Errorf("GET /readyz while streaming: %d %s", code, body)
	}

	mustExec(t, conn, "INSERT INTO public.things SELECT g, 'v' || g FROM generate_series(31, 40) g; UPDATE public.things SET v = 'x' WHERE id <= 5")
	const total = 30 + 10 + 5
	waitFor(t, 60*time.Second, d, fmt.Sprintf("%d rows in the lake", total), func() (bool, string) {
		n := lakeCount(t, db, dir)
		return n == total, fmt.Sprintf("%d rows in the lake", n)
	})
	rows := readTable(t, db, dir)
	last := rows[len(rows)-1].val("_pos")
	waitFor(t, 30*time.Second, d, "committed_position to reach the last record in the lake", func() (bool, string) {
		v, body := view()
		return v.CommittedPosition >= last, fmt.Sprintf("last _pos in the lake %s; %s", last, body)
	})
	v, body := view()
	if v.State != "running" || v.Phase != "streaming" || v.LastError != "" {
		t.Errorf("/v1/connectors: want state running, phase streaming, no error; got %s", body)
	}
	if v.RecordsTotal != total {
		t.Errorf("/v1/connectors: records_total %d, want %d (the records in the lake)", v.RecordsTotal, total)
	}

	code, metrics := get(base + "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, metrics)
	}
	re := regexp.MustCompile(`(?m)^connectd_records_written_total\{[^}]*connector="` + regexp.QuoteMeta(p.name) + `"[^}]*\} (\S+)$`)
	var written float64
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("metric %q: %v", m[0], err)
		}
		written += f // summed over tables when the metric has a table label
	}
	if written != total {
		var lines []string
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "connectd_records") {
				lines = append(lines, l)
			}
		}
		t.Errorf("connectd_records_written_total for %s = %v, want %d (the records in the lake):\n%s", p.name, written, total, strings.Join(lines, "\n"))
	}

	d.stopClean(t)
	if code, _ := get(base + "/healthz"); code != 0 {
		t.Errorf("the status server still answers after connectd exited (%d)", code)
	}
}
