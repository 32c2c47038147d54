// Package reference renders the keys a config section declares (config.FieldsOf) as
// Markdown tables, and rewrites the generated parts of a hand-written document between
// markers, so docs/configuration.md keeps its prose while its tables follow the code.
package reference

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/connectd/connectd/config"
)

// Markers delimit a generated part of a document. A part is named after the marker's
// colon: <!-- BEGIN GENERATED: source postgres --> ... <!-- END GENERATED -->.
const (
	beginMarker = "<!-- BEGIN GENERATED: "
	markerEnd   = " -->"
	endMarker   = "<!-- END GENERATED -->"
)

// Begin returns the line that opens the generated part called name.
func Begin(name string) string { return beginMarker + name + markerEnd }

// Table renders the keys of a section as a Markdown table, one row per key; the keys
// of a nested section appear as key paths (s3.endpoint) after their parent's key, and
// those of each item of a list of sections (streams[].url) after the list's own row.
func Table(fields []config.Field) string {
	var b strings.Builder
	b.WriteString("| key | type | default | required | description | example |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	rows(&b, "", fields)
	return b.String()
}

func rows(b *strings.Builder, prefix string, fields []config.Field) {
	for _, f := range fields {
		key := prefix + f.Key
		if f.Type == config.FieldSection && len(f.Fields) > 0 {
			rows(b, key+".", f.Fields)
			continue
		}
		required := ""
		if f.Required {
			required = "yes"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %s |\n",
			key, cell(f.Type), cell(defaultOf(f)), required, cell(description(f, key)), cell(code(f.Example)))
		if f.Type == config.FieldSections {
			rows(b, key+"[].", f.Fields)
		}
	}
}

func defaultOf(f config.Field) string {
	switch {
	case f.Default != "":
		return code(f.Default)
	case f.DefaultDoc != "":
		return f.DefaultDoc
	}
	return ""
}

func description(f config.Field, key string) string {
	d := strings.TrimSpace(f.Description)
	if d != "" && !strings.ContainsAny(d[len(d)-1:], ".!?)") && (len(f.Enum) > 0 || f.Secret) {
		d += "."
	}
	if len(f.Enum) > 0 {
		vals := make([]string, len(f.Enum))
		for i, v := range f.Enum {
			vals[i] = code(v)
		}
		d += " One of " + strings.Join(vals, ", ") + "."
	}
	if f.Secret {
		d += " " + code(key+"_file") + " instead reads the value from a file."
	}
	return d
}

// code wraps a value in backticks, with longer fences when it holds one.
func code(s string) string {
	if s == "" {
		return ""
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// cell keeps a value inside its table cell: a pipe would end it, a line break the row.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// Rewrite replaces the body of every generated part of doc with parts[name]. A part
// the document lacks, or a marker with no part, is an error naming it: the first
// means a new kind whose section must be written, the second a kind that is gone.
func Rewrite(doc []byte, parts map[string]string) ([]byte, error) {
	var out bytes.Buffer
	seen := map[string]bool{}
	rest := doc
	for {
		i := bytes.Index(rest, []byte(beginMarker))
		if i < 0 {
			out.Write(rest)
			break
		}
		lineEnd := bytes.IndexByte(rest[i:], '\n')
		if lineEnd < 0 {
			return nil, fmt.Errorf("reference: marker %q runs to the end of the document", rest[i:])
		}
		line := string(bytes.TrimRight(rest[i:i+lineEnd], "\r"))
		name, ok := strings.CutSuffix(strings.TrimPrefix(line, beginMarker), markerEnd)
		if !ok || name == "" {
			return nil, fmt.Errorf("reference: malformed marker %q (want %q)", line, Begin("name"))
		}
		body, found := parts[name]
		if !found {
			return nil, fmt.Errorf("reference: the document has a part %q that nothing generates (remove its markers)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("reference: the part %q appears twice", name)
		}
		seen[name] = true
		after := rest[i+lineEnd+1:]
		j := bytes.Index(after, []byte(endMarker))
		if k := bytes.Index(after, []byte(beginMarker)); j < 0 || (k >= 0 && k < j) {
			return nil, fmt.Errorf("reference: the part %q has no %s before the next part", name, endMarker)
		}
		out.Write(rest[:i+lineEnd+1])
		out.WriteString(body)
		if body != "" && !strings.HasSuffix(body, "\n") {
			out.WriteByte('\n')
		}
		rest = after[j:]
	}
	var missing []string
	for name := range parts {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("reference: the document has no place for %s: add %s and %s around where its table belongs",
			strings.Join(missing, ", "), Begin(missing[0]), endMarker)
	}
	return out.Bytes(), nil
}
