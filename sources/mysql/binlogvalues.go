package mysql

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// packedDatetime is a DATETIME(dec) value of a rows event as the server stored it
// (MySQL 5.6's DATETIME2 layout, which MariaDB uses too), before any calendar
// arithmetic. go-mysql builds a time.Time from the fields with time.Date, which
// rolls a zero month or day over into the previous month or year ('2024-00-15'
// becomes 2023-12-15), a different date from the one the snapshot reads as text.
// decodeRowsData hands the packed value over instead and fromBinlog reads it.
type packedDatetime struct {
	v   int64 // the 5 to 8 stored bytes, big-endian
	dec uint16
}

// decodeRowsData decodes a rows event's row images like e.DecodeData, except that
// DATETIME2 columns come out as packedDatetime. go-mysql has no hook per column: it
// is told those columns are BIT columns of the same width (whose decoder returns
// the stored bytes as one big-endian integer), on a copy of the table map, so the
// table map other events share is left as it was.
func decodeRowsData(e *replication.RowsEvent, pos int, data []byte) error {
	tm := e.Table
	var cols []int
	for i, t := range tm.ColumnType {
		if t == gmysql.MYSQL_TYPE_DATETIME2 && i < len(tm.ColumnMeta) {
			cols = append(cols, i)
		}
	}
	if len(cols) == 0 {
		return e.DecodeData(pos, data)
	}
	cp := *tm
	cp.ColumnType = append([]byte(nil), tm.ColumnType...)
	cp.ColumnMeta = append([]uint16(nil), tm.ColumnMeta...)
	for _, i := range cols {
		n := 5 + (tm.ColumnMeta[i]+1)/2 // bytes of a DATETIME2 with this many fraction digits
		cp.ColumnType[i] = gmysql.MYSQL_TYPE_BIT
		cp.ColumnMeta[i] = n << 8 // BIT meta: whole bytes in the high byte, extra bits in the low
	}
	e.Table = &cp
	err := e.DecodeData(pos, data)
	e.Table = tm
	if err != nil {
		return err
	}
	for _, row := range e.Rows {
		for _, i := range cols {
			if i < len(row) {
				if v, ok := row[i].(int64); ok {
					row[i] = packedDatetime{v: v, dec: tm.ColumnMeta[i]}
				}
			}
		}
	}
	return nil
}

// datetimeIntOffset is what DATETIME2 adds to the packed date and time so that
// the stored bytes sort as the values do.
const datetimeIntOffset int64 = 0x8000000000

// decode reads the packed value: a zero date, or one with a zero month or day, is
// null with the zero-date warning, as parseDateTime makes the snapshot's text.
func (p packedDatetime) decode() (record.Value, warning, error) {
	fracBytes := (int(p.dec) + 1) / 2
	if p.dec > 6 {
		return nil, 0, fmt.Errorf("%w: DATETIME with %d fraction digits", errBadValue, p.dec)
	}
	// Eight stored bytes (six fraction digits) overflow int64: go-mysql's BIT
	// decoder converts them from uint64.
	u := uint64(p.v)
	frac := int64(u & (1<<(8*fracBytes) - 1))
	intPart := int64(u>>(8*fracBytes)) - datetimeIntOffset
	switch p.dec {
	case 1, 2:
		frac *= 10000
	case 3, 4:
		frac *= 100
	}
	if intPart < 0 {
		return nil, 0, fmt.Errorf("%w: negative packed DATETIME %d", errBadValue, intPart)
	}
	ymd, hms := intPart>>17, intPart&(1<<17-1)
	day, ym := int(ymd&31), ymd>>5
	month, year := int(ym%13), int(ym/13)
	if month == 0 || day == 0 {
		return nil, warnZeroDate, nil
	}
	sec, minute, hour := hms&63, (hms>>6)&63, hms>>12
	days := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC).Unix() / 86400
	return record.Timestamp(days*86400e6 + ((hour*60+minute)*60+sec)*1e6 + frac), 0, nil
}

// mariaUUID reads a MariaDB UUID column's bytes from a row image. MariaDB stores
// RFC 4122 UUIDs of versions 1 to 5 with their five groups in reverse order (so
// that time-based ones sort by time) and every other UUID as it is, refusing a
// UUID whose plain bytes would read as a reversed one; 10.11 writes the plain
// (text-order) bytes to the binlog. Both read right here: reversed bytes are
// recognised as the server does (its rec_need_swap: the variant's high bit where
// the version byte belongs, and a version 1-5 where the variant belongs), which
// plain bytes of an accepted UUID never match.
func mariaUUID(b []byte) (record.UUID, error) {
	var u record.UUID
	if len(b) > 16 {
		return u, fmt.Errorf("%w: UUID of %d bytes", errBadValue, len(b))
	}
	var rec [16]byte
	copy(rec[:], b) // the binlog drops trailing zero bytes of a fixed-length value
	if int(int8(rec[6]))&-int(int8(rec[8]))&0x80 == 0 {
		return record.UUID(rec), nil
	}
	// Stored segments: nnnnnnnnnnnn vsss Vhhh mmmm llllllll.
	copy(u[0:4], rec[12:16])
	copy(u[4:6], rec[10:12])
	copy(u[6:8], rec[8:10])
	copy(u[8:10], rec[6:8])
	copy(u[10:16], rec[0:6])
	return u, nil
}

// inet4Text renders an INET4 column's 4 stored bytes as MariaDB prints them.
func inet4Text(b []byte) (string, error) {
	if len(b) > 4 {
		return "", fmt.Errorf("%w: INET4 of %d bytes", errBadValue, len(b))
	}
	var a [4]byte
	copy(a[:], b)
	return fmt.Sprintf("%d.%d.%d.%d", a[0], a[1], a[2], a[3]), nil
}

// inet6Text renders an INET6 column's 16 stored bytes as MariaDB prints them
// (MySQL's INET6_NTOA rules, which differ from RFC 5952 in places): the first
// longest run of zero groups, even a single one, becomes "::"; an address whose
// first six groups are zero (IPv4-compatible), or five zero groups and ffff
// (IPv4-mapped), ends in dotted IPv4 form.
func inet6Text(b []byte) (string, error) {
	if len(b) > 16 {
		return "", fmt.Errorf("%w: INET6 of %d bytes", errBadValue, len(b))
	}
	var a [16]byte
	copy(a[:], b)
	var w [8]uint16
	for i := range w {
		w[i] = binary.BigEndian.Uint16(a[2*i:])
	}
	gapPos, gapLen := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > gapLen {
			gapPos, gapLen = i, j-i
		}
		i = j
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		switch {
		case i == gapPos:
			if i == 0 {
				sb.WriteByte(':')
			}
			sb.WriteByte(':')
			i += gapLen - 1
		case i == 6 && gapPos == 0 && (gapLen == 6 || gapLen == 5 && w[5] == 0xffff):
			fmt.Fprintf(&sb, "%d.%d.%d.%d", a[12], a[13], a[14], a[15])
			return sb.String(), nil
		default:
			sb.WriteString(strconv.FormatUint(uint64(w[i]), 16))
			if i != 7 {
				sb.WriteByte(':')
			}
		}
	}
	return sb.String(), nil
}
