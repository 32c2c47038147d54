package status

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerifyRunsShowInMetrics(t *testing.T) {
	r, clk := newTestRegistry()
	c := r.Observer("orders")
	r.Observer("shop") // never verified: no verify series but the counter's absence

	c.Verified(VerifyRun{At: clk.now(), Tables: []VerifyTable{
		{Table: "public.orders", Equal: true, SourceRows: 10, DestinationRows: 10},
		{Table: "public.items", Equal: true, SourceRows: 4, DestinationRows: 4},
	}})
	clk.add(time.Hour)
	c.Verified(VerifyRun{At: clk.now(), Tables: []VerifyTable{
		{Table: "public.orders", Equal: false, SourceRows: 9, DestinationRows: 10, Missing: 2, Extra: 3, Differing: 1},
		{Table: "public.items", Equal: true, SourceRows: 4, DestinationRows: 4},
	}})
	clk.add(time.Hour)
	c.Verified(VerifyRun{At: clk.now(), Err: errors.New("open the source's snapshot: connection refused")})
	last := clk.now()

	_, body := get(t, r.Handler(), "/metrics")
	for _, want := range []string{
		`connectd_verify_runs_total{connector="orders",result="equal"} 1`,
		`connectd_verify_runs_total{connector="orders",result="not_equal"} 1`,
		`connectd_verify_runs_total{connector="orders",result="error"} 1`,
		// A failed run keeps the counts of the run before it, and is not equal.
		`connectd_verify_missing_keys{connector="orders",table="public.orders"} 2`,
		`connectd_verify_extra_keys{connector="orders",table="public.orders"} 3`,
		`connectd_verify_differing_keys{connector="orders",table="public.orders"} 1`,
		`connectd_verify_source_rows{connector="orders",table="public.orders"} 9`,
		`connectd_verify_destination_rows{connector="orders",table="public.orders"} 10`,
		`connectd_verify_extra_keys{connector="orders",table="public.items"} 0`,
		`connectd_verify_source_rows{connector="orders",table="public.items"} 4`,
		`connectd_verify_last_equal{connector="orders"} 0`,
		`connectd_verify_last_run_timestamp_seconds{connector="orders"} ` + formatUnix(last),
	} {
		if !strings.Contains("\n"+body, "\n"+want+"\n") {
			t.Errorf("metrics lack the line %q", want)
		}
	}
	if strings.Contains(body, `connector="shop",table=`) || strings.Contains(body, `connectd_verify_last_equal{connector="shop"}`) {
		t.Error("a connector never verified has verify gauges")
	}
}

// formatUnix writes t as the Prometheus text format writes a float.
func formatUnix(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'g', -1, 64)
}

func TestVerifyEqualRunShowsInJSON(t *testing.T) {
	r, clk := newTestRegistry()
	c := r.Observer("orders")
	var before []View
	_, body := get(t, r.Handler(), "/v1/connectors")
	if err := json.Unmarshal([]byte(body), &before); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"verify": null`) || before[0].Verify != nil {
		t.Errorf("verify before the first run: want null in\n%s", body)
	}

	c.Verified(VerifyRun{At: clk.now(), Tables: []VerifyTable{{Table: "public.orders", Equal: true, SourceRows: 10, DestinationRows: 10}}})
	_, body = get(t, r.Handler(), "/v1/connectors")
	var vs []View
	if err := json.Unmarshal([]byte(body), &vs); err != nil {
		t.Fatal(err)
	}
	v := vs[0].Verify
	if v == nil || !v.Equal || v.Error != "" || !v.LastRun.Equal(clk.now()) ||
		len(v.Tables) != 1 || v.Tables[0] != (VerifyTable{Table: "public.orders", Equal: true, SourceRows: 10, DestinationRows: 10}) {
		t.Errorf("verify = %+v", v)
	}
	for _, key := range []string{`"last_run"`, `"equal": true`, `"error": ""`, `"source_rows": 10`, `"destination_rows": 10`, `"missing": 0`, `"extra": 0`, `"differing": 0`} {
		if !strings.Contains(body, key) {
			t.Errorf("status JSON lacks %s:\n%s", key, body)
		}
	}

	clk.add(time.Minute)
	c.Verified(VerifyRun{At: clk.now(), Err: errors.New("boom")})
	_, body = get(t, r.Handler(), "/v1/connectors")
	vs = nil
	if err := json.Unmarshal([]byte(body), &vs); err != nil {
		t.Fatal(err)
	}
	if v := vs[0].Verify; v.Equal || v.Error != "boom" || !v.LastRun.Equal(clk.now()) || len(v.Tables) != 1 {
		t.Errorf("after a failed run verify = %+v", v)
	}
}
