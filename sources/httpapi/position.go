package httpapi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/connectd/connectd/record"
)

// Position layout (docs/design.md, "Positions"; README: "Positions"):
//
//	0x02 | round u64 | stream u16 | item
//	item, cursor stream:   cursor (ordered encoding) | key (ordered encoding) | record hash u64
//	item, no cursor:       page u32 | record in page u32
//	round end:             0x02 | round u64 | 0xffff
//
// A round is one pass over every stream, in the config's order, so positions grow
// with rounds, then streams, then the records of a pass. A cursor stream's records are
// emitted ordered by cursor, key and hash, so a record read again after a restart (the
// same cursor, key and content) gets the same position, and one that changed in the
// API meanwhile gets a new one above the committed position. Within one cursor value
// the key and the hash decide the order, so equal cursor values across a page or a
// round boundary are neither skipped nor doubled. A stream without a cursor is re-read
// whole every round, its records numbered by page and place.
const (
	posTag      = 0x02
	roundEndTag = 0xffff
	headerLen   = 1 + 8 + 2
)

// position is a decoded position's header.
type position struct {
	round  uint64
	stream int // roundEndTag for a round's end
	item   []byte
}

func parsePosition(p record.Position) (position, error) {
	if len(p) < headerLen || p[0] != posTag {
		return position{}, fmt.Errorf("http: position %s is not one of this source's", p)
	}
	return position{round: binary.BigEndian.Uint64(p[1:9]), stream: int(binary.BigEndian.Uint16(p[9:11])), item: p[headerLen:]}, nil
}

func appendHeader(dst []byte, round uint64, stream int) []byte {
	dst = append(dst, posTag)
	dst = binary.BigEndian.AppendUint64(dst, round)
	return binary.BigEndian.AppendUint16(dst, uint16(stream))
}

func roundEnd(round uint64) record.Position {
	return appendHeader(nil, round, roundEndTag)
}

// appendOrdered appends b so that the encodings of two byte strings compare as the
// strings do, and a prefix ends where it should: 0x00 becomes 0x00 0xff, and 0x00 0x00
// terminates.
func appendOrdered(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, c)
		if c == 0 {
			dst = append(dst, 0xff)
		}
	}
	return append(dst, 0, 0)
}

// appendOrderedInt appends v so that byte order is numeric order.
func appendOrderedInt(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

// DescribePosition renders a position for `connectd offsets show`.
func (s *Source) DescribePosition(p record.Position) string {
	pos, err := parsePosition(p)
	if err != nil {
		return err.Error()
	}
	if pos.stream == roundEndTag {
		return fmt.Sprintf("end of round %d", pos.round)
	}
	name := fmt.Sprintf("stream %d", pos.stream)
	if pos.stream < len(s.streams) {
		name = "stream " + s.streams[pos.stream].cfg.Name
	}
	if len(pos.item) == 8 && pos.stream < len(s.streams) && s.streams[pos.stream].cursor == nil {
		return fmt.Sprintf("round %d, %s, page %d, record %d", pos.round, name,
			binary.BigEndian.Uint32(pos.item), binary.BigEndian.Uint32(pos.item[4:]))
	}
	return fmt.Sprintf("round %d, %s, record %s", pos.round, name, hex.EncodeToString(pos.item))
}

// cursorValue is a record's cursor: its ordered encoding, and its text as the API
// wrote it (what the next round's request carries).
type cursorValue struct {
	ord  []byte
	text string
	num  int64 // time: Unix microseconds; int: the value
}

func (c cursorValue) less(d cursorValue) bool { return bytes.Compare(c.ord, d.ord) < 0 }
