package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Kinds is what the loader needs of the registered connector kinds: their type names,
// in a stable order (the order errors list them in), and the config spec of each.
// *connector.Registry implements it.
type Kinds interface {
	SourceTypes() []string
	DestinationTypes() []string
	SourceSpec(typ string) (Spec, bool)
	DestinationSpec(typ string) (Spec, bool)
}

// Load reads and parses the config file at path, taking ${VAR} values from the process
// environment.
func Load(path string, kinds Kinds) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read the config file: " + unwrapPath(err).Error()}
	}
	return Parse(path, data, os.LookupEnv, kinds)
}

// Parse parses a config file's content. path names the file in errors and anchors
// relative paths (*_file secrets, file:// offsets) to its directory. lookup supplies
// environment variables; nil means none is set. kinds gives the connector types and
// the config struct of each. The error is a *Error, or Errors
// when there are several problems.
//
// ${VAR} substitution is textual and happens before YAML parsing (outside comments),
// so a value may carry YAML syntax (`tables: ${TABLES}` with TABLES="[a.b, c.d]"); a
// value that could be misread as YAML (a password starting with * or containing ": ")
// belongs in quotes or, better, in a *_file secret.
func Parse(path string, data []byte, lookup func(string) (string, bool), kinds Kinds) (*Config, error) {
	d := &decoder{
		file:    path,
		dir:     filepath.Dir(path),
		aliases: map[*ast.AliasNode]ast.Node{},
		budget:  maxExpansion,
		keys:    map[string][2]int{},
		kinds:   kinds,
	}
	text, errs := interpolate(path, data, lookup)
	if len(errs) > 0 {
		return nil, errs.result()
	}
	f, err := parseYAML(text)
	if err != nil {
		return nil, d.syntaxError(err)
	}
	var docs []*ast.DocumentNode
	for _, doc := range f.Docs {
		if doc != nil && doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, &Error{File: path, Msg: "the file is empty"}
	}
	if len(docs) > 1 {
		line, _ := pos(docs[1].Body)
		return nil, &Error{File: path, Line: line, Msg: "only one YAML document is allowed (remove the second ---)"}
	}
	d.collectAliases(docs[0].Body, map[string]ast.Node{})
	cfg := d.config(docs[0].Body)
	if err := d.errs.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parseYAML guards against panics in the YAML parser: a malformed file must give an
// error, never a crash.
func parseYAML(text []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	return parser.ParseBytes(text, 0)
}

func (d *decoder) syntaxError(err error) error {
	e := &Error{File: d.file, Msg: "invalid YAML: " + err.Error()}
	var se *yaml.SyntaxError
	if errors.As(err, &se) {
		e.Msg = "invalid YAML: " + se.GetMessage()
		if tk := se.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

func (d *decoder) config(body ast.Node) *Config {
	cfg := &Config{Path: d.file, Connectors: Connectors{}}
	entries, ok := d.mapping(body, "", 1)
	if !ok {
		return cfg
	}
	var offsetsLine, offsetsCol int
	var sawConnectors bool
	d.fields(entries, "", []field{
		{"offsets", func(e entry, p string) {
			d.str(&cfg.Offsets)(e, p)
			offsetsLine, offsetsCol = e.line, e.col
		}},
		{"server", func(e entry, p string) { d.plain(e, p, &cfg.Server) }},
		{"plugins", func(e entry, p string) { d.plain(e, p, &cfg.Plugins) }},
		{"connectors", func(e entry, p string) {
			sawConnectors = true
			es, ok := d.mapping(e.value, p, e.line)
			if ok && len(es) == 0 {
				d.errorf(e.line, e.col, p, "at least one connector is required")
			}
			for _, ce := range es {
				cfg.Order = append(cfg.Order, ce.key)
				cfg.Connectors[ce.key] = d.connector(ce, joinPath(p, ce.key))
			}
		}},
	}, nil, "the config file")

	switch {
	case cfg.Offsets == "":
		if offsetsLine == 0 {
			offsetsLine = 1
		}
		d.errorf(offsetsLine, offsetsCol, "offsets", "required: where checkpoints live, e.g. file:///var/lib/connectd")
	default:
		if abs, msg := d.checkOffsets(cfg.Offsets); msg != "" {
			d.errorf(offsetsLine, offsetsCol, "offsets", "%s", msg)
		} else {
			cfg.Offsets = abs
		}
	}
	if !sawConnectors {
		d.errorf(1, 0, "connectors", "required: at least one connector")
	}
	d.checkShared(cfg)
	return cfg
}

func (d *decoder) connector(ce entry, path string) *Connector {
	c := &Connector{Line: ce.line}
	if !validConnectorName(ce.key) {
		d.errorf(ce.line, ce.col, path, "connector name must match [a-zA-Z0-9_-]+")
	}
	entries, ok := d.mapping(ce.value, path, ce.line)
	if !ok {
		return c
	}
	var sawSource, sawDest, sawVerify bool
	d.fields(entries, path, []field{
		{"source", func(e entry, p string) {
			sawSource = true
			d.source(e, p, ce.key, &c.Source)
		}},
		{"destination", func(e entry, p string) {
			sawDest = true
			d.destination(e, p, ce.key, &c.Destination)
		}},
		{"verify", func(e entry, p string) {
			sawVerify = true
			d.plain(e, p, &c.Verify)
		}},
	}, nil, "a connector")
	if !sawVerify {
		c.Verify = Verify{Sample: DefaultVerifySample, Rate: DefaultVerifyRate}
	}
	if !sawSource {
		d.errorf(ce.line, ce.col, joinPath(path, "source"), "required")
	}
	if !sawDest {
		d.errorf(ce.line, ce.col, joinPath(path, "destination"), "required")
	}
	return c
}

// typeOf finds and removes a section's `type` key.
func (d *decoder) typeOf(entries []entry, path string, sectionLine int, known []string) (string, []entry, bool) {
	var typ string
	var rest []entry
	found := false
	var line, col int
	for _, e := range entries {
		if e.key == "type" {
			found = true
			line, col = e.line, e.col
			if s, ok := d.scalar(e, joinPath(path, "type")); ok {
				typ = s
			}
			continue
		}
		rest = append(rest, e)
	}
	p := joinPath(path, "type")
	if !found || typ == "" {
		if !found {
			line = sectionLine
			for _, e := range rest {
				if suggest(e.key, []string{"type"}) != "" {
					d.errorf(e.line, e.col, joinPath(path, e.key), "unknown key (did you mean %q?)", "type")
				}
			}
		}
		d.errorf(line, col, p, "required: one of %s", strings.Join(known, ", "))
		return "", rest, false
	}
	for _, k := range known {
		if typ == k {
			return typ, rest, true
		}
	}
	d.errorf(line, col, p, "unknown type %q: known types are %s", typ, strings.Join(known, ", "))
	return typ, rest, false
}

func (d *decoder) source(se entry, path, name string, s *Source) {
	entries, ok := d.mapping(se.value, path, se.line)
	if !ok {
		return
	}
	types := d.kinds.SourceTypes()
	typ, rest, ok := d.typeOf(entries, path, se.line, types)
	s.Type = typ
	if !ok {
		return
	}
	spec, _ := d.kinds.SourceSpec(typ)
	foreign := d.foreignKeys(typ, types, d.kinds.SourceSpec)
	s.Config = d.decodeTyped(spec, rest, path, se.line, se.col, name, []string{"type"}, foreign, nil)
}

func (d *decoder) destination(de entry, path, name string, dst *Destination) {
	entries, ok := d.mapping(de.value, path, de.line)
	if !ok {
		return
	}
	types := d.kinds.DestinationTypes()
	typ, rest, ok := d.typeOf(entries, path, de.line, types)
	dst.Type = typ
	// flush is shared by every type, so it is decoded even when the type is wrong.
	var typed []entry
	for _, e := range rest {
		if e.key == "flush" {
			d.markKey(e, joinPath(path, "flush"))
			d.plain(e, joinPath(path, "flush"), &dst.Flush)
			continue
		}
		typed = append(typed, e)
	}
	_ = ApplyDefaults(&dst.Flush) // the tags of Flush are tested
	if !ok {
		return
	}
	spec, _ := d.kinds.DestinationSpec(typ)
	foreign := d.foreignKeys(typ, types, d.kinds.DestinationSpec)
	dst.Config = d.decodeTyped(spec, typed, path, de.line, de.col, name, []string{"type", "flush"}, foreign, &dst.Flush)
}

// plain decodes a section of the file's own (server, plugins, flush) into v.
func (d *decoder) plain(e entry, path string, v any) {
	es, ok := d.mapping(e.value, path, e.line)
	if !ok {
		return
	}
	fs, err := FieldsOf(v)
	if err != nil {
		panic(err) // the structs of this package are tested
	}
	s := newSection(path, e.line, e.col, "", nil)
	d.decodeSection(s, "", es, reflect.ValueOf(v).Elem(), fs, nil, nil, e.key)
	d.validate(v, s)
}

// foreignKeys maps each key of the other types to its type name (the first type, in
// registration order, that has it).
func (d *decoder) foreignKeys(typ string, types []string, specOf func(string) (Spec, bool)) map[string]string {
	keysOf := func(t string) []string {
		spec, ok := specOf(t)
		if !ok {
			return nil
		}
		fs, err := FieldsOf(spec.New())
		if err != nil {
			return nil
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.Key)
			if f.Secret {
				out = append(out, f.Key+"_file")
			}
		}
		return out
	}
	own := map[string]bool{"type": true, "flush": true}
	for _, k := range keysOf(typ) {
		own[k] = true
	}
	out := map[string]string{}
	for _, t := range types {
		if t == typ {
			continue
		}
		for _, k := range keysOf(t) {
			if _, dup := out[k]; !own[k] && !dup {
				out[k] = t
			}
		}
	}
	return out
}

// maxSecret bounds a secret file: anything larger is a mistake (a wrong path), and
// reading a device such as /dev/zero must not hang the loader.
const maxSecret = 64 << 10

func readSecret(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if len(data) > maxSecret {
		return nil, fmt.Errorf("larger than %d KiB", maxSecret>>10)
	}
	return data, nil
}

// unwrapPath drops the path from an *fs.PathError, which the caller already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
