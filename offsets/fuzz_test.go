package offsets

import (
	"bytes"
	"strings"
	"testing"

	"github.com/connectd/connectd/record"
)

// FuzzDecodeOffset: a stored offset (a file or an object anyone may edit) never
// panics the decoder, and what decodes encodes back to the same position.
func FuzzDecodeOffset(f *testing.F) {
	good, _ := encodeOffset("orders", record.Position{1, 2, 0xff})
	for _, s := range [][]byte{good, []byte(`{"connector":"orders","position":""}`), []byte(`{"connector":"orders","position":"zz"}`),
		[]byte(`{"connector":"orders","position":"01","extra":1}`), []byte(`{"connector":"orders","position":"","generation":3}`), []byte(`[]`), nil} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pos, err := decodeOffset("orders", "fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "offsets: load orders: ") {
				t.Fatalf("error does not say what was loaded: %v", err)
			}
			return
		}
		if pos == nil { // a lease's marker: no position yet
			return
		}
		again, err := encodeOffset("orders", pos)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeOffset("orders", "fuzz", again)
		if err != nil || !bytes.Equal(back, pos) {
			t.Fatalf("round trip of %x: %x, %v", pos, back, err)
		}
	})
}

// FuzzParseS3URL: any offsets URL parses or is refused with an error; a parsed one
// names a bucket and a prefix without surrounding slashes.
func FuzzParseS3URL(f *testing.F) {
	for _, s := range []string{"s3://b/p?region=r&endpoint=http%3A%2F%2Fh%3A9000&path_style=true", "s3://b", "s3:///p", "s3://b/p?x=1", "s3://b//p//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		loc, err := ParseS3URL(raw)
		if err != nil {
			return
		}
		if loc.Bucket == "" || strings.HasPrefix(loc.Prefix, "/") || strings.HasSuffix(loc.Prefix, "/") {
			t.Fatalf("%q parsed to %+v", raw, loc)
		}
	})
}
