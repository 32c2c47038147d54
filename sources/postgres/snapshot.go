package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pgx/v5"
)

// snapshotBatch is how many records one emit call carries during a snapshot.
const snapshotBatch = 2048

// snapshot reads every table inside the slot's exported snapshot and emits op 'r'
// records. The replication connection stays idle meanwhile: the exported snapshot
// lives only until it runs its next command, and once SET TRANSACTION SNAPSHOT has
// run the transaction holds it on its own.
func (s *Source) snapshot(ctx context.Context, snapName string, epoch uint32, tables []table, emit connector.EmitFunc) error {
	s.status.SetPhase("snapshot")
	if _, err := s.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return classify("begin snapshot transaction", err)
	}
	committed := false
	defer func() {
		if !committed && !s.conn.IsClosed() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_, _ = s.conn.Exec(rctx, "ROLLBACK")
		}
	}()
	if _, err := s.conn.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(snapName, "'", "''")+"'"); err != nil {
		return classify("import snapshot "+snapName, err)
	}
	var now time.Time
	var txid string
	if err := s.conn.QueryRow(ctx, "SELECT now(), txid_current()::text").Scan(&now, &txid); err != nil {
		return classify("read snapshot time", err)
	}
	sink := &copySink{
		ctx: ctx, emit: emit, status: s.status, acks: &s.ack, epoch: epoch,
		commitTS: now.UTC().Truncate(time.Microsecond), txid: txid,
	}
	started := time.Now()
	var total int64
	for i, t := range tables {
		sh := s.shapes[t.qualified()]
		sink.startTable(uint32(i), t, sh)
		cols := make([]string, len(sh.schema.Columns))
		for j, c := range sh.schema.Columns {
			cols[j] = pgx.Identifier{c.Name}.Sanitize()
		}
		sql := fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT", strings.Join(cols, ", "), t.ident())
		if len(cols) == 0 {
			sql = fmt.Sprintf("COPY (SELECT FROM %s) TO STDOUT", t.ident())
		}
		if _, err := s.conn.PgConn().CopyTo(ctx, sink, sql); err != nil {
			if sink.err != nil {
				return sink.err
			}
			return classify("snapshot "+t.qualified(), err)
		}
		if err := sink.endTable(); err != nil {
			return err
		}
		total += int64(sink.row)
		s.log.Info("snapshot table done", "table", t.qualified(), "rows", sink.row)
	}
	if err := sink.finish(); err != nil {
		return err
	}
	if _, err := s.conn.Exec(ctx, "COMMIT"); err != nil {
		return classify("commit snapshot transaction", err)
	}
	committed = true
	s.log.Info("snapshot complete", "tables", len(tables), "rows", total, "elapsed", time.Since(started).Round(time.Millisecond))
	return nil
}

// copySink is the io.Writer COPY TO STDOUT writes into. It splits lines, decodes the
// fields and emits records in batches. The server sends one row per CopyData message,
// but a line split across writes is still reassembled.
type copySink struct {
	ctx      context.Context
	emit     connector.EmitFunc
	status   connector.Status
	acks     *acks
	epoch    uint32
	commitTS time.Time
	txid     string

	// The current table.
	ordinal  uint32
	name     string
	estimate int64
	schema   *record.Schema
	codecs   []*pgvalue.Codec
	row      uint64

	recs   []record.Record
	vals   []record.Value // block the next After slices are cut from
	poss   []byte         // block the next positions are cut from
	fields [][]byte
	carry  []byte // an incomplete line from the previous write
	err    error  // why the sink stopped the COPY
}

func (w *copySink) startTable(ordinal uint32, t table, sh *tableShape) {
	w.ordinal, w.name, w.estimate = ordinal, t.qualified(), t.estimate
	w.schema, w.codecs = sh.schema, sh.codecs
	w.row = 0
	w.carry = w.carry[:0]
}

// Write implements io.Writer for pgconn's CopyTo; p is only valid during the call.
func (w *copySink) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.carry) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.carry = append(w.carry, p...)
			return n, nil
		}
		w.carry = append(w.carry, p[:i]...)
		if err := w.line(w.carry); err != nil {
			return 0, err
		}
		w.carry = w.carry[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.carry = append(w.carry, p...)
			break
		}
		if err := w.line(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *copySink) line(line []byte) error {
	ncols := len(w.codecs)
	vals := w.values(ncols)
	if ncols > 0 {
		w.fields = pgvalue.SplitCopyLine(line, w.fields)
		if len(w.fields) != ncols {
			w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s row %d: got %d fields, want %d", w.name, w.row+1, len(w.fields), ncols))
			return w.err
		}
		for i, f := range w.fields {
			raw, null := pgvalue.UnescapeCopyText(f)
			if null {
				continue
			}
			v, err := w.codecs[i].Decode(raw)
			if err != nil {
				w.err = connector.Permanent(fmt.Errorf("postgres: snapshot %s row %d column %s: %w", w.name, w.row+1, w.schema.Columns[i].Name, err))
				return w.err
			}
			vals[i] = v
		}
	}
	w.row++
	if len(w.poss) < snapshotPosLen {
		w.poss = make([]byte, snapshotPosLen*snapshotBatch)
	}
	pos := w.poss[:snapshotPosLen:snapshotPosLen]
	w.poss = w.poss[snapshotPosLen:]
	putSnapshotPos(pos, w.epoch, w.ordinal, w.row)
	if w.recs == nil {
		w.recs = make([]record.Record, 0, snapshotBatch)
	}
	w.recs = append(w.recs, record.Record{
		Op: record.OpRead, Schema: w.schema, After: vals, Pos: pos, CommitTS: w.commitTS, TxID: w.txid,
	})
	if len(w.recs) == snapshotBatch {
		// Hold the last record back: it may turn out to be the snapshot's very last
		// one, which carries the completion marker.
		last := w.recs[len(w.recs)-1]
		batch := w.recs[:len(w.recs)-1]
		w.recs = make([]record.Record, 1, snapshotBatch)
		w.recs[0] = last
		w.acks.setEmitted(batch[len(batch)-1].Pos)
		if err := w.emit(w.ctx, batch); err != nil {
			w.err = fmt.Errorf("postgres: snapshot %s: emit: %w", w.name, err)
			return w.err
		}
		w.status.SnapshotProgress(w.name, int64(w.row), max(w.estimate, int64(w.row)))
	}
	return nil
}

// values cuts an After slice of n values from the current block.
func (w *copySink) values(n int) []record.Value {
	if len(w.vals) < n {
		w.vals = make([]record.Value, max(n*snapshotBatch/4, 1024))
	}
	v := w.vals[:n:n]
	w.vals = w.vals[n:]
	return v
}

func (w *copySink) endTable() error {
	if len(w.carry) > 0 {
		if err := w.line(w.carry); err != nil {
			return err
		}
		w.carry = w.carry[:0]
	}
	w.status.SnapshotProgress(w.name, int64(w.row), int64(w.row))
	return nil
}

// finish emits what is left, the last record extended by the completion marker.
func (w *copySink) finish() error {
	if len(w.recs) == 0 {
		return nil
	}
	last := &w.recs[len(w.recs)-1]
	done := make(record.Position, snapshotDoneLen)
	copy(done, last.Pos)
	done[snapshotDoneLen-1] = snapshotDoneByte
	last.Pos = done
	batch := w.recs
	w.recs = nil
	w.acks.setEmitted(done)
	if err := w.emit(w.ctx, batch); err != nil {
		return fmt.Errorf("postgres: snapshot: emit: %w", err)
	}
	return nil
}
