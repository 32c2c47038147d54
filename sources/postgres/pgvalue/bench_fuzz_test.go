package pgvalue

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

func benchDecode(b *testing.B, ti TypeInfo, text string) {
	c, _ := NewCodec(ti)
	in := []byte(text)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Decode(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeInt8(b *testing.B) { benchDecode(b, tiInt8, "1234567890123") }
func BenchmarkDecodeInt4(b *testing.B) { benchDecode(b, tiInt4, "123456") }
func BenchmarkDecodeTimestamptz(b *testing.B) {
	benchDecode(b, tiTimestampTZ, "2024-01-02 03:04:05.123456+00")
}
func BenchmarkDecodeDate(b *testing.B)    { benchDecode(b, tiDate, "2024-01-02") }
func BenchmarkDecodeNumeric(b *testing.B) { benchDecode(b, numericOf(12, 2), "1234567890.12") }
func BenchmarkDecodeText(b *testing.B)    { benchDecode(b, tiText, "some ordinary text value") }
func BenchmarkDecodeFloat8(b *testing.B)  { benchDecode(b, tiFloat8, "3.141592653589793") }
func BenchmarkDecodeIntArray(b *testing.B) {
	benchDecode(b, arrayOf(tiInt4), "{1,2,3,4,5,6,7,8,9,10}")
}

// BenchmarkTimeParseTimestamptz is the standard library's parse of the same text, for
// comparison with BenchmarkDecodeTimestamptz.
func BenchmarkTimeParseTimestamptz(b *testing.B) {
	s := "2024-01-02 03:04:05.123456+00"
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := time.Parse("2006-01-02 15:04:05.999999-07", s); err != nil {
			b.Fatal(err)
		}
	}
}

var copyLine = []byte("123456\tsome text with \\t a tab\t2024-01-02 03:04:05.123456+00\t1234567890.12\t\\N\tt\n")

func BenchmarkSplitCopyLine(b *testing.B) {
	var fields [][]byte
	b.SetBytes(int64(len(copyLine)))
	b.ReportAllocs()
	for b.Loop() {
		fields = SplitCopyLine(copyLine, fields)
	}
}

// BenchmarkDecodeCopyRow is the snapshot's per-row work: split, unescape, decode.
func BenchmarkDecodeCopyRow(b *testing.B) {
	var codecs []*Codec
	for _, ti := range []TypeInfo{tiInt8, tiText, tiTimestampTZ, numericOf(12, 2), tiText, tiBool} {
		c, _ := NewCodec(ti)
		codecs = append(codecs, c)
	}
	var fields [][]byte
	row := make([]record.Value, len(codecs))
	b.SetBytes(int64(len(copyLine)))
	b.ReportAllocs()
	for b.Loop() {
		fields = SplitCopyLine(copyLine, fields)
		for i, f := range fields {
			raw, null := UnescapeCopyText(f)
			if null {
				row[i] = nil
				continue
			}
			v, err := codecs[i].Decode(raw)
			if err != nil {
				b.Fatal(err)
			}
			row[i] = v
		}
	}
}

// arrayLiteral writes elems the way array_out does when it quotes every element.
func arrayLiteral(elems []record.Value) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(',')
		}
		if e == nil {
			b.WriteString("NULL")
			continue
		}
		b.WriteByte('"')
		for _, ch := range []byte(e.(string)) {
			if ch == '"' || ch == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(ch)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func FuzzDecodeArray(f *testing.F) {
	for _, s := range []string{
		"{}", "{1,2,3}", "{NULL,null}", "[0:2]={1,2,3}", "{{1,2},{3,4}}", ` { "a,b" , c\ , "d\"e" } `,
		`{"\\x0102",NULL}`, "{{{{{{{1}}}}}}}", `{"unterminated`, `{a\`, "[1:2][3:4]={{1,2},{3,4}}",
		`{"{\"a\": 1}"}`, "{2024-01-02,infinity}",
	} {
		f.Add(s)
	}
	codecs := []*Codec{}
	for _, ti := range []TypeInfo{arrayOf(tiInt4), arrayOf(tiText), arrayOf(tiBytea), arrayOf(tiJSONB),
		arrayOf(tiDate), arrayOf(numericOf(10, 2)), arrayOf(domainOf("ints", arrayOf(tiInt8)))} {
		c, _ := NewCodec(ti)
		codecs = append(codecs, c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range codecs {
			_, _ = c.Decode([]byte(s))
		}
		// A text[] literal that decodes must survive a round trip through array_out's
		// quoting, which is what the server would print for the same elements.
		v, err := codecs[1].Decode([]byte(s))
		if err != nil {
			return
		}
		elems := v.([]record.Value)
		again, err := codecs[1].Decode([]byte(arrayLiteral(elems)))
		if err != nil {
			t.Fatalf("re-decode of %q: %v", arrayLiteral(elems), err)
		}
		if !equalValue(again, v) {
			t.Fatalf("round trip of %q: %#v != %#v", s, again, v)
		}
	})
}

// copyEscape is COPY TO's text escaping.
func copyEscape(raw []byte) []byte {
	var out []byte
	for _, ch := range raw {
		switch ch {
		case '\\':
			out = append(out, '\\', '\\')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		case '\v':
			out = append(out, '\\', 'v')
		default:
			out = append(out, ch)
		}
	}
	return out
}

func FuzzUnescapeCopyText(f *testing.F) {
	for _, s := range []string{`\N`, `a\\b`, `\t\n\r\b\f\v`, `\101\0\7x`, `\777`, `\x41\x4g\xz`, `\x`, `end\`, "plain"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, field []byte) {
		raw, null := UnescapeCopyText(field)
		if null && (raw != nil || string(field) != `\N`) {
			t.Fatalf("%q read as NULL", field)
		}
		if !null && bytes.IndexByte(field, '\\') < 0 && !bytes.Equal(raw, field) {
			t.Fatalf("%q without escapes changed to %q", field, raw)
		}
		// What COPY TO writes must unescape to the original bytes.
		esc := copyEscape(field)
		back, null := UnescapeCopyText(esc)
		if null || !bytes.Equal(back, field) {
			t.Fatalf("escape of %q = %q unescapes to %q (null %v)", field, esc, back, null)
		}
		line := append(append(append([]byte{}, esc...), '\t'), esc...)
		if fields := SplitCopyLine(append(line, '\n'), nil); len(fields) != 2 || !bytes.Equal(fields[0], esc) || !bytes.Equal(fields[1], esc) {
			t.Fatalf("split of %q = %q", line, fields)
		}
	})
}

func FuzzDecodeTimestamp(f *testing.F) {
	for _, s := range []string{
		"2024-01-02 03:04:05.123456+00", "0044-03-15 12:00:00+00 BC", "1890-01-02 03:04:05+05:53:28",
		"infinity", "-infinity", "294276-12-31 23:59:59.999999", "2024-01-02 24:00:00", "2024-02-29",
		"12:34:56.789", "5874897-12-31", "2024-01-02 03:04:05-08",
	} {
		f.Add(s)
	}
	ts, _ := NewCodec(tiTimestamp)
	tz, _ := NewCodec(tiTimestampTZ)
	date, _ := NewCodec(tiDate)
	tod, _ := NewCodec(tiTime)
	f.Fuzz(func(t *testing.T, s string) {
		in := []byte(s)
		_, _ = date.Decode(in)
		_, _ = tod.Decode(in)
		_, _ = tz.Decode(in)
		v, err := ts.Decode(in)
		if err != nil || len(s) < 19 || s[4] != '-' || strings.HasSuffix(s, " BC") || s[11:13] == "24" {
			return
		}
		// Where the standard library can read the text too, both must agree.
		want, perr := time.Parse("2006-01-02 15:04:05.999999", strings.Replace(s, "T", " ", 1))
		if perr != nil || want.Year() < 1 {
			return
		}
		if got := v.(record.Timestamp); got != record.TimestampOf(want) {
			t.Fatalf("%q: %d, time.Parse gives %d", s, got, record.TimestampOf(want))
		}
	})
}
