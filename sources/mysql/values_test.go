package mysql

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/connectd/connectd/record"
	gomysql "github.com/go-sql-driver/mysql"
)

// valueRows generates the values of the value table: edge cases first, then random
// ones (seeded, so a failure repeats). Each row is id, then the SQL literals of
// d, dt0, dt3, dt6, u, ip, tb.
func valueRows(n int) [][]string {
	rows := [][]string{
		{"'2024-00-15'", "'2024-00-15 10:11:12'", "'2024-05-00 10:11:12.123'", "'0000-00-00 00:00:00'", "'00000000-0000-0000-0000-000000000000'", "'::'", "5"},
		{"'0000-00-00'", "'2024-12-00 00:00:00'", "'0000-00-00 00:00:00'", "'2024-00-00 23:59:59.999999'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'::1'", "-1"},
		{"'2024-02-29'", "'1969-07-20 20:17:40'", "'1000-01-01 00:00:00.001'", "'9999-12-31 23:59:59.999999'", "'6ccd780c-baba-1026-9564-5b8c656024db'", "'::ffff:192.0.2.1'", "127"},
		{"'1000-01-01'", "'2024-01-01 00:00:00'", "'2024-03-01 00:00:00.5'", "'1970-01-01 00:00:00.000001'", "'0190c3a4-7e3f-7b2a-9f00-112233445566'", "'::192.0.2.1'", "-128"},
		{"'2024-12-31'", "'2024-02-29 12:00:00'", "'1999-12-31 23:59:59.999'", "'2024-01-02 03:04:05.123456'", "'123e4567-e89b-42d3-a456-426614174000'", "'2001:db8::1'", "0"},
		{"NULL", "NULL", "NULL", "NULL", "NULL", "'2001:db8:0:1:1:1:1:1'", "1"},
		{"'2023-06-15'", "'2023-06-15 01:02:03'", "'2023-06-15 01:02:03.004'", "'2023-06-15 01:02:03.000004'", "'00000000-0000-1000-8000-000000000000'", "'1::'", "NULL"},
		{"'2023-06-15'", "'2023-06-15 01:02:03'", "'2023-06-15 01:02:03.004'", "'2023-06-15 01:02:03.000004'", "'00000000-0000-6000-8000-000000000000'", "'fe80::1:0:0:0'", "2"},
	}
	r := rand.New(rand.NewPCG(9, 9))
	for len(rows) < n {
		y, mo, d := 1000+r.IntN(9000), r.IntN(13), r.IntN(32)
		if mo > 0 && d > 28 {
			d = 28
		}
		dt := func(frac int) string {
			s := fmt.Sprintf("'%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, r.IntN(24), r.IntN(60), r.IntN(60))
			if frac > 0 {
				s += "." + fmt.Sprintf("%06d", r.IntN(1000000))[:frac]
			}
			return s + "'"
		}
		var u [16]byte
		for {
			for i := range u {
				u[i] = byte(r.IntN(256))
			}
			// MariaDB refuses a UUID whose bytes read like its own swapped form.
			if u[6]&0x80 == 0 || int8(u[8]) <= 0 {
				break
			}
		}
		var ip [8]string
		for i := range ip {
			switch r.IntN(3) {
			case 0:
				ip[i] = "0"
			default:
				ip[i] = fmt.Sprintf("%x", r.IntN(65536))
			}
		}
		rows = append(rows, []string{
			fmt.Sprintf("'%04d-%02d-%02d'", y, mo, d), dt(0), dt(3), dt(6),
			"'" + record.UUID(u).String() + "'", "'" + strings.Join(ip[:], ":") + "'", fmt.Sprint(r.IntN(256) - 128)})
	}
	return rows
}

const valueTable = "(id int PRIMARY KEY, d date, dt0 datetime, dt3 datetime(3), dt6 datetime(6), u uuid, ip inet6, tb tinyint(1))"

func valueInsert(db string, rows [][]string, idBase int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SET sql_mode=''; INSERT INTO %s.t VALUES ", db)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(%d, %s)", idBase+i, strings.Join(r, ", "))
	}
	return b.String()
}

// TestZeroDatesUUIDsAndAddressesReadTheSameInSnapshotAndStream: the same values
// (zero months and days, random datetimes, UUIDs of every version and variant,
// IPv6 addresses, TINYINT(1) beyond 0 and 1) read by the snapshot from the text
// protocol and by the stream from row images decode to equal values, and those
// equal what the server prints.
func TestZeroDatesUUIDsAndAddressesReadTheSameInSnapshotAndStream(t *testing.T) {
	exec(t, "CREATE DATABASE valdb; CREATE TABLE valdb.t "+valueTable)
	rows := valueRows(300)
	exec(t, valueInsert("valdb", rows, 0))
	h := newHarness(t, "values", "valdb.t")
	snap := h.sync()
	exec(t, valueInsert("valdb", rows, 1000))
	stream := h.sync()
	if len(snap) != len(rows) || len(stream) != len(rows) {
		t.Fatalf("snapshot %d records, stream %d, want %d each", len(snap), len(stream), len(rows))
	}
	server := serverText(t, "SELECT id, CAST(d AS CHAR), CAST(dt6 AS CHAR), CAST(u AS CHAR), CAST(ip AS CHAR), tb FROM valdb.t WHERE id < 1000 ORDER BY id")
	for i := range rows {
		s, c := vals(snap[i]), vals(stream[i])
		for _, col := range []string{"d", "dt0", "dt3", "dt6", "u", "ip", "tb"} {
			if !equalAny(s[col], c[col]) {
				t.Errorf("row %d %s (%s): snapshot %#v, stream %#v", i, col, rows[i][colIndex(col)], s[col], c[col])
			}
		}
		srv := server[i]
		if srv[3] == "NULL" && rows[i][4] != "NULL" {
			t.Fatalf("row %d: the server refused the UUID %s", i, rows[i][4])
		}
		if got := textOf(s["u"]); got != srv[3] {
			t.Errorf("row %d uuid: lake text %q, server %q", i, got, srv[3])
		}
		if got := textOf(s["ip"]); got != srv[4] {
			t.Errorf("row %d inet6: lake text %q, server %q", i, got, srv[4])
		}
		if got := textOf(s["tb"]); got != srv[5] {
			t.Errorf("row %d tinyint(1): %q, server %q", i, got, srv[5])
		}
		zeroInDate := srv[1] != "NULL" && (srv[1][5:7] == "00" || srv[1][8:10] == "00")
		if zeroInDate != (s["d"] == nil) && srv[1] != "NULL" {
			t.Errorf("row %d date %s read as %v: want null exactly for a zero month or day", i, srv[1], s["d"])
		}
		if srv[2] != "NULL" && !(srv[2][5:7] == "00" || srv[2][8:10] == "00") {
			want, _, _ := parseDateTime(srv[2])
			if c["dt6"] != want {
				t.Errorf("row %d datetime(6) %s: stream %v, want %v", i, srv[2], c["dt6"], want)
			}
		}
	}
	if k := snap[0].Schema.Columns[snap[0].Schema.Index("tb")].Type.Kind; k != record.KindInt16 {
		t.Errorf("tinyint(1) maps to %s by default, want int16", k)
	}

	// With tinyint1_as_boolean the same column reads as booleans, alike on both paths.
	b := newHarness(t, "valuesbool", "valdb.t")
	b.tinyBool = true
	recs := b.sync()
	for _, r := range recs {
		v := vals(r)
		id := v["id"].(int32)
		if id >= 1000 {
			continue
		}
		want := any(nil)
		if n := server[id][5]; n != "NULL" {
			want = n != "0"
		}
		if v["tb"] != want {
			t.Errorf("row %d tinyint(1) as boolean: %#v, want %#v", id, v["tb"], want)
		}
	}
}

func colIndex(col string) int {
	return map[string]int{"d": 0, "dt0": 1, "dt3": 2, "dt6": 3, "u": 4, "ip": 5, "tb": 6}[col]
}

func textOf(v any) string {
	if v == nil {
		return "NULL"
	}
	return fmt.Sprint(v)
}

// serverText runs q and returns every value as text ("NULL" for null).
func serverText(t *testing.T, q string) [][]string {
	t.Helper()
	c, err := gomysql.ParseDSN(mariaServer(t).DSN)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPackedDatetimeDecodesLikeTheText: the DATETIME2 layout read from its stored
// integer gives what the text form gives, and null for a zero month or day.
func TestPackedDatetimeDecodesLikeTheText(t *testing.T) {
	pack := func(y, mo, d, h, mi, s int, frac int64, dec uint16) packedDatetime {
		ym := int64(y*13 + mo)
		intPart := (ym<<5|int64(d))<<17 | int64(h<<12|mi<<6|s)
		intPart += datetimeIntOffset
		fb := (int(dec) + 1) / 2
		switch dec {
		case 1, 2:
			frac /= 10000
		case 3, 4:
			frac /= 100
		}
		return packedDatetime{v: int64(uint64(intPart)<<(8*fb) | uint64(frac)), dec: dec}
	}
	for _, c := range []struct {
		p    packedDatetime
		text string
	}{
		{pack(2024, 1, 2, 3, 4, 5, 0, 0), "2024-01-02 03:04:05"},
		{pack(2024, 1, 2, 3, 4, 5, 120000, 2), "2024-01-02 03:04:05.12"},
		{pack(1969, 7, 20, 20, 17, 40, 500000, 1), "1969-07-20 20:17:40.5"},
		{pack(9999, 12, 31, 23, 59, 59, 999999, 6), "9999-12-31 23:59:59.999999"},
		{pack(1000, 1, 1, 0, 0, 0, 100, 4), "1000-01-01 00:00:00.0001"},
		{pack(2024, 0, 15, 10, 0, 0, 0, 0), "2024-00-15 10:00:00"},
		{pack(2024, 5, 0, 10, 0, 0, 0, 6), "2024-05-00 10:00:00"},
	} {
		got, gw, err := c.p.decode()
		want, ww, werr := parseDateTime(c.text)
		if err != nil || werr != nil || got != want || gw != ww {
			t.Errorf("%s: packed gives %v (warning %d, %v), text gives %v (warning %d, %v)", c.text, got, gw, err, want, ww, werr)
		}
	}
}

// TestUUIDAndAddressBytes: the stored forms MariaDB documents, rendered as it prints them.
func TestUUIDAndAddressBytes(t *testing.T) {
	// A version-1 UUID is stored with its groups reversed; a version-7 one as it is.
	v1, _ := record.ParseUUID("6ccd780c-baba-1026-9564-5b8c656024db")
	stored := []byte{0x5b, 0x8c, 0x65, 0x60, 0x24, 0xdb, 0x95, 0x64, 0x10, 0x26, 0xba, 0xba, 0x6c, 0xcd, 0x78, 0x0c}
	if u, err := mariaUUID(stored); err != nil || u != v1 {
		t.Errorf("stored v1 UUID read as %v (%v), want %v", u, err, v1)
	}
	v7, _ := record.ParseUUID("0190c3a4-7e3f-7b2a-9f00-112233445566")
	if u, err := mariaUUID(v7[:]); err != nil || u != v7 {
		t.Errorf("stored v7 UUID read as %v (%v), want it unchanged", u, err)
	}
	for _, c := range []struct {
		hex, want string
	}{
		{"00000000000000000000000000000000", "::"},
		{"00000000000000000000000000000001", "::1"},
		{"00000000000000000000ffffc0000201", "::ffff:192.0.2.1"},
		{"000000000000000000000000c0000201", "::192.0.2.1"},
		{"20010db8000000000000000000000001", "2001:db8::1"},
		{"20010db8000000010001000100010001", "2001:db8::1:1:1:1:1"},
		{"00010000000000000000000000000000", "1::"},
	} {
		b, _ := hex.DecodeString(c.hex)
		if got, err := inet6Text(b); err != nil || got != c.want {
			t.Errorf("inet6 %s = %q (%v), want %q", c.hex, got, err, c.want)
		}
	}
	if got, _ := inet4Text([]byte{192, 0, 2, 1}); got != "192.0.2.1" {
		t.Errorf("inet4 = %q", got)
	}
}
