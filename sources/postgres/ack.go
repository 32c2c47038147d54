package postgres

import (
	"bytes"
	"sync"

	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
)

// txnMark is a delivered transaction: the position of its last record and the LSN
// just past its commit record, which is what the slot may be told once that record
// is durable.
type txnMark struct {
	last record.Position
	end  pglogrepl.LSN
}

// acks tracks what the pipeline has made durable and derives the LSN the slot may
// confirm. The reader goroutine adds transactions; Ack calls come from the pipeline.
type acks struct {
	mu      sync.Mutex
	queue   []txnMark
	emitted record.Position // last position handed to emit
	acked   record.Position // last position the pipeline acked
	confirm pglogrepl.LSN   // never beyond the end of a fully acked transaction
	// holds keep the slot from confirming past a low watermark until the chunk its
	// high watermark carries is durable: a replay must see the whole window again.
	holds []ackHold
}

// ackHold caps the confirmable LSN at lsn (the commit LSN of a low watermark's
// transaction) until its window closed and everything up to until is acked.
type ackHold struct {
	lsn    pglogrepl.LSN
	closed bool
	until  record.Position
}

// reset starts tracking for a new Read: confirmed is the slot's current
// confirmed_flush_lsn, start the committed position the Read began at.
func (a *acks) reset(confirmed pglogrepl.LSN, start record.Position) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = a.queue[:0]
	a.holds = a.holds[:0]
	// Acks of snapshot records may have come in already; never move back.
	if bytes.Compare(start, a.acked) > 0 {
		a.acked = append(record.Position(nil), start...)
	}
	if bytes.Compare(start, a.emitted) > 0 {
		a.emitted = start
	}
	if confirmed > a.confirm {
		a.confirm = confirmed
	}
}

// setEmitted records the last position handed to the pipeline.
func (a *acks) setEmitted(p record.Position) {
	a.mu.Lock()
	if bytes.Compare(p, a.emitted) > 0 {
		a.emitted = p
	}
	a.mu.Unlock()
}

// committed queues a transaction whose records end at last, confirmable up to end
// once last is acked: just past its commit record's start for a transaction with
// records, the mark's LSN for a mark (see position.go).
func (a *acks) committed(last record.Position, end pglogrepl.LSN) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.queue = append(a.queue, txnMark{last: last, end: end})
	a.advance()
}

// ack records that everything up to pos is durable and reports whether the
// confirmable LSN moved.
func (a *acks) ack(pos record.Position) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if bytes.Compare(pos, a.acked) > 0 {
		a.acked = append(record.Position(nil), pos...)
	}
	before := a.confirm
	a.advance()
	return a.confirm > before
}

// hold caps the confirmable LSN at lsn until release(lsn) and the ack that follows.
func (a *acks) hold(lsn pglogrepl.LSN) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, h := range a.holds {
		if h.lsn == lsn && !h.closed {
			return
		}
	}
	a.holds = append(a.holds, ackHold{lsn: lsn})
}

// release ends the hold at lsn once everything up to until is acked; nil until
// means everything handed to the pipeline so far.
func (a *acks) release(lsn pglogrepl.LSN, until record.Position) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if until == nil {
		until = append(record.Position(nil), a.emitted...)
	}
	for i := range a.holds {
		if a.holds[i].lsn == lsn && !a.holds[i].closed {
			a.holds[i].closed, a.holds[i].until = true, until
		}
	}
	a.advance()
}

// holdCap drops the holds that are over and returns the lowest LSN still held.
func (a *acks) holdCap() (pglogrepl.LSN, bool) {
	n := 0
	for _, h := range a.holds {
		if h.closed && bytes.Compare(h.until, a.acked) <= 0 {
			continue
		}
		a.holds[n] = h
		n++
	}
	clear(a.holds[n:])
	a.holds = a.holds[:n]
	if n == 0 {
		return 0, false
	}
	low := a.holds[0].lsn
	for _, h := range a.holds[1:] {
		low = min(low, h.lsn)
	}
	return low, true
}

func (a *acks) advance() {
	capLSN, capped := a.holdCap()
	i := 0
	for ; i < len(a.queue) && bytes.Compare(a.queue[i].last, a.acked) <= 0; i++ {
		if capped && a.queue[i].end > capLSN {
			break
		}
		if a.queue[i].end > a.confirm {
			a.confirm = a.queue[i].end
		}
	}
	if i > 0 {
		n := copy(a.queue, a.queue[i:])
		clear(a.queue[n:])
		a.queue = a.queue[:n]
	}
}

// idle reports whether the slot may follow the server's WAL up to serverEnd:
// nothing delivered is unacked and no transaction is being read, so WAL up to
// serverEnd holds nothing for us. The caller then emits a mark at serverEnd, and the
// slot confirms it once the mark is committed, never before: the committed position
// must always cover what the slot confirmed.
func (a *acks) idle(serverEnd pglogrepl.LSN) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) > 0 || bytes.Compare(a.emitted, a.acked) > 0 || serverEnd <= a.confirm {
		return false
	}
	if _, held := a.holdCap(); held {
		return false
	}
	// After a restart at a mark the server may resend from an earlier point.
	return bytes.Compare(streamMark(serverEnd), a.emitted) > 0
}

// confirmed is the LSN the slot may be told.
func (a *acks) confirmed() pglogrepl.LSN {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.confirm
}
