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

// maxPGIdent is PostgreSQL's identifier limit (NAMEDATALEN-1).
const maxPGIdent = 63

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

// sanitizeIdent lower-cases a connector name and replaces what a slot name cannot
// hold by '_'.
func sanitizeIdent(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// checkPGIdent checks a replication slot or publication name; "" means valid.
func checkPGIdent(s string) string {
	if s == "" || sanitizeIdent(s) != s {
		return "must match [a-z0-9_]+"
	}
	if len(s) > maxPGIdent {
		return fmt.Sprintf("must be at most %d characters (PostgreSQL's limit), got %d", maxPGIdent, len(s))
	}
	return ""
}

func checkSnapshot(s string) string {
	switch s {
	case SnapshotInitial, SnapshotInitialOnly, SnapshotNever, SnapshotWhenNeeded:
		return ""
	}
	return fmt.Sprintf("must be one of initial, initial_only, never, when_needed; got %q", s)
}

// checkTable accepts "schema.table" where either part may use the globs * and ?.
// Names are written as the catalog spells them (case and spaces kept, no quoting), so
// quote characters are refused: they would be taken literally, which is never meant.
func checkTable(t string) string {
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

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
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

// urlProblem describes a url.Parse failure without repeating the URL, which may hold
// a password.
func urlProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// checkPostgresDSN accepts what libpq accepts in shape: a postgres:// or postgresql://
// URL, or key=value settings. Messages never quote the DSN: it may hold a password.
func checkPostgresDSN(s string) string {
	const want = "must be a postgres://user@host:5432/db URL or key=value settings (host=... dbname=...)"
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		if _, err := url.Parse(s); err != nil {
			return want + ": " + urlProblem(err)
		}
		return ""
	}
	if !strings.Contains(s, "=") {
		return want
	}
	if msg := checkKeyValues(s); msg != "" {
		return want + ": " + msg
	}
	return ""
}

// checkKeyValues parses libpq's key=value connection string syntax: values may be
// single-quoted, and a backslash escapes the next character.
func checkKeyValues(s string) string {
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return ""
		}
		start := i
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '_') {
			i++
		}
		key := s[start:i]
		skip()
		if key == "" || i >= len(s) || s[i] != '=' {
			return "expected key=value"
		}
		i++
		skip()
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' {
					i += 2
					continue
				}
				if s[i] == '\'' {
					closed = true
					i++
					break
				}
				i++
			}
			if !closed {
				return fmt.Sprintf("unterminated quoted value of %s", key)
			}
			continue
		}
		for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
	}
}

func checkMySQLDSN(s string) string {
	const want = "must be a URL like mysql://user:password@host:3306/"
	if !strings.HasPrefix(s, "mysql://") {
		return want
	}
	u, err := url.Parse(s)
	if err != nil {
		return want + ": " + urlProblem(err)
	}
	if u.Hostname() == "" {
		return want + ": no host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return want + ": bad port"
		}
	}
	return ""
}

func checkLakeURL(s string) string {
	const want = "must be file:///absolute/path or s3://bucket/prefix"
	switch {
	case strings.HasPrefix(s, "file://"):
		p := strings.TrimPrefix(s, "file://")
		if !strings.HasPrefix(p, "/") {
			return fmt.Sprintf("%s: %q is not an absolute path (file:// is followed by /path, so three slashes)", want, p)
		}
		return ""
	case strings.HasPrefix(s, "s3://"):
		u, err := url.Parse(s)
		if err != nil {
			return want + ": " + urlProblem(err)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
			return want + ": no user, port, query or fragment (set the endpoint under s3:)"
		}
		if !validBucket(u.Host) {
			return fmt.Sprintf("%s: %q is not a valid bucket name (3-63 characters: a-z, 0-9, '.', '-')", want, u.Host)
		}
		return ""
	}
	return fmt.Sprintf("%s, got %q", want, s)
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		edge := i == 0 || i == len(b)-1
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || !edge && (c == '.' || c == '-')) {
			return false
		}
	}
	return true
}

func checkEndpoint(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("must be an http:// or https:// URL, e.g. http://127.0.0.1:9000, got %q", s)
	}
	return ""
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
