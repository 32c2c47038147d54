package postgres

import (
	"encoding/binary"
	"fmt"

	"github.com/connectd/connectd/record"
	"github.com/jackc/pglogrepl"
)

// Position layouts (SPEC section 3: byte order is source order, replays repeat them).
//
//	snapshot: 0x01 | epoch uint32 | table ordinal uint32 | row uint64          (17 bytes)
//	          the last record of a completed snapshot has one more byte, 0xff  (18 bytes)
//	stream:   0x02 | commit LSN uint64 | sequence in transaction uint32        (13 bytes)
//
// Every snapshot position sorts before every stream position, and the completion
// marker sorts after the record it extends but before anything in the stream. The
// marker is what lets a restart tell "the snapshot finished" from "it was cut short".
const (
	posSnapshot      = 0x01
	posStream        = 0x02
	snapshotPosLen   = 17
	snapshotDoneLen  = 18
	snapshotDoneByte = 0xff
	streamPosLen     = 13
)

func putSnapshotPos(b []byte, epoch, table uint32, row uint64) {
	b[0] = posSnapshot
	binary.BigEndian.PutUint32(b[1:5], epoch)
	binary.BigEndian.PutUint32(b[5:9], table)
	binary.BigEndian.PutUint64(b[9:17], row)
}

func putStreamPos(b []byte, lsn pglogrepl.LSN, seq uint32) {
	b[0] = posStream
	binary.BigEndian.PutUint64(b[1:9], uint64(lsn))
	binary.BigEndian.PutUint32(b[9:13], seq)
}

// snapshotPos is a decoded snapshot position.
type snapshotPos struct {
	epoch, table uint32
	row          uint64
	done         bool // the last record of a completed snapshot
}

func parseSnapshotPos(p record.Position) (snapshotPos, bool) {
	if len(p) != snapshotPosLen && !(len(p) == snapshotDoneLen && p[17] == snapshotDoneByte) || p[0] != posSnapshot {
		return snapshotPos{}, false
	}
	return snapshotPos{
		epoch: binary.BigEndian.Uint32(p[1:5]),
		table: binary.BigEndian.Uint32(p[5:9]),
		row:   binary.BigEndian.Uint64(p[9:17]),
		done:  len(p) == snapshotDoneLen,
	}, true
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
		s := fmt.Sprintf("snapshot epoch %d table %s row %d", sp.epoch, name, sp.row)
		if sp.done {
			s += " (snapshot complete)"
		}
		return s
	}
	if lsn, seq, ok := parseStreamPos(p); ok {
		return fmt.Sprintf("lsn %s #%d", lsn, seq)
	}
	if len(p) == 0 {
		return "start"
	}
	return "unknown position " + p.String()
}

// DescribePosition renders pos without opening a connection (connectd offsets show):
// snapshot tables appear by ordinal, since their names are known only to a running source.
func (Kind) DescribePosition(pos record.Position) string { return describePosition(pos, nil) }
