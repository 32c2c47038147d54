package pgvalue

import (
	"errors"
	"math"

	"github.com/connectd/connectd/record"
)

// Hand parsers for the ISO DateStyle output of date, time, timestamp and timestamptz.
// time.Parse is too slow for the snapshot path and knows neither BC nor years past 9999.

const (
	usPerSecond = 1_000_000
	usPerDay    = 86_400 * usPerSecond
	// maxYear is far past Postgres' last date (5874897 AD); it keeps the day arithmetic
	// inside int64 for any input.
	maxYear = 10_000_000
)

// DateInfinity and DateNegInfinity are what date 'infinity' and '-infinity' decode to.
const (
	DateInfinity    record.Date = math.MaxInt32
	DateNegInfinity record.Date = math.MinInt32
)

var (
	errDate      = errors.New("want YYYY-MM-DD[ BC]")
	errTime      = errors.New("want HH:MM:SS[.ffffff]")
	errTimestamp = errors.New("want YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]")
	errOffset    = errors.New("invalid UTC offset")
)

// daysFromCivil is the proleptic Gregorian day number relative to 1970-01-01 of the
// astronomical year y (1 BC is 0), month m and day d (H. Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m + 9
	if m > 2 {
		mp = m - 3
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func daysInMonth(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// digits reads exactly n decimal digits at b[i:].
func digits(b []byte, i, n int) (int64, bool) {
	if i+n > len(b) {
		return 0, false
	}
	var v int64
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// parseDatePart reads "YYYY-MM-DD" (the year may have more than four digits) and returns
// the year as printed, month, day and the index after the day.
func parseDatePart(b []byte) (y, m, d int64, i int, ok bool) {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		y = y*10 + int64(b[i]-'0')
		i++
		if y >= maxYear {
			return 0, 0, 0, 0, false
		}
	}
	if i < 4 || i >= len(b) || b[i] != '-' {
		return 0, 0, 0, 0, false
	}
	if m, ok = digits(b, i+1, 2); !ok || i+3 >= len(b) || b[i+3] != '-' {
		return 0, 0, 0, 0, false
	}
	if d, ok = digits(b, i+4, 2); !ok {
		return 0, 0, 0, 0, false
	}
	return y, m, d, i + 6, true
}

// civilDays validates a printed date and converts it, applying the BC era.
func civilDays(y, m, d int64, bc bool) (int64, bool) {
	if y < 1 || m < 1 || m > 12 || d < 1 {
		return 0, false
	}
	if bc {
		y = 1 - y
	}
	if d > daysInMonth(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

// hasBC reports whether b[i:] is exactly " BC" or empty; ok is false for anything else.
func hasBC(b []byte, i int) (bc, ok bool) {
	switch {
	case i == len(b):
		return false, true
	case len(b)-i == 3 && b[i] == ' ' && b[i+1] == 'B' && b[i+2] == 'C':
		return true, true
	}
	return false, false
}

func parseDate(b []byte) (record.Date, error) {
	switch string(b) {
	case "infinity":
		return DateInfinity, nil
	case "-infinity":
		return DateNegInfinity, nil
	}
	y, m, d, i, ok := parseDatePart(b)
	if !ok {
		return 0, errDate
	}
	bc, ok := hasBC(b, i)
	if !ok {
		return 0, errDate
	}
	days, ok := civilDays(y, m, d, bc)
	if !ok {
		return 0, errDate
	}
	if days >= math.MaxInt32 || days <= math.MinInt32 {
		return 0, errRange
	}
	return record.Date(days), nil
}

// parseClock reads "HH:MM:SS[.f{1,6}]" at b[i:] and returns microseconds since midnight
// (24:00:00 allowed) and the index after it.
func parseClock(b []byte, i int) (int64, int, bool) {
	hh, ok1 := digits(b, i, 2)
	mm, ok2 := digits(b, i+3, 2)
	ss, ok3 := digits(b, i+6, 2)
	if !ok1 || !ok2 || !ok3 || b[i+2] != ':' || b[i+5] != ':' {
		return 0, 0, false
	}
	i += 8
	var frac int64
	if i < len(b) && b[i] == '.' {
		i++
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if n == 6 {
				return 0, 0, false
			}
			frac = frac*10 + int64(b[i]-'0')
			n++
			i++
		}
		if n == 0 {
			return 0, 0, false
		}
		for ; n < 6; n++ {
			frac *= 10
		}
	}
	if mm > 59 || ss > 59 || hh > 24 || (hh == 24 && (mm != 0 || ss != 0 || frac != 0)) {
		return 0, 0, false
	}
	return ((hh*60+mm)*60+ss)*usPerSecond + frac, i, true
}

func parseTime(b []byte) (record.Time, error) {
	us, i, ok := parseClock(b, 0)
	if !ok || i != len(b) {
		return 0, errTime
	}
	return record.Time(us), nil
}

// parseOffset reads "+HH", "+HH:MM" or "+HH:MM:SS" at b[i:] and returns the offset
// east of UTC in seconds.
func parseOffset(b []byte, i int) (int64, int, bool) {
	if i >= len(b) || (b[i] != '+' && b[i] != '-') {
		return 0, 0, false
	}
	neg := b[i] == '-'
	hh, ok := digits(b, i+1, 2)
	if !ok {
		return 0, 0, false
	}
	i += 3
	var mm, ss int64
	if i < len(b) && b[i] == ':' {
		if mm, ok = digits(b, i+1, 2); !ok || mm > 59 {
			return 0, 0, false
		}
		i += 3
		if i < len(b) && b[i] == ':' {
			if ss, ok = digits(b, i+1, 2); !ok || ss > 59 {
				return 0, 0, false
			}
			i += 3
		}
	}
	off := (hh*60+mm)*60 + ss
	if neg {
		off = -off
	}
	return off, i, true
}

func parseTimestamp(b []byte, tz bool) (record.Timestamp, error) {
	switch string(b) {
	case "infinity":
		return record.TimestampInfinity, nil
	case "-infinity":
		return record.TimestampNegInfinity, nil
	}
	y, m, d, i, ok := parseDatePart(b)
	if !ok || i >= len(b) || (b[i] != ' ' && b[i] != 'T') {
		return 0, errTimestamp
	}
	tod, i, ok := parseClock(b, i+1)
	if !ok {
		return 0, errTimestamp
	}
	var off int64
	if tz {
		if off, i, ok = parseOffset(b, i); !ok {
			return 0, errOffset
		}
	}
	bc, ok := hasBC(b, i)
	if !ok {
		return 0, errTimestamp
	}
	days, ok := civilDays(y, m, d, bc)
	if !ok {
		return 0, errTimestamp
	}
	// days is bounded by maxYear, so the checks below are all that can overflow.
	const maxDays = math.MaxInt64 / usPerDay
	if days > maxDays || days < -maxDays {
		return 0, errRange
	}
	us, ok := addChecked(days*usPerDay, tod)
	if ok {
		us, ok = addChecked(us, -off*usPerSecond)
	}
	if !ok {
		return 0, errRange
	}
	if us == int64(record.TimestampInfinity) || us == int64(record.TimestampNegInfinity) {
		return 0, errRange // would read as ±infinity
	}
	return record.Timestamp(us), nil
}

// addChecked adds two int64s and reports false on overflow.
func addChecked(a, b int64) (int64, bool) {
	c := a + b
	if (b > 0 && c < a) || (b < 0 && c > a) {
		return 0, false
	}
	return c, true
}
