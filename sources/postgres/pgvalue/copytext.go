package pgvalue

import "bytes"

// SplitCopyLine splits one line of COPY text format into its tab-separated fields,
// appending them to fields[:0] and returning the result. A trailing "\n" is dropped.
// The fields alias line (nothing is copied), and are still escaped: pass each to
// UnescapeCopyText. Data tabs and newlines are always escaped in COPY text, so every
// raw tab is a separator.
func SplitCopyLine(line []byte, fields [][]byte) [][]byte {
	fields = fields[:0]
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	for {
		i := bytes.IndexByte(line, '\t')
		if i < 0 {
			return append(fields, line)
		}
		fields = append(fields, line[:i])
		line = line[i+1:]
	}
}

// UnescapeCopyText turns one field of COPY text format into its raw text (handles \\, \t,
// \n, \r, \b, \f, \v, \NNN octal, \xHH); returns (nil, true) for \N. A field without
// backslashes is returned as is (aliasing field); otherwise raw is a new slice.
// A backslash before any other character stands for that character, as COPY FROM reads it.
func UnescapeCopyText(field []byte) (raw []byte, isNull bool) {
	if len(field) == 2 && field[0] == '\\' && field[1] == 'N' {
		return nil, true
	}
	first := bytes.IndexByte(field, '\\')
	if first < 0 {
		return field, false
	}
	out := make([]byte, first, len(field))
	copy(out, field[:first])
	for i := first; i < len(field); i++ {
		ch := field[i]
		if ch != '\\' || i+1 == len(field) {
			out = append(out, ch)
			continue
		}
		i++
		ch = field[i]
		switch ch {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := ch - '0'
			for n := 1; n < 3 && i+1 < len(field) && isOctal(field[i+1]); n++ {
				i++
				v = v<<3 | (field[i] - '0') // wraps past 0377, as the server's & 0377 does
			}
			out = append(out, v)
		case 'x':
			hi, ok := byte(0), false
			if i+1 < len(field) {
				hi, ok = unhex(field[i+1])
			}
			if !ok {
				out = append(out, 'x')
				continue
			}
			i++
			v := hi
			if i+1 < len(field) {
				if lo, ok := unhex(field[i+1]); ok {
					v = v<<4 | lo
					i++
				}
			}
			out = append(out, v)
		default:
			out = append(out, ch)
		}
	}
	return out, false
}
