package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

func validConnectorName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckTable accepts "schema.table" (or "database.table") where either part may use
// the globs * and ?; "" means valid. Names are written as the catalog spells them
// (case and spaces kept, no quoting), so quote characters are refused: they would be
// taken literally, which is never meant.
func CheckTable(t string) string {
	schema, table, ok := strings.Cut(t, ".")
	if strings.ContainsAny(t, "\"'`") {
		return fmt.Sprintf("must be schema.table as the catalog spells it, without quotes (Sales.Line Items, not \"Sales\".\"Line Items\"), got %q", t)
	}
	if !ok || schema == "" || table == "" || strings.Contains(table, ".") || strings.ContainsAny(t, "\t\n") ||
		strings.TrimSpace(schema) != schema || strings.TrimSpace(table) != table {
		return fmt.Sprintf("must be schema.table (globs * and ? allowed), got %q", t)
	}
	return ""
}

func checkListen(s string) string {
	if s == "" {
		return ""
	}
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("bad port")
		}
	}
	if err != nil {
		return fmt.Sprintf("must be host:port, e.g. 127.0.0.1:8083, got %q", s)
	}
	return ""
}

// URLProblem describes a url.Parse failure without repeating the URL, which may hold
// a password.
func URLProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkOffsets validates the offsets URL and anchors a relative file:// directory to
// the config file's directory, so the store does not move with the working directory.
func (d *decoder) checkOffsets(s string) (string, string) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", fmt.Sprintf("must be a URL such as file:///var/lib/connectd, got %q", s)
	}
	switch scheme {
	case "file":
		if rest == "" {
			return "", "file:// needs a directory, e.g. file:///var/lib/connectd"
		}
		if filepath.IsAbs(rest) {
			return s, ""
		}
		return "file://" + filepath.Join(d.dir, rest), ""
	case "s3":
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return "", "s3:// needs a bucket, e.g. s3://bucket/connectd/offsets?region=eu-west-1"
		}
		return s, ""
	case "postgres", "postgresql":
		if _, err := url.Parse(s); err != nil {
			return "", fmt.Sprintf("not a valid postgres:// URL: %v", err)
		}
		return s, ""
	}
	return "", fmt.Sprintf("unknown offset store %s://: use file:///path/to/dir, s3://bucket/prefix or postgres://host/db", scheme)
}

// CheckTables checks a source's table patterns under key, each item by its own line:
// at least one, each schema.table (CheckTable), none twice. Call it when the key is set.
func CheckTables(v *Validation, key string, tables []string) {
	if len(tables) == 0 {
		v.Errorf(key, "must list at least one table")
		return
	}
	seen := map[string]bool{}
	for i, t := range tables {
		item := fmt.Sprintf("%s[%d]", key, i)
		if msg := CheckTable(t); msg != "" {
			v.Errorf(item, "%s", msg)
		} else if seen[t] {
			v.Errorf(item, "%q is listed twice", t)
		}
		seen[t] = true
	}
}
