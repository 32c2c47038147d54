package mysql

import (
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// charsetEncoding returns the decoder of a MySQL character set: nil for the UTF-8
// ones (and ASCII), ok false for a set without a decoder here (its text is then kept
// as the raw bytes, with a warning).
func charsetEncoding(cs string) (encoding.Encoding, bool) {
	switch cs {
	case "", "utf8", "utf8mb3", "utf8mb4", "ascii":
		return nil, true
	case "latin1":
		// MySQL's latin1 is Windows-1252, not ISO 8859-1.
		return charmap.Windows1252, true
	case "latin2":
		return charmap.ISO8859_2, true
	case "latin5":
		return charmap.ISO8859_9, true
	case "latin7":
		return charmap.ISO8859_13, true
	case "greek":
		return charmap.ISO8859_7, true
	case "hebrew":
		return charmap.ISO8859_8, true
	case "cp1250":
		return charmap.Windows1250, true
	case "cp1251":
		return charmap.Windows1251, true
	case "cp1256":
		return charmap.Windows1256, true
	case "cp1257":
		return charmap.Windows1257, true
	case "cp850":
		return charmap.CodePage850, true
	case "cp852":
		return charmap.CodePage852, true
	case "cp866":
		return charmap.CodePage866, true
	case "koi8r":
		return charmap.KOI8R, true
	case "koi8u":
		return charmap.KOI8U, true
	case "macroman":
		return charmap.Macintosh, true
	case "ucs2", "utf16":
		return unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM), true
	case "utf16le":
		return unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), true
	case "utf32":
		return utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM), true
	case "gbk", "gb2312":
		return simplifiedchinese.GBK, true
	case "gb18030":
		return simplifiedchinese.GB18030, true
	case "big5":
		return traditionalchinese.Big5, true
	case "sjis", "cp932":
		return japanese.ShiftJIS, true
	case "ujis", "eucjpms":
		return japanese.EUCJP, true
	case "euckr":
		return korean.EUCKR, true
	}
	return nil, false
}
