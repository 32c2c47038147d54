package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

const (
	// streamBatch is the most records one emit call carries while streaming.
	streamBatch = 1024
	// streamBatchBytes bounds the pgoutput bytes of a batch, so that large rows make
	// small batches.
	streamBatchBytes = 4 << 20
	// flushDelay is how long decoded records may wait for more to fill a batch.
	// Batches span transactions, so a stream of small ones is not emitted row by row.
	flushDelay = 20 * time.Millisecond
	// syncPing is how often ModeSync asks the server where its WAL ends.
	syncPing = time.Second
	// syncReplyGap is the least time between two unrequested answers to keepalives
	// in ModeSync. A PostgreSQL 15 walsender waiting for WAL sends a new keepalive
	// whenever a status update arrives while the client confirms less than it sent,
	// so answering each one at once is a busy loop of round trips.
	syncReplyGap = 100 * time.Millisecond
)

// errCaughtUp ends a ModeSync stream.
var errCaughtUp = errors.New("caught up")

// relation is a table as the stream knows it: the Relation message's columns and
// the shape records are built with.
type relation struct {
	name  string
	shape *tableShape
	key   []int // indexes of the key columns
	// rowKey: the whole row is the identity (REPLICA IDENTITY FULL, no primary
	// key), so an update is never split into a delete and an insert.
	rowKey bool
	// ignore: a table the config does not select, published anyway (a
	// publication made by hand, FOR ALL TABLES). Its changes are dropped and take
	// no sequence numbers. msg and gen let it be looked at again once the
	// selection changes (a table that began to match later).
	ignore bool
	msg    *pglogrepl.RelationMessage
	gen    int
}

// tupleCol is one column of a pgoutput TupleData, aliasing the message buffer.
type tupleCol struct {
	kind byte // 'n' null, 'u' unchanged TOAST, 't' text, 'b' binary
	data []byte
}

// streamer decodes pgoutput messages into records. It runs on the Read goroutine.
type streamer struct {
	s    *Source
	emit connector.EmitFunc
	sync bool
	// target is ModeSync's goal: everything committed before it.
	target pglogrepl.LSN
	// skipTo is the committed start position: records at or before it were
	// delivered by an earlier run and the server may send them again.
	skipTo  record.Position
	skipLSN pglogrepl.LSN

	rels map[uint32]*relation

	pending []record.Record
	// pendingBytes are the pgoutput bytes of pending; msgBytes those of the message
	// being handled, counted by the first record it gives.
	pendingBytes, msgBytes int
	vals                   record.ValueSlab
	poss                   []byte
	// Fields of the transaction being read.
	inTxn    bool
	txLSN    pglogrepl.LSN
	txSeq    uint32
	txTS     time.Time
	txID     string
	txLast   record.Position
	serverAt pglogrepl.LSN // last ServerWALEnd seen
	lastBeat time.Time     // last heartbeat message written
	// lastReply is when ModeSync last answered a keepalive it was not asked to.
	lastReply time.Time

	oldCols, newCols []tupleCol
	alloc            pgvalue.Alloc // decoded values come from its blocks

	// Snapshots of tables added later (incremental.go).
	inflight   string             // nonce of the chunk the driver waits for
	windows    map[string]*window // open low watermarks by id/chunk/nonce
	orders     map[string][]int   // key read order per table
	fields     [][]byte
	keyBuf     []byte
	discovered time.Time // when the catalog was last read for new tables
	// roots maps partitions to the selected partitioned table they belong to
	// ("" when none), for publications that publish partitions under their own name.
	roots map[uint32]string
}

// stream starts replication from the slot's confirmed point and emits changes until
// ctx ends (ModeStream) or everything before target is delivered (ModeSync).
func (s *Source) stream(ctx context.Context, start record.Position, confirmed, target pglogrepl.LSN, emit connector.EmitFunc) error {
	st := &streamer{s: s, emit: emit, sync: s.mode == connector.ModeSync, target: target, rels: map[uint32]*relation{},
		windows: map[string]*window{}, orders: map[string][]int{}, roots: map[uint32]string{}, discovered: time.Now()}
	if lsn, _, ok := parseStreamPos(start); ok {
		st.skipTo, st.skipLSN = start, lsn
	} else if lsn, ok := parseStreamMark(start); ok {
		st.skipTo, st.skipLSN = start, lsn
	}
	s.ack.reset(confirmed, start)
	pub := strings.ReplaceAll(pgx.Identifier{s.st.publication}.Sanitize(), "'", "''")
	// LSN 0: the server starts at the slot's confirmed_flush_lsn.
	keeper := s.keeperInterval(ctx)
	args := []string{"proto_version '1'", "publication_names '" + pub + "'"}
	if s.cat.version >= 140000 {
		// Watermarks of tables snapshotted while streaming are logical messages.
		args = append(args, "messages 'true'")
	}
	err := pglogrepl.StartReplication(ctx, s.repl, s.st.slot, 0, pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: args,
	})
	if err != nil {
		return classify("start replication on slot "+s.st.slot, err)
	}
	s.sendMu.Lock()
	s.streaming = true
	s.sendMu.Unlock()
	s.startKeeper(keeper)
	s.status.SetPhase("streaming")
	s.log.Info("streaming", "from", confirmed.String(), "publication", s.st.publication)
	if st.sync {
		if err := s.sendStatus(ctx, true); err != nil {
			return err
		}
	}
	err = st.run(ctx)
	if errors.Is(err, errCaughtUp) {
		s.log.Info("caught up", "target", target.String())
		return nil
	}
	return err
}

func (st *streamer) run(ctx context.Context) error {
	s := st.s
	netConn := s.repl.Conn()
	coalesce(netConn, true)
	defer coalesce(netConn, false)
	// One watch of ctx for the whole stream, not one per message (ReceiveMessage
	// with a cancelable context registers and drops one each call): cancelling
	// ends the read in progress through its deadline.
	stopWatch := context.AfterFunc(ctx, func() { _ = netConn.SetReadDeadline(time.Now()) })
	defer stopWatch()
	var deadline time.Time
	nextWake := time.Now().Add(st.idleWait())
	for {
		s.reportRetained(ctx)
		if st.discoverDue() {
			st.discovered = time.Now()
			if err := s.discover(ctx); err != nil {
				return err
			}
		}
		if err := st.drive(ctx); err != nil {
			return err
		}
		if len(st.pending) > 0 && time.Until(nextWake) > flushDelay {
			nextWake = time.Now().Add(flushDelay)
		}
		if !nextWake.Equal(deadline) {
			deadline = nextWake
			if err := netConn.SetReadDeadline(deadline); err != nil {
				return classify("set read deadline", err)
			}
		}
		if err := ctx.Err(); err != nil {
			// After the deadline was set: a cancel from here on ends the read.
			return err
		}
		msg, err := s.repl.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				if err := st.wake(ctx); err != nil {
					return err
				}
				nextWake = time.Now().Add(st.idleWait())
				continue
			}
			return classify("receive from slot "+s.st.slot, err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: parse keepalive: %w", err)
				}
				if err := st.keepalive(ctx, ka); err != nil {
					return err
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: parse xlog data: %w", err)
				}
				if xld.ServerWALEnd > st.serverAt {
					st.serverAt = xld.ServerWALEnd
				}
				if err := st.message(ctx, xld.WALData); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return classify("stream from slot "+s.st.slot, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyDone:
			return fmt.Errorf("postgres: the server ended replication on slot %s", s.st.slot)
		}
	}
}

func (st *streamer) idleWait() time.Duration {
	if st.sync {
		return syncPing
	}
	if hb := st.s.st.heartbeat; hb > 0 && hb < statusInterval/2 {
		return hb
	}
	return statusInterval / 2
}

// wake runs when no message came before the read deadline.
func (st *streamer) wake(ctx context.Context) error {
	if err := st.flush(ctx); err != nil {
		return err
	}
	if st.sync && !st.inTxn {
		return st.s.sendStatus(ctx, true)
	}
	if hb := st.s.st.heartbeat; hb > 0 && time.Since(st.lastBeat) >= hb {
		st.lastBeat = time.Now()
		st.heartbeat(ctx)
	}
	return nil
}

// heartbeat writes a non-transactional logical message: WAL that the walsender
// decodes, after which its keepalives carry a newer position and an idle slot can
// confirm it even when nothing else writes to the server.
func (st *streamer) heartbeat(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := st.s.conn.Exec(hctx, "SELECT pg_catalog.pg_logical_emit_message(false, 'connectd_heartbeat', '')"); err != nil {
		st.s.log.Warn("heartbeat failed (it needs EXECUTE on pg_logical_emit_message); set heartbeat: 0 to disable", "err", err)
	}
}

func (st *streamer) keepalive(ctx context.Context, ka pglogrepl.PrimaryKeepaliveMessage) error {
	s := st.s
	if ka.ServerWALEnd > st.serverAt {
		st.serverAt = ka.ServerWALEnd
	}
	reply := ka.ReplyRequested
	if !st.inTxn && len(st.pending) == 0 && s.ack.idle(ka.ServerWALEnd) {
		if err := st.mark(ctx, ka.ServerWALEnd, time.Now().UTC().Truncate(time.Microsecond)); err != nil {
			return err
		}
	}
	if st.sync && !st.inTxn && ka.ServerWALEnd >= st.target && st.incrIdle() {
		if err := st.flush(ctx); err != nil {
			return err
		}
		return errCaughtUp
	}
	if st.sync && !reply && time.Since(st.lastReply) >= syncReplyGap {
		// Answering lets the walsender send its next keepalive as soon as it has
		// read further, which is how ModeSync learns it reached the target; at a
		// bounded rate (syncReplyGap), because the walsender answers each reply.
		st.lastReply = time.Now()
		reply = true
	}
	if reply {
		return s.sendStatus(ctx, false)
	}
	return nil
}

// message handles one pgoutput message. data aliases the connection's buffer.
func (st *streamer) message(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	st.msgBytes = len(data)
	switch pglogrepl.MessageType(data[0]) {
	case pglogrepl.MessageTypeBegin:
		var m pglogrepl.BeginMessage
		if err := m.Decode(data[1:]); err != nil {
			return fmt.Errorf("postgres: decode begin: %w", err)
		}
		st.inTxn, st.txLSN, st.txSeq, st.txLast = true, m.FinalLSN, 0, nil
		st.txTS = m.CommitTime.UTC().Truncate(time.Microsecond)
		st.txID = strconv.FormatUint(uint64(m.Xid), 10)
	case pglogrepl.MessageTypeCommit:
		var m pglogrepl.CommitMessage
		if err := m.Decode(data[1:]); err != nil {
			return fmt.Errorf("postgres: decode commit: %w", err)
		}
		return st.commit(ctx, m)
	case pglogrepl.MessageTypeRelation:
		var m pglogrepl.RelationMessage
		if err := m.Decode(data[1:]); err != nil {
			return fmt.Errorf("postgres: decode relation: %w", err)
		}
		return st.relation(ctx, &m)
	case pglogrepl.MessageTypeType:
		var m pglogrepl.TypeMessage
		if err := m.Decode(data[1:]); err != nil {
			return fmt.Errorf("postgres: decode type: %w", err)
		}
		st.s.cat.forget(m.DataType)
	case pglogrepl.MessageTypeMessage:
		return st.logicalMessage(ctx, data[1:])
	case pglogrepl.MessageTypeInsert:
		return st.insert(ctx, data[1:])
	case pglogrepl.MessageTypeUpdate:
		return st.update(ctx, data[1:])
	case pglogrepl.MessageTypeDelete:
		return st.delete(ctx, data[1:])
	case pglogrepl.MessageTypeTruncate:
		var m pglogrepl.TruncateMessage
		if err := m.Decode(data[1:]); err != nil {
			return fmt.Errorf("postgres: decode truncate: %w", err)
		}
		for _, id := range m.RelationIDs {
			rel, err := st.rel(ctx, id)
			if err != nil {
				return err
			}
			if rel.ignore {
				continue
			}
			st.watch(rel, nil)
			after := st.vals.Take(len(rel.shape.schema.Columns))
			if err := st.add(ctx, record.Record{Op: record.OpTruncate, Schema: rel.shape.schema, After: after}); err != nil {
				return err
			}
		}
	}
	// Origin and logical decoding messages carry no rows.
	return nil
}

func (st *streamer) commit(ctx context.Context, m pglogrepl.CommitMessage) error {
	s := st.s
	st.inTxn = false
	switch {
	case st.txLast != nil:
		// Confirming just past the commit record's start is enough for the server
		// to skip the transaction after a restart, and it is what the committed
		// position of its last record covers (coveredLSN).
		s.ack.committed(st.txLast, m.CommitLSN+1)
	case st.skipTo == nil || bytes.Compare(streamMark(m.TransactionEndLSN), st.skipTo) > 0:
		// Nothing for us: a mark lets the slot move past it once committed.
		if err := st.mark(ctx, m.TransactionEndLSN, st.txTS); err != nil {
			return err
		}
	}
	if lag := int64(st.serverAt) - int64(m.TransactionEndLSN); lag >= 0 {
		s.status.SourceLag(lag, time.Since(st.txTS).Seconds())
	}
	if st.sync && m.TransactionEndLSN >= st.target && st.incrIdle() {
		if err := st.flush(ctx); err != nil {
			return err
		}
		return errCaughtUp
	}
	return nil
}

func (st *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	s := st.s
	name := m.Namespace + "." + m.RelationName
	namespace, table := m.Namespace, m.RelationName
	if !s.selected[name] {
		root, err := st.partitionRoot(ctx, m.RelationID)
		if err != nil {
			return err
		}
		if root == "" {
			st.rels[m.RelationID] = &relation{name: name, ignore: true, msg: m, gen: s.selGen}
			return nil
		}
		// A publication without publish_via_partition_root (or FOR ALL TABLES)
		// sends a partition's changes under the partition's name: they belong to
		// the selected partitioned table.
		name = root
		namespace, table, _ = strings.Cut(root, ".")
	}
	cols, key, rowKey, err := s.cat.relationColumns(ctx, m)
	if err != nil {
		return err
	}
	sh, err := s.cat.shape(ctx, namespace, table, cols, key)
	if err != nil {
		return err
	}
	sh = s.adoptShape(sh)
	rel := &relation{name: name, shape: sh, key: sh.schema.KeyIndexes(), rowKey: rowKey}
	st.rels[m.RelationID] = rel
	return nil
}

func (st *streamer) rel(ctx context.Context, id uint32) (*relation, error) {
	rel, ok := st.rels[id]
	if !ok {
		return nil, fmt.Errorf("postgres: change for relation %d arrived before its Relation message", id)
	}
	if rel.ignore && rel.gen != st.s.selGen && rel.msg != nil {
		// The selection changed since: the table may be selected now.
		delete(st.roots, id)
		if err := st.relation(ctx, rel.msg); err != nil {
			return nil, err
		}
		rel = st.rels[id]
	}
	return rel, nil
}

func (st *streamer) insert(ctx context.Context, b []byte) error {
	if len(b) < 5 || b[4] != 'N' {
		return errors.New("postgres: malformed insert message")
	}
	rel, err := st.rel(ctx, binary.BigEndian.Uint32(b))
	if err != nil || rel.ignore {
		return err
	}
	if st.newCols, _, err = parseTuple(b[5:], st.newCols); err != nil {
		return fmt.Errorf("postgres: insert into %s: %w", rel.name, err)
	}
	st.watch(rel, st.newCols)
	if st.skipNext() {
		return nil
	}
	after, unchanged, err := st.decode(rel, st.newCols, nil)
	if err != nil {
		return err
	}
	return st.add(ctx, record.Record{Op: record.OpCreate, Schema: rel.shape.schema, After: after, Unchanged: unchanged})
}

func (st *streamer) update(ctx context.Context, b []byte) error {
	if len(b) < 5 {
		return errors.New("postgres: malformed update message")
	}
	rel, err := st.rel(ctx, binary.BigEndian.Uint32(b))
	if err != nil || rel.ignore {
		return err
	}
	b = b[4:]
	oldKind := byte(0)
	if b[0] == 'K' || b[0] == 'O' {
		oldKind = b[0]
		if st.oldCols, b, err = parseTuple(b[1:], st.oldCols); err != nil {
			return fmt.Errorf("postgres: update of %s: old tuple: %w", rel.name, err)
		}
	}
	if len(b) == 0 || b[0] != 'N' {
		return fmt.Errorf("postgres: update of %s: malformed message", rel.name)
	}
	if st.newCols, _, err = parseTuple(b[1:], st.newCols); err != nil {
		return fmt.Errorf("postgres: update of %s: new tuple: %w", rel.name, err)
	}
	var old []tupleCol
	if oldKind != 0 {
		old = st.oldCols
		st.watch(rel, old)
	}
	st.watch(rel, st.newCols)
	keyChanged := old != nil && !rel.rowKey && keyDiffers(rel.key, old, st.newCols)
	if keyChanged {
		// A key change is a delete of the old key, then an insert (docs/design.md, "Envelope").
		if !st.skipNext() {
			before, _, err := st.decode(rel, old, nil)
			if err != nil {
				return err
			}
			// Not the end of a batch: a flush between the two halves would leave
			// a destination without the old key's row when the new one comes,
			// and with it the unchanged TOAST values the new row lacks.
			st.stage(record.Record{Op: record.OpDelete, Schema: rel.shape.schema, Before: before})
		}
		if st.skipNext() {
			return nil
		}
		after, unchanged, err := st.decode(rel, st.newCols, fullImage(oldKind, old))
		if err != nil {
			return err
		}
		return st.add(ctx, record.Record{Op: record.OpCreate, Schema: rel.shape.schema, After: after, Unchanged: unchanged})
	}
	if st.skipNext() {
		return nil
	}
	var before []record.Value
	if old != nil {
		if before, _, err = st.decode(rel, old, nil); err != nil {
			return err
		}
	}
	after, unchanged, err := st.decode(rel, st.newCols, fullImage(oldKind, old))
	if err != nil {
		return err
	}
	return st.add(ctx, record.Record{Op: record.OpUpdate, Schema: rel.shape.schema, Before: before, After: after, Unchanged: unchanged})
}

// fullImage is the old tuple when it is a full row (REPLICA IDENTITY FULL), whose
// values stand in for the new tuple's unchanged TOAST columns.
func fullImage(kind byte, old []tupleCol) []tupleCol {
	if kind == 'O' {
		return old
	}
	return nil
}

func (st *streamer) delete(ctx context.Context, b []byte) error {
	if len(b) < 5 || (b[4] != 'K' && b[4] != 'O') {
		return errors.New("postgres: malformed delete message")
	}
	rel, err := st.rel(ctx, binary.BigEndian.Uint32(b))
	if err != nil || rel.ignore {
		return err
	}
	if st.oldCols, _, err = parseTuple(b[5:], st.oldCols); err != nil {
		return fmt.Errorf("postgres: delete from %s: %w", rel.name, err)
	}
	st.watch(rel, st.oldCols)
	if st.skipNext() {
		return nil
	}
	before, _, err := st.decode(rel, st.oldCols, nil)
	if err != nil {
		return err
	}
	return st.add(ctx, record.Record{Op: record.OpDelete, Schema: rel.shape.schema, Before: before})
}

// keyDiffers compares the key columns of the old and new tuples as text. A key
// column the new tuple left out (unchanged TOAST) is unchanged.
func keyDiffers(key []int, old, new []tupleCol) bool {
	for _, i := range key {
		if i >= len(old) || i >= len(new) {
			return true
		}
		o, n := old[i], new[i]
		if n.kind == 'u' || o.kind == 'u' {
			continue
		}
		if o.kind != n.kind || !bytes.Equal(o.data, n.data) {
			return true
		}
	}
	return false
}

// skipNext numbers the next record of the transaction and reports whether an
// earlier run already delivered it.
func (st *streamer) skipNext() bool {
	seq := st.txSeq
	st.txSeq++
	if st.skipTo == nil || st.txLSN > st.skipLSN {
		return false
	}
	var p [streamPosLen]byte
	putStreamPos(p[:], st.txLSN, seq)
	if bytes.Compare(p[:], st.skipTo) <= 0 {
		st.txLast = append(record.Position(nil), p[:]...)
		return true
	}
	return false
}

// add appends a record with the position skipNext numbered, and emits a full batch.
func (st *streamer) add(ctx context.Context, r record.Record) error {
	if r.Op == record.OpTruncate && st.skipNext() {
		return nil
	}
	st.stage(r)
	if len(st.pending) >= streamBatch || st.pendingBytes >= streamBatchBytes {
		return st.flush(ctx)
	}
	return nil
}

// stage gives r the transaction's next position and adds it to the pending records.
func (st *streamer) stage(r record.Record) {
	if len(st.poss) < streamPosLen {
		st.poss = make([]byte, streamPosLen*streamBatch)
	}
	pos := st.poss[:streamPosLen:streamPosLen]
	st.poss = st.poss[streamPosLen:]
	putStreamPos(pos, st.txLSN, st.txSeq-1)
	r.Pos, r.CommitTS, r.TxID = pos, st.txTS, st.txID
	st.txLast = pos
	if st.pending == nil {
		st.pending = make([]record.Record, 0, streamBatch)
	}
	st.pending = append(st.pending, r)
	st.pendingBytes += st.msgBytes
	st.msgBytes = 0 // the two records of a key change come from one message
}

// mark adds a checkpoint at lsn to the pending records: every transaction
// committing before lsn is delivered (position.go). The slot confirms lsn once the
// pipeline committed it.
func (st *streamer) mark(ctx context.Context, lsn pglogrepl.LSN, ts time.Time) error {
	pos := streamMark(lsn)
	st.s.ack.committed(pos, lsn)
	st.pending = append(st.pending, record.Record{Op: record.OpCheckpoint, Pos: pos, CommitTS: ts})
	if len(st.pending) >= streamBatch {
		return st.flush(ctx)
	}
	return nil
}

// flush emits the pending records.
func (st *streamer) flush(ctx context.Context) error {
	if len(st.pending) == 0 {
		return nil
	}
	batch := st.pending
	st.pending, st.pendingBytes = nil, 0
	last := batch[len(batch)-1].Pos
	st.s.ack.setEmitted(last)
	if err := st.emit(ctx, batch); err != nil {
		return fmt.Errorf("postgres: emit: %w", err)
	}
	st.s.status.SourcePosition(describePosition(last, nil))
	return nil
}

// decode turns a tuple into values. Unchanged TOAST columns become nil and are named
// in unchanged, unless fill (a full old image) has their value.
func (st *streamer) decode(rel *relation, cols []tupleCol, fill []tupleCol) ([]record.Value, []string, error) {
	sch := rel.shape.schema
	if len(cols) != len(sch.Columns) {
		return nil, nil, fmt.Errorf("postgres: %s: tuple has %d columns, relation has %d", rel.name, len(cols), len(sch.Columns))
	}
	vals := st.vals.Take(len(cols))
	var unchanged []string
	for i, c := range cols {
		if c.kind == 'u' && fill != nil && i < len(fill) && fill[i].kind == 't' {
			c = fill[i]
		}
		switch c.kind {
		case 'n':
		case 'u':
			unchanged = append(unchanged, sch.Columns[i].Name)
		case 't':
			v, err := rel.shape.codecs[i].DecodeWith(&st.alloc, c.data)
			if err != nil {
				return nil, nil, connector.Permanent(fmt.Errorf("postgres: %s column %s at lsn %s: %w", rel.name, sch.Columns[i].Name, st.txLSN, err))
			}
			vals[i] = v
		default:
			return nil, nil, fmt.Errorf("postgres: %s column %s: unexpected tuple column kind %q", rel.name, sch.Columns[i].Name, c.kind)
		}
	}
	return vals, unchanged, nil
}

// parseTuple decodes a pgoutput TupleData into cols (reused), returning the bytes
// after it. Column data aliases b.
func parseTuple(b []byte, cols []tupleCol) ([]tupleCol, []byte, error) {
	if len(b) < 2 {
		return cols, nil, errors.New("tuple too short")
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	cols = cols[:0]
	for i := 0; i < n; i++ {
		if len(b) < 1 {
			return cols, nil, fmt.Errorf("tuple cut short at column %d of %d", i+1, n)
		}
		c := tupleCol{kind: b[0]}
		b = b[1:]
		switch c.kind {
		case 'n', 'u':
		case 't', 'b':
			if len(b) < 4 {
				return cols, nil, fmt.Errorf("tuple cut short at column %d of %d", i+1, n)
			}
			l := int(binary.BigEndian.Uint32(b))
			b = b[4:]
			if l < 0 || l > len(b) {
				return cols, nil, fmt.Errorf("column %d length %d exceeds the message", i+1, l)
			}
			c.data = b[:l:l]
			b = b[l:]
		default:
			return cols, nil, fmt.Errorf("column %d: unknown kind %q", i+1, c.kind)
		}
		cols = append(cols, c)
	}
	return cols, b, nil
}
