package parquet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
)

// location is a parsed destination url.
type location struct {
	scheme string // "file" or "s3"
	root   string // file: absolute directory
	bucket string // s3
	prefix string // s3: key prefix without leading or trailing slash
}

func parseLocation(raw string) (location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return location{}, fmt.Errorf("url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return location{}, fmt.Errorf("url %q: a file url has no host; write file:///absolute/dir", raw)
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) {
			return location{}, fmt.Errorf("url %q: want file:///absolute/dir", raw)
		}
		return location{scheme: "file", root: filepath.Clean(u.Path)}, nil
	case "s3":
		if u.Host == "" {
			return location{}, fmt.Errorf("url %q: want s3://bucket/prefix", raw)
		}
		return location{scheme: "s3", bucket: u.Host, prefix: strings.Trim(u.Path, "/")}, nil
	}
	return location{}, fmt.Errorf("url %q: scheme must be file:// or s3://", raw)
}

// String is the url of the location's root.
func (l location) String() string {
	if l.scheme == "file" {
		return "file://" + l.root
	}
	if l.prefix == "" {
		return "s3://" + l.bucket
	}
	return "s3://" + l.bucket + "/" + l.prefix
}

// objectKey is the S3 key of a file path relative to the root.
func (l location) objectKey(rel string) string {
	if l.prefix == "" {
		return rel
	}
	return l.prefix + "/" + rel
}

// partitionDir is <namespace>/<table>/date=<YYYY-MM-DD>, slash-separated.
func partitionDir(namespace, table string, day int64) string {
	return tableDir(namespace, table) + "/date=" + time.Unix(day*86400, 0).UTC().Format("2006-01-02")
}

// tableDir is <namespace>/<table>, each escaped, slash-separated: the folder of a
// table's partitions.
func tableDir(namespace, table string) string {
	return escapeSegment(namespace) + "/" + escapeSegment(table)
}

// utcDay is the number of days since 1970-01-01 of t's UTC date.
func utcDay(t time.Time) int64 {
	s := t.Unix()
	d := s / 86400
	if s%86400 < 0 {
		d--
	}
	return d
}

// maxNameHex bounds file names well below the 255-byte limit of common file systems.
const maxNameHex = 200

// fileName is the name of a file whose first record is at pos: the position's hex,
// so a replay from the last committed position rewrites the same name. A very long
// position is replaced by its SHA-256, which is just as deterministic.
func fileName(pos record.Position) string {
	h := pos.String()
	if len(h) > maxNameHex {
		sum := sha256.Sum256(pos)
		h = "h" + hex.EncodeToString(sum[:])
	}
	return h + ".parquet"
}

// escapeSegment makes a namespace or table name safe as one path segment and S3 key
// part: bytes outside [A-Za-z0-9_.$-] become %XX (as Hive escapes partition values),
// and so does a leading '.', so that no name is hidden, "." or "..".
func escapeSegment(s string) string {
	safe := func(c byte, i int) bool {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			return true
		case c == '_' || c == '-' || c == '$':
			return true
		case c == '.':
			return i > 0
		}
		return false
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !safe(s[i], i) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if safe(s[i], i) {
			b.WriteByte(s[i])
		} else {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
	}
	return b.String()
}
