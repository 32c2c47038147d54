package record

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Value is one column value: nil for SQL NULL, otherwise the Go type listed beside
// the column's Kind (see the Kind constants).
type Value = any

// Decimal is an exact decimal in canonical text form: an optional '-', digits, an
// optional '.' and digits ("-12.3400"), or "NaN", "Infinity", "-Infinity". It never
// passes through a float.
type Decimal string

// Date is a calendar date as days since 1970-01-01 (negative before).
type Date int32

// Time is a time of day in microseconds since midnight.
type Time int64

// Timestamp is microseconds since 1970-01-01 00:00:00. For KindTimestampTZ it is an
// instant in UTC; for KindTimestamp a wall-clock reading with no zone.
// TimestampInfinity and TimestampNegInfinity stand for Postgres' ±infinity.
type Timestamp int64

// The Postgres ±infinity timestamps (docs/design.md, "Values").
const (
	TimestampInfinity    Timestamp = 1<<63 - 1
	TimestampNegInfinity Timestamp = -1 << 63
)

// UUID is a 16-byte UUID.
type UUID [16]byte

// JSON is a JSON document in its text form.
type JSON []byte

// DateOf converts a calendar date to a Date.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	u := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return Date(u.Unix() / 86400)
}

// Time returns the date at midnight UTC.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// TimestampOf converts t to microseconds since the epoch.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMicro()) }

// Time returns the timestamp as a UTC time.Time.
func (ts Timestamp) Time() time.Time { return time.UnixMicro(int64(ts)).UTC() }

// String renders the UUID in its canonical 8-4-4-4-12 form.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// ParseUUID parses the canonical form (hyphens optional, braces not accepted).
func ParseUUID(s string) (UUID, error) {
	var u UUID
	clean := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			clean = append(clean, s[i])
		}
	}
	if len(clean) != 32 {
		return u, fmt.Errorf("uuid %q: want 32 hex digits", s)
	}
	if _, err := hex.Decode(u[:], clean); err != nil {
		return u, fmt.Errorf("uuid %q: %w", s, err)
	}
	return u, nil
}
