package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pgx/v5"
)

// snapshotBatch is how many records one emit call carries during a snapshot, and
// snapshotBatchBytes how many bytes of COPY lines at most, so that large rows make
// small batches.
const (
	snapshotBatch      = 2048
	snapshotBatchBytes = 4 << 20
)

// snapStateKey names the snapshot's saved state in the connector's state store.
const snapStateKey = "postgres.snapshot"

// snapState is what a snapshot saves before it emits its first record, so that a
// restart inside it can resume instead of starting again: the table ordinals of its
// positions, the commit_ts and txid its records carry, and the slot it belongs to.
type snapState struct {
	Version int    `json:"version"`
	Slot    string `json:"slot"`
	Epoch   uint32 `json:"epoch"`
	// ConsistentPoint is the slot's LSN when the snapshot was exported; "" for the
	// temporary slot of initial_only, which does not outlive the run.
	ConsistentPoint string    `json:"consistent_point"`
	CommitTS        time.Time `json:"commit_ts"`
	TxID            string    `json:"txid"`
	Chunk           uint32    `json:"chunk"`  // rows per chunk, fixed for the snapshot's life
	Tables          []string  `json:"tables"` // ordinal -> schema.table
	// Plans is how each table (by ordinal) is split into chunks (chunks.go).
	Plans []tablePlan `json:"plans,omitempty"`
}

// snapStateVersion 2 added Plans; a snapshot saved without them was read in one
// chunk sequence per table and cannot be resumed by chunk.
const snapStateVersion = 2

// snapTable is one table a snapshot reads.
type snapTable struct {
	ordinal uint32
	t       table
	sh      *tableShape
	// key holds the schema indexes of the key columns in the order of the index that
	// backs them; nil when the whole row is the key (REPLICA IDENTITY FULL without
	// a primary key): such a table is read in one piece.
	key []int
}

// snapPlan is one snapshot run: a new one inside an exported snapshot, or the rest
// of an interrupted one.
type snapPlan struct {
	snapName string // exported snapshot to import; "" when resuming
	state    snapState
	tables   []snapTable
	resume   *snapshotPos // the committed position to continue after; nil: from the start
	// skip holds, per table ordinal, the keys a resume leaves out (resume.go).
	skip map[uint32]map[string]bool
	// imported runs once the snapshot is imported; nil when nothing waits for it.
	imported func()
}

func (s *Source) loadSnapState(ctx context.Context) (*snapState, error) {
	if s.state == nil {
		return nil, nil
	}
	data, err := s.state.Load(ctx, snapStateKey)
	if err != nil {
		return nil, fmt.Errorf("postgres: load snapshot state: %w", err)
	}
	if data == nil {
		return nil, nil
	}
	var st snapState
	if err := json.Unmarshal(data, &st); err != nil {
		s.log.Warn("saved snapshot state is unreadable; ignoring it", "err", err)
		return nil, nil
	}
	return &st, nil
}

func (s *Source) saveSnapState(ctx context.Context, st snapState) error {
	if s.state == nil {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("postgres: encode snapshot state: %w", err)
	}
	if err := s.state.Save(ctx, snapStateKey, data); err != nil {
		return fmt.Errorf("postgres: save snapshot state: %w", err)
	}
	return nil
}

// snapTables pairs the ordinals of names with the selected tables and finds the
// order of each key. Names no longer selected are skipped; selected tables missing
// from names are not part of this snapshot.
func (s *Source) snapTables(ctx context.Context, names []string, tables []table) ([]snapTable, error) {
	byName := map[string]table{}
	for _, t := range tables {
		byName[t.qualified()] = t
	}
	inSnap := map[string]bool{}
	var out []snapTable
	for i, name := range names {
		inSnap[name] = true
		t, ok := byName[name]
		if !ok {
			s.log.Warn("a table of the interrupted snapshot is no longer selected or no longer exists; its remaining rows are not read", "table", name)
			continue
		}
		sh := s.shapes[name]
		key, err := s.cat.keyOrder(ctx, t, sh)
		if err != nil {
			return nil, err
		}
		out = append(out, snapTable{ordinal: uint32(i), t: t, sh: sh, key: key})
	}
	for _, t := range tables {
		if !inSnap[t.qualified()] {
			s.log.Warn("table selected after the interrupted snapshot began: it is streamed, not snapshotted", "table", t.qualified())
		}
	}
	return out, nil
}

// snapshot reads the plan's tables in chunks (chunks.go) on several connections,
// each a REPEATABLE READ transaction importing one snapshot (the slot's exported one
// for a new snapshot), and emits op 'r' records in (table, chunk, row) order. The
// replication connection stays idle meanwhile: the exported snapshot lives only
// until it runs its next command, so every reader imports it before imported runs.
func (s *Source) snapshot(ctx context.Context, plan snapPlan, emit connector.EmitFunc) error {
	s.status.SetPhase("snapshot")
	st := plan.state
	fresh := st.CommitTS.IsZero()
	if fresh {
		// The split is decided once, before the first record, and saved with the
		// state: a resume must read the chunks the interrupted run did not.
		st.Version = snapStateVersion
		st.Plans = make([]tablePlan, len(st.Tables))
		for i := range plan.tables {
			tb := &plan.tables[i]
			p, err := s.planTable(ctx, tb, st.Chunk)
			if err != nil {
				return err
			}
			st.Plans[tb.ordinal] = p
		}
	}
	jobs, err := s.chunkJobs(ctx, plan, st)
	if err != nil {
		return err
	}
	rd, err := s.openReaders(ctx, plan.snapName, s.readerCount(ctx, len(jobs)))
	if err != nil {
		return err
	}
	defer rd.close(ctx)
	if plan.imported != nil {
		plan.imported()
	}
	if fresh {
		var now time.Time
		if err := rd.conns[0].QueryRow(ctx, "SELECT now(), txid_current()::text").Scan(&now, &st.TxID); err != nil {
			return classify("read snapshot time", err)
		}
		st.CommitTS = now.UTC().Truncate(time.Microsecond)
		// Saved before the first record goes out: a committed snapshot position
		// is only usable together with it.
		if err := s.saveSnapState(ctx, st); err != nil {
			return err
		}
	}
	started := time.Now()
	em := &snapEmitter{emit: emit, acks: &s.ack, status: s.status, rows: map[uint32]int64{}}
	em.stand = make(record.Position, snapshotPosLen)
	putSnapshotPos(em.stand, st.Epoch, 0, 0, 0)
	if r := plan.resume; r != nil {
		// Until a chunk is read the snapshot stands at the committed position, so
		// that a resume with nothing left to read (its remaining tables no longer
		// selected or dropped, or every remaining row deleted) still ends with a
		// completion marker after it, never before it.
		putSnapshotPos(em.stand, st.Epoch, r.table, r.chunk, r.row)
	}
	total, err := s.readChunks(ctx, rd, jobs, st, plan.skip, em)
	if err != nil {
		return err
	}
	if err := rd.commit(ctx); err != nil {
		return err
	}
	s.log.Info("snapshot complete", "tables", len(plan.tables), "chunks", len(jobs), "readers", len(rd.conns), "rows", total, "elapsed", time.Since(started).Round(time.Millisecond))
	return nil
}

// chunkJob is one chunk for a reader.
type chunkJob struct {
	seq   int // its place in the snapshot's order
	tb    *snapTable
	plan  tablePlan
	list  string // the column list
	idx   int    // the chunk in the plan: which rows
	chunk uint32 // its number in positions
	row   uint32 // rows of the chunk delivered before: positions continue after it
	after []string
	last  bool // the table's last chunk
}

// chunkJobs lists the chunks left to read in snapshot order: every chunk of a new
// snapshot; after a resume, the rest of the chunk the committed position is in and
// every chunk after it.
func (s *Source) chunkJobs(ctx context.Context, plan snapPlan, st snapState) ([]chunkJob, error) {
	var jobs []chunkJob
	add := func(j chunkJob) {
		j.seq = len(jobs)
		jobs = append(jobs, j)
	}
	for i := range plan.tables {
		tb := &plan.tables[i]
		r := plan.resume
		if r != nil && tb.ordinal < r.table {
			continue
		}
		var p tablePlan
		if int(tb.ordinal) < len(st.Plans) {
			p = st.Plans[tb.ordinal]
		}
		cols := make([]string, len(tb.sh.schema.Columns))
		for j, c := range tb.sh.schema.Columns {
			cols[j] = pgx.Identifier{c.Name}.Sanitize()
		}
		list := strings.Join(cols, ", ")
		usable := p.By != splitKey || (tb.key != nil && (len(p.Bounds) == 0 || len(p.Bounds[0]) == len(tb.key)))
		if !usable {
			s.log.Warn("the table's key changed since the snapshot was split; it is read in one chunk", "table", tb.t.qualified())
			p = tablePlan{}
		}
		n := p.chunks()
		first := 0
		if r != nil && tb.ordinal == r.table {
			moved := false
			if p.By == splitCtid {
				var node int64
				if err := s.conn.QueryRow(ctx, "SELECT relfilenode::int8 FROM pg_catalog.pg_class WHERE oid = $1::oid", int64(tb.t.oid)).Scan(&node); err != nil {
					return nil, classify("read the relfilenode of "+tb.t.qualified(), err)
				}
				moved = uint32(node) != p.Relfilenode
			}
			j := chunkJob{tb: tb, plan: p, list: list, idx: min(int(r.chunk), n-1), chunk: r.chunk, row: r.row}
			switch {
			case !usable || moved:
				// The chunks read before no longer say which rows they held.
				s.log.Warn("the snapshot was interrupted inside a table that was rewritten or changed its key since: reading the WHOLE table again, so its rows delivered before the interruption appear twice in the lake (as r, with new positions)",
					"table", tb.t.qualified(), "chunk", r.chunk, "row", r.row)
				j.plan, j.idx, j.last = tablePlan{}, 0, true
				add(j)
				continue
			case p.By == splitKey && len(r.key) == len(tb.key), p.By == splitCtid && len(r.key) == 1:
				j.after = r.key
			case r.row > 0:
				// Without a key there is no telling which rows of the chunk were
				// delivered: it is read again, under the row numbers after them.
				s.log.Warn("the snapshot was interrupted inside a chunk of a table without a key, which cannot be resumed by key: reading that chunk again, so its rows delivered before the interruption appear twice in the lake (as r, with new positions; the whole row is its key, so latest _pos per key keeps one); give the table a primary key to avoid this",
					"table", tb.t.qualified(), "chunk", r.chunk, "row", r.row)
			}
			j.last = j.idx == n-1
			add(j)
			first = j.idx + 1
		}
		for c := first; c < n; c++ {
			add(chunkJob{tb: tb, plan: p, list: list, idx: c, chunk: uint32(c), last: c == n-1})
		}
	}
	return jobs, nil
}

// freeConnections is how many more connections the server accepts from a role
// without superuser rights.
const freeConnections = `SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - (SELECT count(*) FROM pg_catalog.pg_stat_activity)::int`

// readerCount is how many connections read the snapshot: snapshot_parallel, or by
// default this machine's cores (the server's cannot be read through SQL without
// superuser rights), at most half the connections the server has left, and never
// more than there are chunks.
func (s *Source) readerCount(ctx context.Context, chunks int) int {
	n := s.st.parallel
	if n <= 0 {
		n = runtime.NumCPU()
		var free int
		if err := s.conn.QueryRow(ctx, freeConnections).Scan(&free); err != nil {
			s.log.Debug("could not read the server's free connections", "err", err)
		} else {
			n = min(n, max(1, free/2))
		}
	}
	return max(1, min(n, chunks))
}

// snapReaders are the connections a snapshot reads on, each in a REPEATABLE READ
// transaction in the same snapshot.
type snapReaders struct {
	conns []*pgx.Conn
	done  bool
}

// openReaders opens n readers importing snapName; without one (a resumed initial_only
// snapshot has no slot to export it) the first reader exports its own for the others.
// A reader after the first that cannot connect (no connection left) is done
// without.
func (s *Source) openReaders(ctx context.Context, snapName string, n int) (*snapReaders, error) {
	rd := &snapReaders{}
	for i := 0; i < n; i++ {
		conn, err := connect(ctx, s.st)
		if err != nil {
			if i > 0 && ctx.Err() == nil {
				s.log.Warn("could not open another snapshot reader; reading with fewer", "readers", i, "wanted", n, "err", err)
				break
			}
			rd.close(ctx)
			return nil, err
		}
		rd.conns = append(rd.conns, conn)
		// A table without a key is resumed after the last ctid read, so its rows
		// must come in heap order: from the first page, by one process.
		if _, err := conn.Exec(ctx, "SET synchronize_seqscans = off; SET max_parallel_workers_per_gather = 0"); err != nil {
			rd.close(ctx)
			return nil, classify("set up a snapshot reader", err)
		}
		if _, err := conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
			rd.close(ctx)
			return nil, classify("begin snapshot transaction", err)
		}
		switch {
		case snapName != "":
			if _, err := conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+textLiteral(snapName)); err != nil {
				rd.close(ctx)
				return nil, classify("import snapshot "+snapName, err)
			}
		case n > 1:
			if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_export_snapshot()").Scan(&snapName); err != nil {
				rd.close(ctx)
				return nil, classify("export the snapshot for the other readers", err)
			}
		}
	}
	return rd, nil
}

func (rd *snapReaders) commit(ctx context.Context) error {
	for _, c := range rd.conns {
		if _, err := c.Exec(ctx, "COMMIT"); err != nil {
			return classify("commit snapshot transaction", err)
		}
	}
	rd.done = true
	return nil
}

// close ends the readers' connections, which rolls back what was not committed.
func (rd *snapReaders) close(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, c := range rd.conns {
		_ = c.Close(cctx)
	}
	rd.conns = nil
}

// chunkResult is a chunk read and decoded, in batches.
type chunkResult struct {
	job     *chunkJob
	batches [][]record.Record
	rows    int64           // lines read, the ones a resume leaves out included
	end     record.Position // the position after the chunk's last line
	err     error
}

// readChunks reads jobs on the readers, each decoding whole chunks on its own
// goroutine, and hands them to em strictly in job order. A reader takes the next
// chunk only while at most readers+1 chunks are read or waiting to be emitted (one
// more than the readers, so that a reader goes on while the emitter hands a chunk
// on), which bounds memory to that many decoded chunks. It returns the rows read.
func (s *Source) readChunks(ctx context.Context, rd *snapReaders, jobs []chunkJob, st snapState, skips map[uint32]map[string]bool, em *snapEmitter) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	window := len(rd.conns) + 1
	tokens := make(chan struct{}, window)
	queue := make(chan *chunkJob)
	results := make(chan *chunkResult, window) // never more outstanding than tokens
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(queue)
		for i := range jobs {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case queue <- &jobs[i]:
			case <-ctx.Done():
				return
			}
		}
	}()
	for i, conn := range rd.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &chunkSink{epoch: st.Epoch, commitTS: st.CommitTS, txid: st.TxID, skips: skips}
			for job := range queue {
				res := w.read(ctx, conn, job)
				if res.err == nil {
					s.log.Debug("snapshot chunk read", "table", job.tb.t.qualified(), "chunk", job.chunk, "rows", res.rows, "reader", i)
				}
				results <- res
				if res.err != nil {
					return
				}
			}
		}()
	}
	var total int64
	pending := map[int]*chunkResult{}
	for next := 0; next < len(jobs); {
		r, ok := pending[next]
		if !ok {
			select {
			case r = <-results:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
			if r.err != nil {
				return 0, r.err
			}
			pending[r.job.seq] = r
			continue
		}
		delete(pending, next)
		if err := em.chunk(ctx, r); err != nil {
			return 0, err
		}
		total += r.rows
		<-tokens
		next++
		s.reportRetained(ctx)
	}
	return total, em.finish(ctx, st)
}

// snapEmitter emits chunks in order. It holds the last batch back: it may turn out
// to be the snapshot's last, whose last record carries the completion marker.
type snapEmitter struct {
	emit   connector.EmitFunc
	acks   *acks
	status connector.Status
	held   []record.Record
	stand  record.Position // the position after the last chunk read
	rows   map[uint32]int64
}

func (e *snapEmitter) chunk(ctx context.Context, r *chunkResult) error {
	for _, b := range r.batches {
		if err := e.flush(ctx); err != nil {
			return err
		}
		e.held = b
	}
	e.stand = r.end
	tb := r.job.tb
	e.rows[tb.ordinal] += r.rows
	n := e.rows[tb.ordinal]
	if r.job.last {
		e.status.SnapshotProgress(tb.t.qualified(), n, n)
	} else {
		e.status.SnapshotProgress(tb.t.qualified(), n, max(tb.t.estimate, n))
	}
	return nil
}

func (e *snapEmitter) flush(ctx context.Context) error {
	if len(e.held) == 0 {
		return nil
	}
	b := e.held
	e.held = nil
	e.acks.setEmitted(b[len(b)-1].Pos)
	if err := e.emit(ctx, b); err != nil {
		return fmt.Errorf("postgres: snapshot: emit: %w", err)
	}
	return nil
}

// finish emits the held batch, its last record extended by the completion marker.
func (e *snapEmitter) finish(ctx context.Context, st snapState) error {
	if len(e.held) == 0 {
		// Nothing was read (every table empty, or every row already committed): a
		// checkpoint still records that the snapshot is complete, or the next run
		// would find no position, take a new slot, and lose what changed meanwhile.
		e.held = []record.Record{{Op: record.OpCheckpoint, Pos: e.stand, CommitTS: st.CommitTS, TxID: st.TxID}}
	}
	last := &e.held[len(e.held)-1]
	done := make(record.Position, snapshotDoneLen)
	copy(done, last.Pos[:snapshotPosLen])
	done[snapshotDoneLen-1] = snapshotDoneByte
	last.Pos = done
	return e.flush(ctx)
}

// chunkSink is the io.Writer COPY TO STDOUT writes one chunk into. It splits lines,
// decodes the fields and cuts records into batches. The server sends one row per
// CopyData message, but a line split across writes is still reassembled. Each reader
// has its own.
type chunkSink struct {
	epoch    uint32
	commitTS time.Time
	txid     string
	skips    map[uint32]map[string]bool

	// The current chunk.
	job    *chunkJob
	schema *record.Schema
	codecs []*pgvalue.Codec
	key    []int  // the fields of the resume key: key columns in index order, or the ctid
	extra  int    // fields after the columns (the ctid)
	chunk  uint32 // the chunk's number in positions
	row    uint32 // rows of the chunk so far (a position's row counts from 1)
	rows   int64

	// The key fields (still COPY-escaped, each as length uint32 + bytes) of the line
	// being read, and of the last record: a batch's last position carries it, the
	// key a restart continues after.
	lineKey, curKey []byte

	batch   []record.Record
	bytes   int // of the lines of batch
	batches [][]record.Record
	vals    record.ValueSlab // where the After slices are cut from
	poss    []byte           // block the next positions are cut from
	fields  [][]byte
	alloc   pgvalue.Alloc // decoded values come from its blocks, not one allocation each
	lines   copyLines
	err     error // why the sink stopped the COPY

	// A resume leaves out the rows whose key changed after the consistent point
	// (resume.go): skip and skipCols for this table.
	skip     map[string]bool
	skipCols []int
	keyParts [][]byte
}

// read reads job on conn.
func (w *chunkSink) read(ctx context.Context, conn *pgx.Conn, job *chunkJob) *chunkResult {
	tb := job.tb
	w.job, w.schema, w.codecs = job, tb.sh.schema, tb.sh.codecs
	w.key, w.extra = nil, 0
	switch job.plan.By {
	case splitKey:
		w.key = tb.key
	case splitCtid:
		// The ctid the query adds after the columns is the resume key.
		w.key, w.extra = []int{len(w.codecs)}, 1
	}
	w.chunk, w.row, w.rows = job.chunk, job.row, 0
	w.skip, w.skipCols = w.skips[tb.ordinal], snapKey(tb)
	w.curKey, w.batches, w.batch, w.err = w.curKey[:0], nil, nil, nil
	w.vals = record.ValueSlab{Rows: snapshotBatch / 4}
	w.lines.reset()
	res := &chunkResult{job: job}
	sql := chunkQuery(tb, job.plan, job.idx, job.after, job.list)
	if _, err := conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		res.err = w.err
		if res.err == nil {
			res.err = classify(fmt.Sprintf("snapshot %s chunk %d", tb.t.qualified(), job.chunk), err)
		}
		return res
	}
	if err := w.lines.finish(w); err != nil {
		res.err = err
		return res
	}
	w.cut()
	res.batches, res.rows = w.batches, w.rows
	res.end = make(record.Position, snapshotPosLen)
	putSnapshotPos(res.end, w.epoch, tb.ordinal, w.chunk, w.row)
	w.batches, w.batch = nil, nil
	return res
}

// Write implements io.Writer for pgconn's CopyTo; p is only valid during the call.
func (w *chunkSink) Write(p []byte) (int, error) {
	if err := w.lines.feed(p, w); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *chunkSink) line(line []byte) error {
	ncols := len(w.codecs)
	name := w.job.tb.t.qualified()
	if ncols+w.extra > 0 {
		w.fields = pgvalue.SplitCopyLine(line, w.fields)
		if len(w.fields) != ncols+w.extra {
			w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s chunk %d row %d: got %d fields, want %d", name, w.chunk, w.row+1, len(w.fields), ncols+w.extra))
			return w.err
		}
		w.lineKey = w.lineKey[:0]
		for _, i := range w.key {
			w.lineKey = binary.BigEndian.AppendUint32(w.lineKey, uint32(len(w.fields[i])))
			w.lineKey = append(w.lineKey, w.fields[i]...)
		}
	}
	if w.row == math.MaxUint32 {
		if !w.job.last {
			w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s chunk %d holds more than %d rows (its keys are bunched far from the even split); lower snapshot_chunk", name, w.chunk, uint32(math.MaxUint32)))
			return w.err
		}
		// The table's last chunk: no later chunk of the table has this number.
		w.chunk++
		w.row = 0
	}
	w.row++
	w.rows++
	if ncols > 0 && !w.keep() {
		// The stream delivers this row's changes since the consistent point; its
		// number is used up all the same.
		return nil
	}
	vals := w.vals.Take(ncols)
	if ncols > 0 {
		if i, err := decodeCopyRow(w.fields[:ncols], w.codecs, &w.alloc, vals); err != nil {
			w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s chunk %d row %d column %s: %w", name, w.chunk, w.row, w.schema.Columns[i].Name, err))
			return w.err
		}
	}
	w.curKey, w.lineKey = w.lineKey, w.curKey
	if len(w.poss) < snapshotPosLen {
		w.poss = make([]byte, snapshotPosLen*snapshotBatch)
	}
	pos := w.poss[:snapshotPosLen:snapshotPosLen]
	w.poss = w.poss[snapshotPosLen:]
	putSnapshotPos(pos, w.epoch, w.job.tb.ordinal, w.chunk, w.row)
	if w.batch == nil {
		w.batch = make([]record.Record, 0, snapshotBatch)
	}
	w.batch = append(w.batch, record.Record{
		Op: record.OpRead, Schema: w.schema, After: vals, Pos: pos, CommitTS: w.commitTS, TxID: w.txid,
	})
	w.bytes += len(line)
	if len(w.batch) == snapshotBatch || w.bytes >= snapshotBatchBytes {
		w.cut()
	}
	return nil
}

// cut ends the current batch. The runtime commits whole batches: the key on a
// batch's last position is where a restart continues.
func (w *chunkSink) cut() {
	if len(w.batch) == 0 {
		return
	}
	if w.key != nil {
		end := &w.batch[len(w.batch)-1]
		end.Pos = withKey(end.Pos, unescapeKey(w.curKey))
	}
	w.batches = append(w.batches, w.batch)
	w.batch, w.bytes = nil, 0
}

// textLiteral quotes v as an escape string constant, which reads the same whatever
// standard_conforming_strings says.
func textLiteral(v string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(v) + "'"
}

// decodeCopyRow decodes the fields of one COPY text line into vals, leaving NULLs
// nil; verify's scan (verify.go) decodes through it too, so that its values are the
// snapshot's. On error it returns the index of the column that failed.
func decodeCopyRow(fields [][]byte, codecs []*pgvalue.Codec, alloc *pgvalue.Alloc, vals []record.Value) (int, error) {
	for i, f := range fields {
		raw, null := pgvalue.UnescapeCopyText(f)
		if null {
			vals[i] = nil
			continue
		}
		v, err := codecs[i].DecodeWith(alloc, raw)
		if err != nil {
			return i, err
		}
		vals[i] = v
	}
	return 0, nil
}

// unescapeKey turns key fields kept by line into their text.
func unescapeKey(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		f := b[4 : 4+n]
		b = b[4+n:]
		raw, _ := pgvalue.UnescapeCopyText(f) // key columns are never null
		out = append(out, append([]byte(nil), raw...))
	}
	return out
}

// copyLines cuts COPY text output, which pgconn hands over in pieces of any size,
// into lines: the part of a line a piece ends in is kept for the next one. The
// snapshot's sink and verify's share it.
type copyLines struct {
	carry []byte // an incomplete line from the previous piece
}

// lineReader takes one COPY line (without its newline); the line is only valid
// during the call.
type lineReader interface {
	line(line []byte) error
}

// feed hands every complete line of p to r.
func (c *copyLines) feed(p []byte, r lineReader) error {
	if len(c.carry) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.carry = append(c.carry, p...)
			return nil
		}
		c.carry = append(c.carry, p[:i]...)
		if err := r.line(c.carry); err != nil {
			return err
		}
		c.carry = c.carry[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.carry = append(c.carry, p...)
			break
		}
		if err := r.line(p[:i]); err != nil {
			return err
		}
		p = p[i+1:]
	}
	return nil
}

// finish hands r a last line that came without its newline.
func (c *copyLines) finish(r lineReader) error {
	if len(c.carry) == 0 {
		return nil
	}
	err := r.line(c.carry)
	c.carry = c.carry[:0]
	return err
}

func (c *copyLines) reset() { c.carry = c.carry[:0] }
