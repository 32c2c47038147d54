package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/connectd/connectd/sources/postgres/pgvalue"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// A resumed snapshot reads the rest of its tables inside the exported snapshot of a
// temporary slot, whose consistent point L1 comes after the first run's L0. Rows
// changed between L0 and L1 are already in that snapshot, and the stream, which
// starts at L0, delivers those changes again. So the resume first decodes the slot's
// changes up to L1 without consuming them (pg_logical_slot_peek_binary_changes) and
// leaves out of its read every row whose key they touched: such a row comes from the
// stream alone, every other row was the same at L0 and at L1 and comes from the
// snapshot alone. Each change is delivered once (README: "Resuming an interrupted
// snapshot").

// resumeSnapshot is the exported snapshot a resume reads in, with the keys to leave
// out per table ordinal (keys encoded by skipKey).
type resumeSnapshot struct {
	name string
	at   pglogrepl.LSN
	skip map[uint32]map[string]bool
	// close ends the temporary slot's connection once the snapshot is imported.
	close func()
}

// exportResumeSnapshot creates a temporary slot on a connection of its own and
// collects the keys changed between the slot's consistent point L0 and the new
// snapshot's. tables are the tables the resume reads.
func (s *Source) exportResumeSnapshot(ctx context.Context, tables []snapTable) (*resumeSnapshot, error) {
	name := s.st.slot
	if len(name) > 56 {
		name = name[:56]
	}
	name += "_resume"
	ex, err := exportTemporary(ctx, s.st, name, "the resumed snapshot")
	if err != nil {
		return nil, err
	}
	skip, err := s.changedKeys(ctx, ex.at, tables)
	if err != nil {
		ex.close()
		return nil, err
	}
	return &resumeSnapshot{name: ex.name, at: ex.at, skip: skip, close: ex.close}, nil
}

// exported is a temporary slot's exported snapshot, alive until close ends the
// replication connection (and with it the slot).
type exported struct {
	name  string // the snapshot, for SET TRANSACTION SNAPSHOT
	at    pglogrepl.LSN
	close func()
}

// exportTemporary creates the temporary slot name on a replication connection of its
// own and returns its exported snapshot and consistent point; for names what the
// snapshot is for, in errors.
func exportTemporary(ctx context.Context, st settings, name, forWhat string) (exported, error) {
	repl, err := connectReplication(ctx, st)
	if err != nil {
		return exported{}, err
	}
	var once sync.Once
	closeRepl := func() {
		once.Do(func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = repl.Close(cctx)
		})
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, name, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT", Temporary: true,
	})
	if err != nil {
		closeRepl()
		return exported{}, classify("create the temporary replication slot "+name+" for "+forWhat, err)
	}
	at, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		closeRepl()
		return exported{}, fmt.Errorf("postgres: temporary slot %s consistent point %q: %w", name, res.ConsistentPoint, err)
	}
	return exported{name: res.SnapshotName, at: at, close: closeRepl}, nil
}

// changedKeys decodes the connector's slot up to upto without consuming it and
// returns, per table ordinal, the keys of the rows its changes touched: the old and
// the new key of every insert, update and delete.
func (s *Source) changedKeys(ctx context.Context, upto pglogrepl.LSN, tables []snapTable) (map[uint32]map[string]bool, error) {
	byName := map[string]*snapTable{}
	for i := range tables {
		byName[tables[i].t.qualified()] = &tables[i]
	}
	pub := pgx.Identifier{s.st.publication}.Sanitize()
	rows, err := s.conn.Query(ctx, `SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, $2::text::pg_lsn, NULL,
  'proto_version', '1', 'publication_names', $3)`, s.st.slot, upto.String(), pub)
	if err != nil {
		return nil, classify("read the changes since the snapshot's consistent point from slot "+s.st.slot, err)
	}
	defer rows.Close()
	skip := map[uint32]map[string]bool{}
	rels := map[uint32]*changedRel{}
	var cols []tupleCol
	n := 0
	for rows.Next() {
		data := rows.RawValues()[0]
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case 'R':
			var m pglogrepl.RelationMessage
			if err := m.Decode(data[1:]); err != nil {
				return nil, fmt.Errorf("postgres: decode relation: %w", err)
			}
			rels[m.RelationID] = newChangedRel(&m, byName[m.Namespace+"."+m.RelationName])
		case 'I', 'U', 'D':
			if len(data) < 6 {
				return nil, fmt.Errorf("postgres: malformed %c message", data[0])
			}
			rel := rels[binary.BigEndian.Uint32(data[1:5])]
			if rel == nil || rel.tb == nil {
				continue
			}
			b := data[5:]
			for len(b) > 0 && (b[0] == 'K' || b[0] == 'O' || b[0] == 'N') {
				if cols, b, err = parseTuple(b[1:], cols); err != nil {
					return nil, fmt.Errorf("postgres: %c message of %s: %w", data[0], rel.tb.t.qualified(), err)
				}
				if k, ok := rel.key(cols); ok {
					if skip[rel.tb.ordinal] == nil {
						skip[rel.tb.ordinal] = map[string]bool{}
					}
					skip[rel.tb.ordinal][k] = true
					n++
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read the changes since the snapshot's consistent point from slot "+s.st.slot, err)
	}
	s.log.Info("changes since the interrupted snapshot's consistent point read; their rows come from the stream only", "upto", upto.String(), "keys", n)
	return skip, nil
}

// changedRel maps a Relation message's columns to a snapshot table's key.
type changedRel struct {
	tb  *snapTable
	idx []int // tuple index of each key column, in the snapshot's key order
}

func newChangedRel(m *pglogrepl.RelationMessage, tb *snapTable) *changedRel {
	r := &changedRel{tb: tb}
	if tb == nil {
		return r
	}
	pos := map[string]int{}
	for i, c := range m.Columns {
		pos[c.Name] = i
	}
	for _, i := range snapKey(tb) {
		j, ok := pos[tb.sh.schema.Columns[i].Name]
		if !ok {
			// The table's columns changed since; its rows cannot be matched, so
			// none is left out of the read (they may then arrive twice).
			r.tb = nil
			return r
		}
		r.idx = append(r.idx, j)
	}
	return r
}

// key encodes the key of a tuple; ok is false when a key column is missing (not
// in a key-only old tuple, or unchanged TOAST).
func (r *changedRel) key(cols []tupleCol) (string, bool) {
	parts := make([][]byte, len(r.idx))
	for i, j := range r.idx {
		if j >= len(cols) || (cols[j].kind != 't' && cols[j].kind != 'n') {
			return "", false
		}
		if cols[j].kind == 'n' {
			parts[i] = nil
			continue
		}
		parts[i] = cols[j].data
	}
	return skipKey(parts), true
}

// snapKey is the columns that identify a row of tb in a resumed read: its key, or
// every column of a table without one.
func snapKey(tb *snapTable) []int {
	if tb.key != nil {
		return tb.key
	}
	all := make([]int, len(tb.sh.schema.Columns))
	for i := range all {
		all[i] = i
	}
	return all
}

// skipKey encodes key column texts (nil: NULL) so that two keys compare equal
// exactly when every column does.
func skipKey(parts [][]byte) string {
	var b []byte
	for _, p := range parts {
		if p == nil {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

// keep reports whether a snapshot row survives the resume's skip set.
func (w *chunkSink) keep() bool {
	if len(w.skip) == 0 {
		return true
	}
	w.keyParts = w.keyParts[:0]
	for _, i := range w.skipCols {
		raw, null := pgvalue.UnescapeCopyText(w.fields[i])
		if null {
			w.keyParts = append(w.keyParts, nil)
		} else {
			w.keyParts = append(w.keyParts, raw)
		}
	}
	return !w.skip[skipKey(w.keyParts)]
}
