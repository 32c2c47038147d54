package mysql

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
)

// Position layouts (docs/design.md, "Positions": byte order is source order, replays
// repeat them).
//
//	snapshot: 0x01 | epoch u32 | table ordinal u32 | chunk u32 | row in chunk u32 | 0x00  (18 bytes)
//	          the last record of a completed snapshot ends 0xff instead, followed by
//	          the binlog coordinates the stream starts at (a resume point, below);
//	          the last record of every emitted batch of a table read in key order ends
//	          0x01 instead, followed by its primary key: count u16, then per column
//	          length u32 and the value as the server prints it (the resume key)
//	stream:   0x02 | binlog file number u32 | event offset u64 | record in event u32 (17 bytes)
//	          followed by the resume point of the record's transaction
//	resume point: transaction start offset u64 | file name length u8 | file name |
//	          the GTID set executed before the transaction (text, rest of the bytes)
//
// The ordering prefix (18 and 17 bytes) is unique per record: an event's offset is
// unique inside its binlog file, file numbers grow across rotation (FLUSH LOGS, a
// server restart), and "record in event" counts the records one event produced (an
// UPDATE that changes the key gives two). So the bytes after the prefix never decide
// an order; they say where to resume: at the start of the record's transaction, from
// which a restart skips the records up to the committed one. The resume key rides on
// batch ends because the runtime commits whole batches: a committed snapshot position
// then names the row after which an interrupted snapshot continues.
const (
	posSnapshot     = 0x01
	posStream       = 0x02
	snapshotPrefix  = 18
	streamPrefix    = 17
	snapshotDoneTag = 0xff
	snapshotKeyTag  = 0x01
)

// coords is a place in the binlog where a transaction starts, with the GTID set
// executed before it.
type coords struct {
	file   string
	offset uint64
	gtid   string
}

func (c coords) String() string {
	s := fmt.Sprintf("%s:%d", c.file, c.offset)
	if c.gtid != "" {
		s += " gtid " + c.gtid
	}
	return s
}

// fileNumber is the numeric extension of a binlog file name (binlog.000042 -> 42).
func fileNumber(name string) (uint32, error) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return 0, fmt.Errorf("mysql: binlog file name %q has no numeric extension", name)
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("mysql: binlog file name %q has no numeric extension", name)
	}
	return uint32(n), nil
}

func appendCoords(b []byte, c coords) []byte {
	b = binary.BigEndian.AppendUint64(b, c.offset)
	name := c.file
	if len(name) > 255 {
		name = name[:255]
	}
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, c.gtid...)
}

func parseCoords(b []byte) (coords, bool) {
	if len(b) < 9 {
		return coords{}, false
	}
	c := coords{offset: binary.BigEndian.Uint64(b)}
	n := int(b[8])
	if len(b) < 9+n || n == 0 {
		return coords{}, false
	}
	c.file = string(b[9 : 9+n])
	c.gtid = string(b[9+n:])
	return c, true
}

func snapshotPos(epoch, table, chunk, row uint32) record.Position {
	b := make([]byte, snapshotPrefix)
	b[0] = posSnapshot
	binary.BigEndian.PutUint32(b[1:5], epoch)
	binary.BigEndian.PutUint32(b[5:9], table)
	binary.BigEndian.PutUint32(b[9:13], chunk)
	binary.BigEndian.PutUint32(b[13:17], row)
	return b
}

// withKey returns a copy of the snapshot position p carrying the resume key.
func withKey(p record.Position, key [][]byte) record.Position {
	n := snapshotPrefix + 2
	for _, k := range key {
		n += 4 + len(k)
	}
	b := make(record.Position, snapshotPrefix, n)
	copy(b, p[:snapshotPrefix])
	b[snapshotPrefix-1] = snapshotKeyTag
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	for _, k := range key {
		b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
	}
	return b
}

func parseKey(b []byte) ([][]byte, bool) {
	if len(b) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n == 0 {
		return nil, false
	}
	key := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, false
		}
		l := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(l) > uint64(len(b)) {
			return nil, false
		}
		key = append(key, b[:l:l])
		b = b[l:]
	}
	return key, len(b) == 0
}

// markSnapshotDone turns the last snapshot record's position into the completion
// marker carrying where the stream begins.
func markSnapshotDone(p record.Position, start coords) record.Position {
	b := append(record.Position(nil), p[:snapshotPrefix]...)
	b[snapshotPrefix-1] = snapshotDoneTag
	return appendCoords(b, start)
}

func streamPos(file uint32, offset uint64, seq uint32, txn coords) record.Position {
	return appendStreamPos(make([]byte, 0, streamPrefix+24+len(txn.file)+len(txn.gtid)), file, offset, seq, txn)
}

// appendStreamPos appends the stream position to b.
func appendStreamPos(b []byte, file uint32, offset uint64, seq uint32, txn coords) []byte {
	b = append(b, posStream)
	b = binary.BigEndian.AppendUint32(b, file)
	b = binary.BigEndian.AppendUint64(b, offset)
	b = binary.BigEndian.AppendUint32(b, seq)
	return appendCoords(b, txn)
}

// decodedPos is a parsed position.
type decodedPos struct {
	snapshot     bool
	epoch, table uint32
	chunk, row   uint32   // snapshot: row counts from 1 inside the chunk
	key          [][]byte // snapshot: the resume key, on batch ends
	done         bool     // snapshot completion marker
	resume       coords   // done snapshots and stream positions
	file         uint32   // stream
	offset       uint64   // stream: the event
	seq          uint32   // stream
	prefix       []byte   // the ordering prefix
}

func parsePos(p record.Position) (decodedPos, error) {
	switch {
	case len(p) >= snapshotPrefix && p[0] == posSnapshot:
		d := decodedPos{snapshot: true, prefix: p[:snapshotPrefix],
			epoch: binary.BigEndian.Uint32(p[1:5]), table: binary.BigEndian.Uint32(p[5:9]),
			chunk: binary.BigEndian.Uint32(p[9:13]), row: binary.BigEndian.Uint32(p[13:17])}
		switch p[17] {
		case 0:
			if len(p) == snapshotPrefix {
				return d, nil
			}
		case snapshotKeyTag:
			if k, ok := parseKey(p[snapshotPrefix:]); ok {
				d.key = k
				return d, nil
			}
		case snapshotDoneTag:
			if c, ok := parseCoords(p[snapshotPrefix:]); ok {
				d.done, d.resume = true, c
				return d, nil
			}
		}
	case len(p) > streamPrefix && p[0] == posStream:
		c, ok := parseCoords(p[streamPrefix:])
		if !ok {
			break
		}
		return decodedPos{prefix: p[:streamPrefix], file: binary.BigEndian.Uint32(p[1:5]),
			offset: binary.BigEndian.Uint64(p[5:13]), seq: binary.BigEndian.Uint32(p[13:17]), resume: c}, nil
	}
	return decodedPos{}, fmt.Errorf("position %s is not a mysql source position; run `connectd offsets reset` to start again", p)
}

// atOrBefore reports whether the record at prefix was delivered by a committed
// position whose ordering prefix is committed.
func atOrBefore(prefix, committed []byte) bool { return bytes.Compare(prefix, committed) <= 0 }

func describePos(p record.Position) string {
	if len(p) == 0 {
		return "start"
	}
	d, err := parsePos(p)
	if err != nil {
		return "unknown position " + p.String()
	}
	if d.snapshot {
		s := fmt.Sprintf("snapshot epoch %d table #%d chunk %d row %d", d.epoch, d.table, d.chunk, d.row)
		if d.key != nil {
			ks := make([]string, len(d.key))
			for i, k := range d.key {
				ks[i] = strconv.Quote(string(k))
			}
			s += " key (" + strings.Join(ks, ", ") + ")"
		}
		if d.done {
			s += " (snapshot complete; stream from " + d.resume.String() + ")"
		}
		return s
	}
	return fmt.Sprintf("binlog #%d offset %d record %d (transaction at %s)", d.file, d.offset, d.seq, d.resume)
}

// startCheckpoint is the record committed when a stream starts without a snapshot
// at from: its position sorts after every event before from and before every record
// of the event at from (it is the last record number of the byte before), and
// resumes at from.
func startCheckpoint(from coords, fileNo uint32) record.Record {
	off, seq := from.offset, uint32(0)
	if off > 0 {
		off, seq = off-1, math.MaxUint32
	}
	return record.Record{Op: record.OpCheckpoint, Pos: streamPos(fileNo, off, seq, from), CommitTS: time.Now().UTC().Truncate(time.Microsecond)}
}
