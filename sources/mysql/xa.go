package mysql

import (
	"context"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// MariaDB's GTID event flags for XA (not named by go-mysql): the event group that
// prepares an XA transaction, and the one that commits or rolls it back.
const (
	mariadbFlPreparedXA  = 64
	mariadbFlCompletedXA = 128
)

// xaTxn is an XA transaction whose prepared part was read from the binlog. Its rows
// are written to the binlog at XA PREPARE, but they exist only if an XA COMMIT
// follows (possibly much later, after other transactions): they are held until
// then, and dropped at XA ROLLBACK.
type xaTxn struct {
	start coords          // where its prepared part begins: a resume point that re-reads it
	xid   string          // as the server prints it: X'...',X'...',n
	recs  []record.Record // without positions, which the XA COMMIT gives them
}

// queryKind sorts the statements of binlog QUERY events that are not DDL.
type queryKind int

const (
	queryOther      queryKind = iota
	queryBegin                // BEGIN, START TRANSACTION
	queryCommit               // COMMIT
	queryRollback             // ROLLBACK (a transaction with non-transactional changes)
	querySavepoint            // SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT: inside a transaction
	queryXAStart              // XA START xid (MySQL; MariaDB flags the GTID event instead)
	queryXAEnd                // XA END xid
	queryXACommit             // XA COMMIT xid
	queryXARollback           // XA ROLLBACK xid
)

// classifyQuery returns what a QUERY event's statement is, and its XID for XA ones.
func classifyQuery(q string) (queryKind, string) {
	u := strings.ToUpper(q)
	word := func(prefix string) (string, bool) {
		if !strings.HasPrefix(u, prefix) {
			return "", false
		}
		return strings.TrimSpace(q[len(prefix):]), true
	}
	switch {
	case u == "BEGIN" || u == "START TRANSACTION":
		return queryBegin, ""
	case u == "COMMIT":
		return queryCommit, ""
	case u == "ROLLBACK":
		return queryRollback, ""
	case strings.HasPrefix(u, "SAVEPOINT ") || strings.HasPrefix(u, "ROLLBACK TO ") || strings.HasPrefix(u, "RELEASE SAVEPOINT "):
		return querySavepoint, ""
	}
	for _, k := range []struct {
		prefix string
		kind   queryKind
	}{{"XA START ", queryXAStart}, {"XA BEGIN ", queryXAStart}, {"XA END ", queryXAEnd}, {"XA COMMIT ", queryXACommit}, {"XA ROLLBACK ", queryXARollback}} {
		if xid, ok := word(k.prefix); ok {
			return k.kind, xid
		}
	}
	return queryOther, ""
}

// resumePoint is where a restart must begin to re-read the current transaction and
// every XA transaction still waiting for its XA COMMIT.
func (st *streamer) resumePoint() coords {
	if len(st.pending) > 0 {
		return st.pending[0].start
	}
	return st.txn
}

// xaPrepared ends the prepared part of the XA transaction being read: its rows wait
// for the XA COMMIT. A one-phase commit (MySQL) commits them at once.
func (st *streamer) xaPrepared(ctx context.Context, offset, end uint64, onePhase bool) (bool, error) {
	x := st.xa
	st.xa = nil
	if x != nil {
		if onePhase {
			if err := st.xaEmit(ctx, x, offset); err != nil {
				return false, err
			}
		} else {
			st.pending = append(st.pending, x)
		}
	}
	return st.endTxn(ctx, end)
}

// xaResolved handles XA COMMIT (commit true) or XA ROLLBACK of xid.
func (st *streamer) xaResolved(ctx context.Context, offset, end uint64, xid string, commit bool) (bool, error) {
	i := -1
	for j, x := range st.pending {
		if x.xid == xid {
			i = j
			break
		}
	}
	if i < 0 {
		if !commit {
			return st.endTxn(ctx, end)
		}
		return false, connector.Permanent(fmt.Errorf("mysql: XA COMMIT %s at %s:%d commits an XA transaction prepared before the point this connector started reading the binlog from, so its changes were never read (if it changed selected tables, they are missing); run `connectd offsets reset %s` to snapshot again while no XA transaction is left prepared (XA RECOVER lists them)",
			xid, st.file, offset, st.s.st.name))
	}
	x := st.pending[i]
	if commit {
		// Positioned at the XA COMMIT while x is still pending, so that a restart
		// inside its records re-reads its prepared part.
		if err := st.xaEmit(ctx, x, offset); err != nil {
			return false, err
		}
	}
	st.pending = append(st.pending[:i:i], st.pending[i+1:]...)
	return st.endTxn(ctx, end)
}

// xaEmit delivers the held rows of x as committed by the event at offset, with that
// transaction's id and commit time.
func (st *streamer) xaEmit(ctx context.Context, x *xaTxn, offset uint64) error {
	for i := range x.recs {
		r := x.recs[i]
		r.Pos = st.position(offset, uint32(i))
		r.CommitTS, r.TxID = st.commit, st.txid
		if st.skip != nil && atOrBefore(r.Pos[:streamPrefix], st.skip) {
			continue
		}
		if err := st.add(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
