package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// verifyStatus is the verify object of a /v1/connectors entry.
type verifyStatus struct {
	LastRun time.Time `json:"last_run"`
	Equal   bool      `json:"equal"`
	Error   string    `json:"error"`
	Tables  []struct {
		Table           string `json:"table"`
		Equal           bool   `json:"equal"`
		SourceRows      int64  `json:"source_rows"`
		DestinationRows int64  `json:"destination_rows"`
		Missing         int64  `json:"missing"`
		Extra           int64  `json:"extra"`
		Differing       int64  `json:"differing"`
	} `json:"tables"`
}

// TestRunVerifiesInTheBackground: `connectd run` with verify.every set reports the
// lake equal in /metrics and the status JSON, and after a row is deleted at the
// source behind connectd's back, one extra key, while the connector keeps running.
func TestRunVerifiesInTheBackground(t *testing.T) {
	dsn, conn := newDatabase(t, "e2e_verifyd")
	mustExec(t, conn, `CREATE TABLE public.accounts (id int PRIMARY KEY, v int NOT NULL, note text);
INSERT INTO public.accounts SELECT g, g, 'initial' FROM generate_series(1, 50) g`)
	p := newPipe(t, "verifyd", dsn, false, "public.accounts")
	p.flush = "{rows: 500, bytes: 4MiB, interval: 300ms}"
	p.listen = freeAddr(t)
	// verify is a key of the connector, after its destination.
	writeFile(t, p.config, p.yaml()+"    verify: {every: 2s, sample: 100%}\n")
	base := "http://" + p.listen
	d := startRun(t, p.config)

	status := func() (*verifyStatus, string) {
		code, body := get(base + "/v1/connectors")
		if code != 200 {
			return nil, fmt.Sprintf("%d %s", code, body)
		}
		var all []struct {
			Name   string        `json:"name"`
			Verify *verifyStatus `json:"verify"`
		}
		if err := json.Unmarshal([]byte(body), &all); err != nil {
			return nil, fmt.Sprintf("bad JSON (%v): %s", err, body)
		}
		for _, c := range all {
			if c.Name == p.name {
				return c.Verify, body
			}
		}
		return nil, "connector missing: " + body
	}
	metric := func(body, name, labels string) (string, bool) {
		re := regexp.MustCompile(`(?m)^` + name + `\{` + regexp.QuoteMeta(labels) + `\} (\S+)$`)
		m := re.FindStringSubmatch(body)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	conn1 := `connector="` + p.name + `"`
	table := conn1 + `,table="public.accounts"`

	waitFor(t, 2*time.Minute, d, "a background verify to report the lake equal", func() (bool, string) {
		v, body := status()
		if v == nil || !v.Equal || len(v.Tables) != 1 {
			return false, body
		}
		_, metrics := get(base + "/metrics")
		eq, _ := metric(metrics, "connectd_verify_last_equal", conn1)
		extra, _ := metric(metrics, "connectd_verify_extra_keys", table)
		src, _ := metric(metrics, "connectd_verify_source_rows", table)
		dst, _ := metric(metrics, "connectd_verify_destination_rows", table)
		runs, _ := metric(metrics, "connectd_verify_runs_total", conn1+`,result="equal"`)
		return eq == "1" && extra == "0" && src == "50" && dst == "50" && runs != "" && v.Tables[0].SourceRows == 50,
			fmt.Sprintf("last_equal=%s extra=%s source_rows=%s destination_rows=%s runs(equal)=%s; %s", eq, extra, src, dst, runs, body)
	})

	// A row deleted at the source while the table is out of the publication: the lake
	// keeps it, an extra key.
	pub := "connectd_" + p.name
	mustExec(t, conn, fmt.Sprintf("ALTER PUBLICATION %s DROP TABLE public.accounts", pub))
	mustExec(t, conn, "DELETE FROM public.accounts WHERE id = 7")
	mustExec(t, conn, fmt.Sprintf("ALTER PUBLICATION %s ADD TABLE public.accounts", pub))

	waitFor(t, 2*time.Minute, d, "a background verify to report one extra key", func() (bool, string) {
		v, body := status()
		if v == nil || v.Equal || len(v.Tables) != 1 {
			return false, body
		}
		tb := v.Tables[0]
		_, metrics := get(base + "/metrics")
		eq, _ := metric(metrics, "connectd_verify_last_equal", conn1)
		extra, _ := metric(metrics, "connectd_verify_extra_keys", table)
		missing, _ := metric(metrics, "connectd_verify_missing_keys", table)
		differing, _ := metric(metrics, "connectd_verify_differing_keys", table)
		runs, _ := metric(metrics, "connectd_verify_runs_total", conn1+`,result="not_equal"`)
		return tb.Table == "public.accounts" && tb.Extra == 1 && tb.Missing == 0 && tb.Differing == 0 &&
				tb.SourceRows == 49 && tb.DestinationRows == 50 &&
				eq == "0" && extra == "1" && missing == "0" && differing == "0" && runs != "",
			fmt.Sprintf("last_equal=%s extra=%s missing=%s differing=%s runs(not_equal)=%s; %s", eq, extra, missing, differing, runs, body)
	})
	if code, body := get(base + "/readyz"); code != 200 {
		t.Errorf("a lake that differs must not stop the connector: GET /readyz %d %s", code, body)
	}
	r := d.stopClean(t)
	if !strings.Contains(r.stderr, "verify: the destination differs from the source") || !strings.Contains(r.stderr, "extra id=7") {
		t.Errorf("the log lacks the warning naming the extra key:\n%s", tail(r.stderr, 40))
	}
}
