package status

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a background verify run, the result label of connectd_verify_runs_total.
const (
	VerifyEqual    = "equal"
	VerifyNotEqual = "not_equal"
	VerifyError    = "error"
)

// VerifyRun is the outcome of one verify run of a connector: the tables compared, or
// the error that ended it.
type VerifyRun struct {
	At     time.Time // when the run ended
	Tables []VerifyTable
	Err    error
}

// VerifyTable is one table's comparison, as counted by the verify report.
type VerifyTable struct {
	Table           string `json:"table"`
	Equal           bool   `json:"equal"`
	SourceRows      int64  `json:"source_rows"`
	DestinationRows int64  `json:"destination_rows"`
	Missing         int64  `json:"missing"`   // keys in the source, not in the destination
	Extra           int64  `json:"extra"`     // keys in the destination, not in the source
	Differing       int64  `json:"differing"` // keys in both with a differing column
}

// VerifyView is the last verify run in the /v1/connectors JSON.
type VerifyView struct {
	LastRun time.Time `json:"last_run"`
	Equal   bool      `json:"equal"`
	Error   string    `json:"error"`
	// Tables are the counts of the last run that compared them: after a failed run,
	// those of the run before it.
	Tables []VerifyTable `json:"tables"`
}

// result names a run for connectd_verify_runs_total.
func (v VerifyRun) result() string {
	if v.Err != nil {
		return VerifyError
	}
	for _, t := range v.Tables {
		if !t.Equal {
			return VerifyNotEqual
		}
	}
	return VerifyEqual
}

// Verified records a verify run of the connector.
func (c *Connector) Verified(run VerifyRun) {
	res := run.result()
	c.r.verifyRuns.WithLabelValues(c.name, res).Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	v := &VerifyView{LastRun: run.At.UTC(), Equal: res == VerifyEqual, Tables: []VerifyTable{}}
	if run.Err != nil {
		v.Error = run.Err.Error()
		if c.verify != nil {
			v.Tables = c.verify.Tables
		}
	} else {
		v.Tables = append(v.Tables, run.Tables...)
		sort.Slice(v.Tables, func(i, j int) bool { return v.Tables[i].Table < v.Tables[j].Table })
	}
	c.verify = v
	c.touch()
}

// verifyView copies the last run for a View; nil before the first. c.mu is held.
func (c *Connector) verifyView() *VerifyView {
	if c.verify == nil {
		return nil
	}
	v := *c.verify
	v.Tables = append([]VerifyTable{}, c.verify.Tables...)
	return &v
}

var (
	byConnTable    = []string{"connector", "table"}
	descVerifyMiss = prometheus.NewDesc("connectd_verify_missing_keys",
		"Keys in the source and not in the destination at the last verify run of the table.", byConnTable, nil)
	descVerifyExtra = prometheus.NewDesc("connectd_verify_extra_keys",
		"Keys in the destination and not in the source at the last verify run of the table.", byConnTable, nil)
	descVerifyDiff = prometheus.NewDesc("connectd_verify_differing_keys",
		"Keys with a column that differs between the source and the destination at the last verify run of the table.", byConnTable, nil)
	descVerifySrc = prometheus.NewDesc("connectd_verify_source_rows",
		"Rows of the table in the source's snapshot at the last verify run (of the sample).", byConnTable, nil)
	descVerifyDst = prometheus.NewDesc("connectd_verify_destination_rows",
		"Rows of the table in the destination's rebuilt state at the last verify run (of the sample).", byConnTable, nil)
	descVerifyLast = prometheus.NewDesc("connectd_verify_last_run_timestamp_seconds",
		"Unix time at which the last verify run of the connector ended (equal, not or failed).", []string{"connector"}, nil)
	descVerifyEqual = prometheus.NewDesc("connectd_verify_last_equal",
		"1 when the last verify run of the connector found the destination equal to the source, 0 when not or when it failed.", []string{"connector"}, nil)
	verifyDescs = []*prometheus.Desc{descVerifyMiss, descVerifyExtra, descVerifyDiff, descVerifySrc, descVerifyDst, descVerifyLast, descVerifyEqual}
)

// collectVerify reports the gauges of the last verify run; c.mu is held.
func (c *Connector) collectVerify(ch chan<- prometheus.Metric) {
	v := c.verify
	if v == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descVerifyLast, prometheus.GaugeValue, float64(v.LastRun.UnixNano())/1e9, c.name)
	eq := 0.0
	if v.Equal {
		eq = 1
	}
	ch <- prometheus.MustNewConstMetric(descVerifyEqual, prometheus.GaugeValue, eq, c.name)
	for _, t := range v.Tables {
		for _, m := range []struct {
			d *prometheus.Desc
			v int64
		}{{descVerifyMiss, t.Missing}, {descVerifyExtra, t.Extra}, {descVerifyDiff, t.Differing}, {descVerifySrc, t.SourceRows}, {descVerifyDst, t.DestinationRows}} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.GaugeValue, float64(m.v), c.name, t.Table)
		}
	}
}
