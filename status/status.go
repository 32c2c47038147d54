// Package status keeps the state of every connector and serves it
// (docs/operations.md, "Status API and metrics"): the health and readiness probes,
// the JSON status API, Prometheus metrics, and the snapshot progress line shown on a
// terminal.
package status

import (
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/connectd/connectd/record"
)

// Phases a source reports through SetPhase.
const (
	PhaseSnapshot  = "snapshot"
	PhaseStreaming = "streaming"
)

// Registry holds the state of every connector of the process. Each Registry has its
// own Prometheus registry, so two of them (in tests) never share series.
type Registry struct {
	log  *slog.Logger
	prom *prometheus.Registry
	now  func() time.Time

	mu    sync.Mutex
	conns map[string]*Connector
	order []string

	recordsRead    *prometheus.CounterVec
	recordsWritten *prometheus.CounterVec
	bytesWritten   *prometheus.CounterVec
	flushes        *prometheus.CounterVec
	flushDuration  *prometheus.HistogramVec
	errors         *prometheus.CounterVec
	verifyRuns     *prometheus.CounterVec
}

// New returns an empty registry.
func New(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{log: log, prom: prometheus.NewRegistry(), now: time.Now, conns: map[string]*Connector{}}
	byConn := []string{"connector"}
	r.recordsRead = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectd_records_read_total", Help: "Records received from the source."}, byConn)
	r.recordsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectd_records_written_total", Help: "Records handed to the destination."}, byConn)
	r.bytesWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectd_bytes_written_total", Help: "Approximate bytes handed to the destination."}, byConn)
	r.flushes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectd_flushes_total", Help: "Flushes that made data durable and committed its offset."}, byConn)
	r.flushDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "connectd_flush_duration_seconds", Help: "Time a destination flush took.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, byConn)
	r.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectd_errors_total", Help: "Errors that stopped a connector run (retried or not)."}, byConn)
	r.verifyRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectd_verify_runs_total", Help: "Background verify runs, by result: equal, not_equal or error."}, []string{"connector", "result"})
	r.prom.MustRegister(r.recordsRead, r.recordsWritten, r.bytesWritten, r.flushes, r.flushDuration, r.errors, r.verifyRuns,
		gaugeCollector{r},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Observer returns the state of one connector, creating it (state "starting") on
// first use. It satisfies pipeline.Observer and connector.Status.
func (r *Registry) Observer(connector string) *Connector {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.conns[connector]; ok {
		return c
	}
	c := &Connector{
		r:              r,
		name:           connector,
		state:          "starting",
		updatedAt:      r.now(),
		recordsRead:    r.recordsRead.WithLabelValues(connector),
		recordsWritten: r.recordsWritten.WithLabelValues(connector),
		bytesWritten:   r.bytesWritten.WithLabelValues(connector),
		flushes:        r.flushes.WithLabelValues(connector),
		flushDuration:  r.flushDuration.WithLabelValues(connector),
		errors:         r.errors.WithLabelValues(connector),
		tables:         map[string]*tableProgress{},
	}
	r.conns[connector] = c
	r.order = append(r.order, connector)
	return c
}

// connectors returns the connectors in the order they were added.
func (r *Registry) connectors() []*Connector {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Connector, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, r.conns[n])
	}
	return out
}

// Connector is the observed state of one connector. Its methods are safe for
// concurrent use.
type Connector struct {
	r    *Registry
	name string

	recordsRead, recordsWritten, bytesWritten, flushes, errors prometheus.Counter
	flushDuration                                              prometheus.Observer

	mu             sync.Mutex
	state          string
	lastErr        string
	phase          string
	sourcePos      string
	committedPos   record.Position
	commitTS       time.Time
	lagBytes       int64
	hasLag         bool
	retained       int64 // WAL the server keeps for the source (replication slot)
	unconfirmed    int64 // the part of it past what the source confirmed
	hasRetained    bool
	read           int64 // records received from the source
	written        int64
	flushedRows    int64
	nflushes       int64
	tables         map[string]*tableProgress
	tableOrder     []string
	updatedAt      time.Time
	committedCount bool        // a position was committed in this process
	verify         *VerifyView // the last verify run; nil before the first
}

// tableProgress is one table's snapshot progress.
type tableProgress struct {
	rows, total int64
	firstRows   int64     // rows at the first report, so a resumed snapshot's rate is honest
	firstAt     time.Time // time of the first report
	lastAt      time.Time // time of the last report
	// rate is the rows per second, a moving average over about rateWindow, so that it
	// follows a snapshot that speeds up or slows down (and a resumed one starts at its
	// own rate, not at the rows read before the restart).
	rate float64
}

// rateWindow is the time constant of a table's moving average of rows per second.
const rateWindow = 10 * time.Second

// report records rows at now.
func (t *tableProgress) report(rows, total int64, now time.Time) {
	if dt := now.Sub(t.lastAt).Seconds(); dt > 0 && rows >= t.rows {
		inst := float64(rows-t.rows) / dt
		if t.rate == 0 && t.lastAt.Equal(t.firstAt) {
			t.rate = inst
		} else {
			a := 1 - math.Exp(-dt/rateWindow.Seconds())
			t.rate += a * (inst - t.rate)
		}
		t.lastAt = now
	}
	t.rows, t.total = rows, total
}

// eta is the estimated time left, false when there is no estimate (no total, no rate,
// or the total already reached).
func (t *tableProgress) eta() (time.Duration, bool) {
	if t.total <= t.rows || t.rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(t.total-t.rows) / t.rate * float64(time.Second)), true
}

func (c *Connector) touch() { c.updatedAt = c.r.now() }

// SetPhase records "snapshot" or "streaming".
func (c *Connector) SetPhase(phase string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase = phase
	c.touch()
}

// SnapshotProgress records the rows read so far of a table and its estimated total.
func (c *Connector) SnapshotProgress(table string, rows, total int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.r.now()
	t, ok := c.tables[table]
	if !ok {
		t = &tableProgress{rows: rows, firstRows: rows, firstAt: now, lastAt: now}
		c.tables[table] = t
		c.tableOrder = append(c.tableOrder, table)
	}
	t.report(rows, total, now)
	c.updatedAt = now
}

// SourceLag records how far the source is behind its server.
func (c *Connector) SourceLag(bytes int64, _ float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The source's own estimate in seconds is not used: lag_seconds is measured from
	// what was committed, which is what a reader of the lake sees.
	c.lagBytes, c.hasLag = bytes, true
	c.touch()
}

// SourceRetained records the WAL the server keeps for the source: all of it, and
// the part past what the source has confirmed.
func (c *Connector) SourceRetained(retained, unconfirmed int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retained, c.unconfirmed, c.hasRetained = retained, unconfirmed, true
	c.touch()
}

// SourcePosition records the readable position of the last record read.
func (c *Connector) SourcePosition(pos string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sourcePos = pos
	c.touch()
}

// Read counts records received from the source.
func (c *Connector) Read(n int) {
	c.recordsRead.Add(float64(n))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read += int64(n)
}

// Written counts records handed to the destination.
func (c *Connector) Written(n int, bytes int64) {
	c.recordsWritten.Add(float64(n))
	if bytes > 0 {
		c.bytesWritten.Add(float64(bytes))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written += int64(n)
	c.touch()
}

// Flushed records one flush.
func (c *Connector) Flushed(rows, _ int64, d time.Duration) {
	c.flushes.Inc()
	c.flushDuration.Observe(d.Seconds())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushedRows += rows
	c.nflushes++
	c.touch()
}

// Committed records the committed position and the source commit time of its record.
func (c *Connector) Committed(pos record.Position, commitTS time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.committedPos = append(record.Position(nil), pos...)
	c.commitTS = commitTS
	c.committedCount = true
	c.touch()
}

// SetState records the pipeline's state; an error is kept as last_error and counted.
func (c *Connector) SetState(state string, err error) {
	if err != nil {
		c.errors.Inc()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = state
	if err != nil {
		c.lastErr = err.Error()
	}
	c.touch()
}

// lagSeconds is how old the last committed record is, while streaming. A source that
// says it is caught up, with everything it sent already flushed, has no lag even if
// its last change is old: an idle table is not a late one.
func (c *Connector) lagSeconds(now time.Time) (float64, bool) {
	if c.phase != PhaseStreaming || !c.committedCount || c.commitTS.IsZero() {
		return 0, false
	}
	if c.hasLag && c.lagBytes == 0 && c.flushedRows >= c.read {
		return 0, true
	}
	return max(0, now.Sub(c.commitTS).Seconds()), true
}

// View is one connector in the /v1/connectors JSON.
type View struct {
	Name              string   `json:"name"`
	State             string   `json:"state"`
	Phase             string   `json:"phase"` // snapshot, streaming, or "" before the source says
	SourcePosition    string   `json:"source_position"`
	CommittedPosition string   `json:"committed_position"` // hex of the opaque position
	LagBytes          *int64   `json:"lag_bytes"`          // null until the source reports it
	LagSeconds        *float64 `json:"lag_seconds"`        // null unless streaming
	// RetainedWALBytes is the WAL the server keeps for the source's replication slot,
	// and UnconfirmedWALBytes the part of it past the slot's confirmed_flush_lsn;
	// null for sources without one, or until first measured.
	RetainedWALBytes    *int64          `json:"retained_wal_bytes"`
	UnconfirmedWALBytes *int64          `json:"unconfirmed_wal_bytes"`
	Snapshot            []TableProgress `json:"snapshot"`
	LastError           string          `json:"last_error"`
	RecordsTotal        int64           `json:"records_total"` // records handed to the destination
	FlushesTotal        int64           `json:"flushes_total"`
	Verify              *VerifyView     `json:"verify"` // null until a verify run ends
	UpdatedAt           time.Time       `json:"updated_at"`
}

// TableProgress is one table's snapshot progress in View.
type TableProgress struct {
	Table   string  `json:"table"`
	Rows    int64   `json:"rows"`
	Total   int64   `json:"total"`   // the source's estimate; 0 when unknown
	Percent float64 `json:"percent"` // of the estimate, at most 100; 100 once streaming
	// RowsPerSecond is a moving average over about ten seconds; ETASeconds the time
	// left at that rate, null when unknown (no estimate, or the estimate reached).
	RowsPerSecond float64  `json:"rows_per_second"`
	ETASeconds    *float64 `json:"eta_seconds"`
}

// view snapshots the connector's state.
func (c *Connector) view(now time.Time) View {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := View{
		Name:           c.name,
		State:          c.state,
		Phase:          c.phase,
		SourcePosition: c.sourcePos,
		Snapshot:       []TableProgress{},
		LastError:      c.lastErr,
		RecordsTotal:   c.written,
		FlushesTotal:   c.nflushes,
		UpdatedAt:      c.updatedAt.UTC(),
		Verify:         c.verifyView(),
	}
	if c.committedPos != nil {
		v.CommittedPosition = c.committedPos.String()
	}
	if c.hasLag {
		b := c.lagBytes
		v.LagBytes = &b
	}
	if s, ok := c.lagSeconds(now); ok {
		v.LagSeconds = &s
	}
	if c.hasRetained {
		r, u := c.retained, c.unconfirmed
		v.RetainedWALBytes, v.UnconfirmedWALBytes = &r, &u
	}
	for _, name := range c.tableOrder {
		t := c.tables[name]
		p := TableProgress{Table: name, Rows: t.rows, Total: t.total, Percent: c.percent(t), RowsPerSecond: math.Round(t.rate)}
		if eta, ok := t.eta(); ok && c.phase == PhaseSnapshot {
			e := math.Round(eta.Seconds())
			p.ETASeconds = &e
		}
		v.Snapshot = append(v.Snapshot, p)
	}
	return v
}

func (c *Connector) percent(t *tableProgress) float64 {
	if c.phase == PhaseStreaming {
		return 100
	}
	if t.total <= 0 {
		return 0
	}
	p := float64(t.rows) * 100 / float64(t.total)
	return min(100, float64(int64(p*10))/10)
}

// Views returns every connector's state, in the order they were added.
func (r *Registry) Views() []View {
	now := r.now()
	cs := r.connectors()
	out := make([]View, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.view(now))
	}
	return out
}

// Human writes a count as 950, 310k, 1.2M, 3.4G.
func Human(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprintf("%d", n)
	case n < 1000000:
		return fmt.Sprintf("%dk", n/1000)
	case n < 1000000000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	default:
		return fmt.Sprintf("%.1fG", float64(n)/1e9)
	}
}

// gaugeCollector reports the gauges computed from state at scrape time, so that lag
// keeps growing while a connector is stuck rather than freezing at its last value.
type gaugeCollector struct{ r *Registry }

var (
	descCommitLag = prometheus.NewDesc("connectd_commit_lag_seconds",
		"Age of the source commit time of the last committed record, while streaming.", []string{"connector"}, nil)
	descSourceLag = prometheus.NewDesc("connectd_source_lag_bytes",
		"How far the source is behind its server, in bytes.", []string{"connector"}, nil)
	descRetained = prometheus.NewDesc("connectd_source_retained_bytes",
		"WAL the source server keeps for the connector's replication slot (from its restart_lsn), in bytes.", []string{"connector"}, nil)
	descUnconfirmed = prometheus.NewDesc("connectd_source_unconfirmed_bytes",
		"WAL past the replication slot's confirmed_flush_lsn, in bytes.", []string{"connector"}, nil)
	descUp = prometheus.NewDesc("connectd_connector_up",
		"1 while the connector is running, else 0.", []string{"connector"}, nil)
	descSnapRows = prometheus.NewDesc("connectd_snapshot_rows",
		"Rows read so far by the snapshot of a table.", []string{"connector", "table"}, nil)
	descSnapTotal = prometheus.NewDesc("connectd_snapshot_rows_total_estimate",
		"Estimated rows of a table being snapshotted.", []string{"connector", "table"}, nil)
	descSnapRate = prometheus.NewDesc("connectd_snapshot_rows_per_second",
		"Rows per second read by the snapshot of a table (a moving average over about ten seconds).", []string{"connector", "table"}, nil)
	descSnapETA = prometheus.NewDesc("connectd_snapshot_eta_seconds",
		"Estimated seconds left in the snapshot of a table, at its current rate; absent when unknown.", []string{"connector", "table"}, nil)
)

func (g gaugeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCommitLag, descSourceLag, descRetained, descUnconfirmed, descUp, descSnapRows, descSnapTotal, descSnapRate, descSnapETA} {
		ch <- d
	}
	for _, d := range verifyDescs {
		ch <- d
	}
}

func (g gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	now := g.r.now()
	for _, c := range g.r.connectors() {
		c.collect(now, ch)
	}
}

func (c *Connector) collect(now time.Time, ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	up := 0.0
	if c.state == "running" {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, c.name)
	if s, ok := c.lagSeconds(now); ok {
		ch <- prometheus.MustNewConstMetric(descCommitLag, prometheus.GaugeValue, s, c.name)
	}
	if c.hasLag {
		ch <- prometheus.MustNewConstMetric(descSourceLag, prometheus.GaugeValue, float64(c.lagBytes), c.name)
	}
	if c.hasRetained {
		ch <- prometheus.MustNewConstMetric(descRetained, prometheus.GaugeValue, float64(c.retained), c.name)
		ch <- prometheus.MustNewConstMetric(descUnconfirmed, prometheus.GaugeValue, float64(c.unconfirmed), c.name)
	}
	tables := append([]string(nil), c.tableOrder...)
	sort.Strings(tables)
	for _, name := range tables {
		t := c.tables[name]
		ch <- prometheus.MustNewConstMetric(descSnapRows, prometheus.GaugeValue, float64(t.rows), c.name, name)
		ch <- prometheus.MustNewConstMetric(descSnapTotal, prometheus.GaugeValue, float64(t.total), c.name, name)
		ch <- prometheus.MustNewConstMetric(descSnapRate, prometheus.GaugeValue, t.rate, c.name, name)
		if eta, ok := t.eta(); ok && c.phase == PhaseSnapshot {
			ch <- prometheus.MustNewConstMetric(descSnapETA, prometheus.GaugeValue, eta.Seconds(), c.name, name)
		}
	}
	c.collectVerify(ch)
}
