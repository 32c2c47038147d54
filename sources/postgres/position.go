package postgres

import (
	"encoding/binary"
	"fmt"

	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
)

// Position layouts (docs/design.md, "Positions": byte order is source order, replays
// repeat them).
//
//	snapshot: 0x01 | epoch uint32 | table ordinal uint32 | chunk uint32 | row in chunk uint32  (17 bytes)
//	          + 0xff on the last record of a completed snapshot                            (18 bytes)
//	          + 0x01 | key columns uint16 | per column: length uint32, text  on the last
//	            record of every emitted batch (the resume key: the key, or the ctid of
//	            a table without one); chunk is the chunk of the table's saved split
//	stream:   0x02 | commit LSN uint64 | sequence in transaction uint32                    (13 bytes)
//	mark:     0x02 | LSN uint64                                                             (9 bytes)
//
// A mark is a checkpoint: every transaction that commits before its LSN has been
// delivered, and the slot may confirm up to it. It sorts after every record of
// those transactions and before the first record of any transaction committing at
// or after it (a prefix sorts first). The stream emits one when it is idle with
// everything acked (at the server's WAL position) and at the commit of a
// transaction without records for the connector (at the transaction's end), so that
// the committed position always says how far the slot may be: at start, a slot
// confirmed beyond it has skipped WAL that was never delivered (README: "The slot
// moved past the committed position").
//
// A table snapshotted while streaming (incremental.go) gets no layout of its own: its
// op r records take stream positions, the commit LSN of the high watermark's
// transaction and the row's sequence in the chunk. The chunk's rows are the body of
// that watermark in the WAL, so a replay gives the same records at the same
// positions, strictly after everything the stream delivered before the watermark.
//
// Every snapshot position sorts before every stream position, and the completion
// marker sorts after the record it extends but before anything in the stream. The
// marker is what lets a restart tell "the snapshot finished" from "it was cut short".
// The first 17 bytes of a snapshot position are unique, so a suffix never changes how
// two positions compare; the resume key rides on batch ends because the runtime
// commits whole batches, and a committed snapshot position then says exactly which
// row the snapshot continues after (README: "Resuming an interrupted snapshot").
const (
	posSnapshot      = 0x01
	posStream        = 0x02
	snapshotPosLen   = 17
	snapshotDoneLen  = 18
	snapshotDoneByte = 0xff
	snapshotKeyByte  = 0x01
	streamPosLen     = 13
	streamMarkLen    = 9
)

func putSnapshotPos(b []byte, epoch, table, chunk, row uint32) {
	b[0] = posSnapshot
	binary.BigEndian.PutUint32(b[1:5], epoch)
	binary.BigEndian.PutUint32(b[5:9], table)
	binary.BigEndian.PutUint32(b[9:13], chunk)
	binary.BigEndian.PutUint32(b[13:17], row)
}

// withKey returns a copy of the 17-byte position base extended by the resume key.
func withKey(base []byte, key [][]byte) record.Position {
	n := snapshotPosLen + 3
	for _, k := range key {
		n += 4 + len(k)
	}
	p := make(record.Position, snapshotPosLen, n)
	copy(p, base[:snapshotPosLen])
	p = append(p, snapshotKeyByte)
	p = binary.BigEndian.AppendUint16(p, uint16(len(key)))
	for _, k := range key {
		p = binary.BigEndian.AppendUint32(p, uint32(len(k)))
		p = append(p, k...)
	}
	return p
}

func putStreamPos(b []byte, lsn pglogrepl.LSN, seq uint32) {
	b[0] = posStream
	binary.BigEndian.PutUint64(b[1:9], uint64(lsn))
	binary.BigEndian.PutUint32(b[9:13], seq)
}

// snapshotPos is a decoded snapshot position.
type snapshotPos struct {
	epoch, table uint32
	chunk, row   uint32   // row counts from 1 inside the chunk
	done         bool     // the last record of a completed snapshot
	key          []string // the record's key as text, when the position carries it
}

func parseSnapshotPos(p record.Position) (snapshotPos, bool) {
	if len(p) < snapshotPosLen || p[0] != posSnapshot {
		return snapshotPos{}, false
	}
	sp := snapshotPos{
		epoch: binary.BigEndian.Uint32(p[1:5]),
		table: binary.BigEndian.Uint32(p[5:9]),
		chunk: binary.BigEndian.Uint32(p[9:13]),
		row:   binary.BigEndian.Uint32(p[13:17]),
	}
	rest := p[snapshotPosLen:]
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && rest[0] == snapshotDoneByte:
		sp.done = true
	case rest[0] == snapshotKeyByte && len(rest) >= 3:
		n := int(binary.BigEndian.Uint16(rest[1:3]))
		rest = rest[3:]
		sp.key = make([]string, 0, n)
		for i := 0; i < n; i++ {
			if len(rest) < 4 {
				return snapshotPos{}, false
			}
			l := binary.BigEndian.Uint32(rest)
			rest = rest[4:]
			if uint64(l) > uint64(len(rest)) {
				return snapshotPos{}, false
			}
			sp.key = append(sp.key, string(rest[:l]))
			rest = rest[l:]
		}
		if len(rest) != 0 || n == 0 {
			return snapshotPos{}, false
		}
	default:
		return snapshotPos{}, false
	}
	return sp, true
}

// streamMark returns the mark position of lsn.
func streamMark(lsn pglogrepl.LSN) record.Position {
	p := make(record.Position, streamMarkLen)
	p[0] = posStream
	binary.BigEndian.PutUint64(p[1:9], uint64(lsn))
	return p
}

func parseStreamMark(p record.Position) (pglogrepl.LSN, bool) {
	if len(p) != streamMarkLen || p[0] != posStream {
		return 0, false
	}
	return pglogrepl.LSN(binary.BigEndian.Uint64(p[1:9])), true
}

// coveredLSN is how far the slot may have confirmed when p is the committed stream
// position: past the commit record of p's transaction (the server skips a
// transaction whose commit record starts before the confirmed LSN), or up to a
// mark. ok is false when p is not a stream position.
func coveredLSN(p record.Position) (lsn pglogrepl.LSN, ok bool) {
	if l, _, ok := parseStreamPos(p); ok {
		return l + 1, true
	}
	return parseStreamMark(p)
}

func parseStreamPos(p record.Position) (lsn pglogrepl.LSN, seq uint32, ok bool) {
	if len(p) != streamPosLen || p[0] != posStream {
		return 0, 0, false
	}
	return pglogrepl.LSN(binary.BigEndian.Uint64(p[1:9])), binary.BigEndian.Uint32(p[9:13]), true
}

// describePosition renders a position; tableName maps a snapshot table ordinal to its
// name when known.
func describePosition(p record.Position, tableName func(uint32) string) string {
	if sp, ok := parseSnapshotPos(p); ok {
		name := ""
		if tableName != nil {
			name = tableName(sp.table)
		}
		if name == "" {
			name = fmt.Sprintf("#%d", sp.table)
		}
		s := fmt.Sprintf("snapshot epoch %d table %s chunk %d row %d", sp.epoch, name, sp.chunk, sp.row)
		if sp.key != nil {
			s += fmt.Sprintf(" key %q", sp.key)
		}
		if sp.done {
			s += " (snapshot complete)"
		}
		return s
	}
	if lsn, seq, ok := parseStreamPos(p); ok {
		return fmt.Sprintf("lsn %s #%d", lsn, seq)
	}
	if lsn, ok := parseStreamMark(p); ok {
		return fmt.Sprintf("lsn %s (everything before delivered)", lsn)
	}
	if len(p) == 0 {
		return "start"
	}
	return "unknown position " + p.String()
}

// DescribePosition renders pos without opening a connection (connectd offsets show):
// snapshot tables appear by ordinal, since their names are known only to a running source.
func (Kind) DescribePosition(pos record.Position) string { return describePosition(pos, nil) }
