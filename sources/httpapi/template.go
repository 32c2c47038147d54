package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// The template syntax is text/template's, but only four values may be written:
// {{ cursor }}, {{ next_page_token }}, {{ window.start }} and {{ window.end }}.
// text/template parses them (cursor is a function call, window.start a field of a
// function's result), and the tree is then checked to hold nothing else: no
// pipelines, conditionals or functions, so a config cannot compute anything, and an
// unknown name is an error when the config is loaded. Rendering walks the checked
// tree itself, since each value needs the escaping of the place it lands in.

// tmplVar is a template variable.
type tmplVar int

const (
	varCursor tmplVar = iota
	varNextPageToken
	varWindowStart
	varWindowEnd
)

// templateValues holds a value for each tmplVar, by index.
type templateValues [4]string

// escaping says how a value is escaped where it lands.
type escaping int

const (
	ctxRaw   escaping = iota // a query parameter's value (encoded later) or a header
	ctxPath                  // the path of a URL
	ctxQuery                 // the query (or fragment) written in a URL
	ctxJSON                  // inside a JSON body: string content without the quotes
)

var templateFuncs = template.FuncMap{
	"cursor":          func() string { return "" },
	"next_page_token": func() string { return "" },
	"window":          func() map[string]string { return nil },
}

const templateHelp = "a template may only write {{ cursor }}, {{ next_page_token }}, {{ window.start }} or {{ window.end }}"

// tmplPart is a literal text (v < 0) or a variable with its escaping.
type tmplPart struct {
	text string
	v    tmplVar
	esc  escaping
}

// reqTemplate is a parsed and checked template.
type reqTemplate struct {
	parts []tmplPart
}

// parseTemplate parses s, whose values all get escaping esc.
func parseTemplate(s string, esc escaping) (*reqTemplate, error) {
	return parseTemplateFunc(s, func(string) (escaping, error) { return esc, nil })
}

// parseTemplateFunc parses s; escAt gives the escaping of a value from the literal
// text before it (or an error: a value may not go there).
func parseTemplateFunc(s string, escAt func(before string) (escaping, error)) (*reqTemplate, error) {
	t := &reqTemplate{}
	if !strings.Contains(s, "{{") {
		if s != "" {
			t.parts = []tmplPart{{text: s, v: -1}}
		}
		return t, nil
	}
	tree, err := template.New("").Funcs(templateFuncs).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s (%s)", templateProblem(err, strings.Contains(s, "\n")), templateHelp)
	}
	var before strings.Builder
	for _, n := range tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			t.parts = append(t.parts, tmplPart{text: string(n.Text), v: -1})
			before.Write(n.Text)
		case *parse.ActionNode:
			v, err := templateVar(n)
			if err != nil {
				return nil, err
			}
			esc, err := escAt(before.String())
			if err != nil {
				return nil, fmt.Errorf("%s: %v", n, err)
			}
			t.parts = append(t.parts, tmplPart{v: v, esc: esc})
		default:
			return nil, fmt.Errorf("%s is not allowed: %s", n, templateHelp)
		}
	}
	return t, nil
}

// templateProblem is a text/template parse error without its "template: :1:"
// prefix; the line stays for a template of several lines.
func templateProblem(err error, lines bool) string {
	msg := strings.TrimPrefix(err.Error(), "template: :")
	line, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.Trim(line, "0123456789") != "" {
		return msg
	}
	if lines {
		return "line " + line + ": " + rest
	}
	return rest
}

func templateVar(n *parse.ActionNode) (tmplVar, error) {
	bad := fmt.Errorf("%s is not allowed: %s", n, templateHelp)
	p := n.Pipe
	if len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return 0, bad
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.IdentifierNode:
		switch a.Ident {
		case "cursor":
			return varCursor, nil
		case "next_page_token":
			return varNextPageToken, nil
		case "window":
			return 0, fmt.Errorf("%s: write window.start or window.end", n)
		}
	case *parse.ChainNode:
		id, ok := a.Node.(*parse.IdentifierNode)
		if ok && id.Ident == "window" && len(a.Field) == 1 {
			switch a.Field[0] {
			case "start":
				return varWindowStart, nil
			case "end":
				return varWindowEnd, nil
			}
			return 0, fmt.Errorf("%s: window has only start and end", n)
		}
	}
	return 0, bad
}

// uses reports whether t writes v.
func (t *reqTemplate) uses(v tmplVar) bool {
	return slices.ContainsFunc(t.parts, func(p tmplPart) bool { return p.v == v })
}

// render writes t with vals, each escaped for where it is.
func (t *reqTemplate) render(vals templateValues) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.v < 0 {
			b.WriteString(p.text)
			continue
		}
		b.WriteString(escape(vals[p.v], p.esc))
	}
	return b.String()
}

func escape(s string, esc escaping) string {
	switch esc {
	case ctxPath:
		return url.PathEscape(s)
	case ctxQuery:
		return url.QueryEscape(s)
	case ctxJSON:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s) // a string always encodes
		out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		return string(out[1 : len(out)-1])
	}
	return s
}

// parseURLTemplate parses a request's url template. A value may not go into the
// scheme or host, so a cursor from the API's data can never send the request (and its
// credentials) elsewhere; in the path it is path-escaped, after '?' query-escaped.
func parseURLTemplate(s string) (*reqTemplate, error) {
	abs := isAbsoluteURL(s)
	return parseTemplateFunc(s, func(before string) (escaping, error) {
		if abs {
			_, rest, _ := strings.Cut(before, "://")
			if !strings.ContainsAny(rest, "/?#") {
				return 0, errors.New("a template value may not go into the scheme or host")
			}
		}
		if strings.ContainsAny(before, "?#") {
			return ctxQuery, nil
		}
		return ctxPath, nil
	})
}

// isAbsoluteURL reports whether a url template names its own scheme and host; any
// other url is a path under the source's base_url.
func isAbsoluteURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

func validJSON(b []byte) error {
	_, err := decodeJSON(b)
	return err
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
