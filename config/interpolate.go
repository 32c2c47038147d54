package config

import (
	"fmt"
	"strings"
)

// interpolate replaces ${VAR} and ${VAR:-default} in the raw file, and $$ by $. It
// works line by line and refuses values that contain a line break, so that every line
// number in later errors still points at the file the user wrote. Comments are left
// alone: a commented-out line must not fail because its variable is unset.
func interpolate(file string, data []byte, lookup func(string) (string, bool)) ([]byte, Errors) {
	var errs Errors
	var out strings.Builder
	out.Grow(len(data))
	lines := strings.SplitAfter(string(data), "\n")
	for n, line := range lines {
		body, comment := line, ""
		if i := commentStart(line); i >= 0 {
			body, comment = line[:i], line[i:]
		}
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c != '$' || i+1 >= len(body) {
				out.WriteByte(c)
				continue
			}
			switch body[i+1] {
			case '$':
				out.WriteByte('$')
				i++
				continue
			case '{':
			default:
				// A lone $ (common in passwords) stays as written.
				out.WriteByte(c)
				continue
			}
			end := strings.IndexByte(body[i:], '}')
			if end < 0 {
				errs = append(errs, &Error{File: file, Line: n + 1, Column: i + 1,
					Msg: "unterminated ${ (write $$ for a literal $)"})
				break
			}
			ref := body[i : i+end+1]
			value, msg := expand(ref[2:len(ref)-1], lookup)
			if msg != "" {
				errs = append(errs, &Error{File: file, Line: n + 1, Column: i + 1, Msg: ref + ": " + msg})
			}
			out.WriteString(value)
			i += end
		}
		out.WriteString(comment)
	}
	return []byte(out.String()), errs
}

// expand resolves the inside of one ${...}; msg is set when it cannot.
func expand(inner string, lookup func(string) (string, bool)) (value, msg string) {
	name, def, hasDefault := strings.Cut(inner, ":-")
	if !validVarName(name) {
		return "", "invalid variable reference: want ${NAME} or ${NAME:-default} (write $$ for a literal $)"
	}
	var v string
	var ok bool
	if lookup != nil {
		v, ok = lookup(name)
	}
	switch {
	case ok && (v != "" || !hasDefault):
	case hasDefault:
		v = def
	default:
		return "", fmt.Sprintf("environment variable %s is not set (give a default with ${%s:-value})", name, name)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Sprintf("the value of %s contains a line break, which a config line cannot hold; use a *_file key for multi-line secrets", name)
	}
	return v, ""
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// commentStart returns where a YAML comment begins on the line, or -1. A # starts a
// comment at the start of the line or after a space or tab, outside quotes. Quotes are
// tracked within the line only, and a quote counts as opening one only where a YAML
// scalar can start, so the apostrophe in `name: it's` is not taken for one. When in
// doubt it answers -1, which errs towards interpolating.
func commentStart(line string) int {
	var quote byte
	prev := byte(' ') // the last non-blank character before i; ' ' at the line start
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				if i+1 < len(line) && line[i+1] == '\'' {
					i++ // '' is an escaped quote
					continue
				}
				quote = 0
			}
		case quote == '"':
			if c == '\\' {
				i++
				continue
			}
			if c == '"' {
				quote = 0
			}
		case c == '#':
			if i == 0 || line[i-1] == ' ' || line[i-1] == '\t' {
				return i
			}
		case c == '\'' || c == '"':
			if strings.IndexByte(" :[{,-?", prev) >= 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t' || strings.IndexByte("[{,", line[i-1]) >= 0) {
				quote = c
			}
		}
		if c != ' ' && c != '\t' {
			prev = c
		}
	}
	return -1
}
