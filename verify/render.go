package verify

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/connectd/connectd/record"
)

// maxRendered is how many bytes of a rendered value a report shows.
const maxRendered = 80

// renderCanonical renders a value from its canonical form: the spill files hold only
// that, and it keeps everything a reader needs to see (it is exact).
func renderCanonical(t record.Type, b []byte) string {
	return cut(renderFull(t, b))
}

func cut(s string) string {
	if len(s) <= maxRendered {
		return s
	}
	n := maxRendered
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

func renderFull(t record.Type, b []byte) string {
	switch t.Kind {
	case record.KindBool:
		switch string(b) {
		case "t":
			return "true"
		case "f":
			return "false"
		}
	case record.KindString:
		return strconv.Quote(string(b))
	case record.KindBytes:
		return `\x` + hex.EncodeToString(b)
	case record.KindDate:
		d, err := strconv.ParseInt(string(b), 10, 64)
		if err == nil {
			switch d {
			case math.MaxInt32:
				return "infinity"
			case math.MinInt32, math.MinInt32 + 1:
				return "-infinity"
			}
			return time.Unix(d*86400, 0).UTC().Format("2006-01-02")
		}
	case record.KindTime:
		us, err := strconv.ParseInt(string(b), 10, 64)
		if err == nil {
			d := time.Duration(us) * time.Microsecond
			return time.Unix(0, 0).UTC().Add(d).Format("15:04:05.999999") + timeDays(us)
		}
	case record.KindTimestamp, record.KindTimestampTZ:
		us, err := strconv.ParseInt(string(b), 10, 64)
		if err == nil {
			switch record.Timestamp(us) {
			case record.TimestampInfinity:
				return "infinity"
			case record.TimestampNegInfinity, record.TimestampNegInfinity + 1:
				return "-infinity"
			}
			layout := "2006-01-02 15:04:05.999999"
			if t.Kind == record.KindTimestampTZ {
				layout += "Z07:00"
			}
			return time.UnixMicro(us).UTC().Format(layout)
		}
	case record.KindUUID:
		if len(b) == 16 {
			return record.UUID(b).String()
		}
	case record.KindList:
		return renderList(t, b)
	}
	return string(b)
}

// timeDays marks 24:00:00, which a time of day may hold and time.Format folds to 0.
func timeDays(us int64) string {
	if us >= 86400_000000 {
		return " (+1 day)"
	}
	return ""
}

func renderList(t record.Type, b []byte) string {
	et := record.Type{}
	if t.Elem != nil {
		et = *t.Elem
	}
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return string(b)
	}
	b = b[k:]
	var sb strings.Builder
	sb.WriteByte('[')
	for i := uint64(0); i < n && len(b) > 0; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		m := b[0]
		b = b[1:]
		if m != markValue {
			sb.WriteString("NULL")
			continue
		}
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			break
		}
		sb.WriteString(renderFull(et, b[k:k+int(l)]))
		b = b[k+int(l):]
	}
	sb.WriteByte(']')
	return sb.String()
}
