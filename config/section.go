package config

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// A connector's section is decoded by reflection over the fields FieldsOf lists, so a
// kind declares its keys once, in its config struct. What the tags cannot say (a key
// that needs another, a DSN's syntax, a default computed from the connector's name)
// the struct says in its Validate method.

// Validator is implemented by a config struct (a pointer to it) that checks more than
// its fields' types: value syntax, keys that go together, ranges. Validate runs after
// the section is decoded and before the default tags are applied, so a zero value is
// one the file wrote or a key it left out (Set tells which). It may fill defaults that
// are computed in code, such as a name derived from the connector's.
//
// The item of a list of sections may implement it too: its Validate runs once per
// item, right after the item is decoded, with keys relative to the item ("url" is
// streams[2].url), and before the Validate of the section holding the list, which
// sees every item's keys as "streams[2].url" and can check rules across items.
type Validator interface {
	Validate(v *Validation)
}

// Validation is what a Validate method reports to: errors keyed by a key path inside
// the section, which the loader turns into the key's file:line (or the section's line
// when the key is absent).
type Validation struct {
	d         *decoder
	path      string // the section's key path
	line, col int    // where the section is, for problems of keys left out
	connector string
	set       map[string]bool // relative key paths written and decoded without error
	flush     *Flush
}

// Connector is the name of the connector whose section is checked.
func (v *Validation) Connector() string { return v.connector }

// Set reports whether the file wrote the key (a path such as "s3.endpoint" or
// "streams[2].url"; a secret read from its _file key counts) and it decoded without
// error. Checks of a value should run only on keys that are set: a key left out was
// reported as required or gets its default, and a key that failed to decode was
// reported already. A list of sections is set when every item decoded and passed its
// own Validate.
func (v *Validation) Set(key string) bool { return v.set[key] }

// Errorf reports a problem with key ("" for the section itself, "tables[2]" for an
// item of a list).
func (v *Validation) Errorf(key, format string, args ...any) {
	line, col := v.At(key)
	v.d.errorf(line, col, v.keyPath(key), format, args...)
}

// At returns where key is written, or where the section is when it is not.
func (v *Validation) At(key string) (line, col int) {
	if at, ok := v.d.keys[v.keyPath(key)]; ok && key != "" {
		return at[0], at[1]
	}
	return v.line, v.col
}

func (v *Validation) keyPath(key string) string {
	if key == "" {
		return v.path
	}
	return joinPath(v.path, key)
}

// Flush is the destination's flush section (with its defaults applied) when the
// section being checked is a destination's, else nil: a destination may refuse limits
// it cannot honour.
func (v *Validation) Flush() *Flush { return v.flush }

// ValueDecoder is implemented by a field type (a pointer to it) whose YAML shape the
// loader does not know, such as a list whose items are either a NAME or a mapping; it
// also implements FieldTyper to name its type in documentation.
type ValueDecoder interface {
	DecodeConfig(v *Value)
}

// Value is one YAML value handed to a ValueDecoder, with its position, so that the
// decoder's errors name file, line and key path like the loader's own.
type Value struct {
	d         *decoder
	e         entry
	path      string
	line, col int
}

// Path is the value's key path, such as "connectors.a.source.env[1]".
func (v *Value) Path() string { return v.path }

// Errorf reports a problem with the value.
func (v *Value) Errorf(format string, args ...any) {
	v.d.errorf(v.line, v.col, v.path, format, args...)
}

// IsNull reports a value left empty (`env:` with nothing after it).
func (v *Value) IsNull() bool { return isNull(v.d.resolve(v.e.value)) }

// Kind names the value's shape for messages: "a list", "a mapping", "a string", ...
func (v *Value) Kind() string { return kindOf(v.d.resolve(v.e.value)) }

// Scalar returns the value's text; a value that is not a scalar is reported.
func (v *Value) Scalar() (string, bool) { return v.d.scalar(v.e, v.path) }

// Items returns the items of a list (each with its own line and path "...[i]"), and
// false when the value is not a list.
func (v *Value) Items() ([]*Value, bool) {
	seq, ok := v.d.resolve(v.e.value).(*ast.SequenceNode)
	if !ok {
		return nil, false
	}
	out := make([]*Value, 0, len(seq.Values))
	for i, x := range seq.Values {
		l, c := pos(x)
		if l == 0 {
			l, c = v.line, v.col
		}
		out = append(out, &Value{d: v.d, e: entry{key: v.e.key, line: l, col: c, value: x},
			path: fmt.Sprintf("%s[%d]", v.path, i), line: l, col: c})
	}
	return out, true
}

// Entries returns the keys and values of a mapping, and false when the value is not a
// mapping.
func (v *Value) Entries() (keys []string, values []*Value, ok bool) {
	if _, isMap := v.d.resolve(v.e.value).(*ast.MappingNode); !isMap {
		return nil, nil, false
	}
	es, _ := v.d.mapping(v.e.value, v.path, v.line)
	for _, e := range es {
		keys = append(keys, e.key)
		values = append(values, &Value{d: v.d, e: e, path: joinPath(v.path, e.key), line: e.line, col: e.col})
	}
	return keys, values, true
}

var valueDecoderType = reflect.TypeFor[ValueDecoder]()

// section is the state of one section being decoded.
type section struct {
	path      string
	line, col int
	set       map[string]bool // relative key path -> written and decoded
	written   map[string]bool // relative key path -> written (or its _file key)
	connector string          // the connector whose section this is ("" for the file's own)
	flush     *Flush          // the destination's flush section, for its Validation
}

func newSection(path string, line, col int, connector string, flush *Flush) *section {
	return &section{path: path, line: line, col: col, set: map[string]bool{}, written: map[string]bool{},
		connector: connector, flush: flush}
}

// decodeSection decodes entries into rv (a struct) by its fields; prefix is the
// relative path of rv inside the section ("" at the top, "s3." below). extra keys are
// decoded by the caller (type, flush) but still suggested for misspellings; foreign
// maps keys of other types to their type name, for the error.
func (d *decoder) decodeSection(s *section, prefix string, entries []entry, rv reflect.Value, fs []Field, extra []string, foreign map[string]string, what string) {
	path := s.path
	if prefix != "" {
		path = joinPath(s.path, trimDot(prefix))
	}
	var list []field
	secrets := map[string]bool{}
	for _, f := range fs {
		f := f
		fv := rv.Field(f.Index)
		rel := prefix + f.Key
		list = append(list, field{f.Key, func(e entry, p string) {
			s.written[rel] = true
			d.markKey(e, p)
			if d.decodeValue(s, rel, f, fv, e, p) {
				s.set[rel] = true
			}
		}})
		if f.Secret {
			secrets[f.Key] = true
			list = append(list, field{f.Key + "_file", func(e entry, p string) {
				s.written[rel] = true
				s.written[rel+"_file"] = true
				d.markKey(e, p)
				main := joinPath(path, f.Key)
				if _, ok := d.keys[main]; !ok {
					d.keys[main] = [2]int{e.line, e.col}
				}
				if d.secretFile(e, p, fv) {
					s.set[rel] = true
				}
			}})
		}
	}
	for _, x := range extra {
		list = append(list, field{x, func(entry, string) {}})
	}
	d.fields(entries, path, list, foreign, what)
	for _, f := range fs {
		rel := prefix + f.Key
		if f.Secret && s.written[rel+"_file"] && s.wroteValue(entries, f.Key) {
			at := d.keys[joinPath(path, f.Key+"_file")]
			d.errorf(at[0], at[1], joinPath(path, f.Key+"_file"), "set %s or %s_file, not both", f.Key, f.Key)
			s.set[rel] = false
		}
		if f.Required && !s.written[rel] {
			line, col := s.line, s.col
			if prefix != "" {
				if at, ok := d.keys[path]; ok {
					line, col = at[0], at[1]
				}
			}
			msg := "required"
			if f.RequiredHint != "" {
				msg += ": " + f.RequiredHint
			}
			d.errorf(line, col, joinPath(path, f.Key), "%s", msg)
		}
	}
}

func (s *section) wroteValue(entries []entry, key string) bool {
	for _, e := range entries {
		if e.key == key {
			return true
		}
	}
	return false
}

func trimDot(p string) string {
	if p != "" && p[len(p)-1] == '.' {
		return p[:len(p)-1]
	}
	return p
}

// decodeValue decodes one key into fv and reports whether it succeeded.
func (d *decoder) decodeValue(s *section, rel string, f Field, fv reflect.Value, e entry, p string) bool {
	before := len(d.errs)
	t := fv.Type()
	switch {
	case reflect.PointerTo(t).Implements(valueDecoderType):
		fv.Addr().Interface().(ValueDecoder).DecodeConfig(&Value{d: d, e: e, path: p, line: e.line, col: e.col})
	case f.Type == FieldSections:
		d.sectionList(s, rel, f, fv, e, p)
	case f.Type == FieldStrings:
		d.stringMap(fv, e, p)
	case t == durationType:
		if v, ok := d.duration(e, p); ok {
			fv.SetInt(int64(v))
		}
	case t == sizeType:
		if v, ok := d.size(e, p); ok {
			fv.SetInt(int64(v))
		}
	default:
		switch t.Kind() {
		case reflect.String:
			if v, ok := d.scalar(e, p); ok {
				if v != "" && len(f.Enum) > 0 && !contains(f.Enum, v) {
					d.errorf(e.line, e.col, p, "must be one of %s; got %q", joinComma(f.Enum), v)
					break
				}
				fv.SetString(v)
			}
		case reflect.Bool:
			var b bool
			d.boolean(&b)(e, p)
			fv.SetBool(b)
		case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
			if v, ok := d.integer(e, p); ok {
				lo, hi := intRange(t)
				if v < lo || uint64(v) > hi && v >= 0 {
					d.errorf(e.line, e.col, p, "must be between %d and %d", lo, hi)
					break
				}
				if t.Kind() == reflect.Uint32 || t.Kind() == reflect.Uint64 {
					fv.SetUint(uint64(v))
				} else {
					fv.SetInt(v)
				}
			}
		case reflect.Slice:
			items, lines, ok := d.stringList(e, p)
			if ok {
				fv.Set(reflect.ValueOf(items))
				for i, l := range lines {
					d.keys[fmt.Sprintf("%s[%d]", p, i)] = [2]int{l, 0}
				}
			}
		case reflect.Map:
			r := d.resolve(e.value)
			if isNull(r) {
				break
			}
			if _, ok := r.(*ast.MappingNode); !ok {
				d.errorf(e.line, e.col, p, "must be a mapping of keys to values, got %s", kindOf(r))
				break
			}
			if m, ok := d.anyValue(e.value, p).(map[string]any); ok {
				fv.Set(reflect.ValueOf(m))
			}
		case reflect.Struct:
			es, ok := d.mapping(e.value, p, e.line)
			if ok {
				d.decodeSection(s, rel+".", es, fv, f.Fields, nil, nil, f.Key)
			}
		}
	}
	return len(d.errs) == before
}

// sectionList decodes a list of sections into fv (a slice of structs): each item as a
// section of its own, located on its own line, checked by its own Validate. The
// items' keys are then known to s as "streams[2].url", for its Validate.
func (d *decoder) sectionList(s *section, rel string, f Field, fv reflect.Value, e entry, p string) {
	r := d.resolve(e.value)
	if isNull(r) {
		return
	}
	seq, ok := r.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.line, e.col, p, "must be a list of sections (items of key: value), got %s", kindOf(r))
		return
	}
	items := reflect.MakeSlice(fv.Type(), len(seq.Values), len(seq.Values))
	for i, x := range seq.Values {
		ip := fmt.Sprintf("%s[%d]", p, i)
		if !d.spend(x, ip) {
			break
		}
		l, c := pos(x)
		if l == 0 {
			l, c = e.line, e.col
		}
		d.markKey(entry{line: l, col: c}, ip)
		if isNull(d.resolve(x)) {
			// An empty item is a stray "-", not an item that wants every default.
			d.errorf(l, c, ip, "must be a mapping of keys to values, got nothing")
			continue
		}
		es, ok := d.mapping(x, ip, l)
		if !ok {
			continue
		}
		item := newSection(ip, l, c, s.connector, s.flush)
		iv := items.Index(i)
		d.decodeSection(item, "", es, iv, f.Fields, nil, nil, "an item of "+f.Key)
		d.validate(iv.Addr().Interface(), item)
		prefix := fmt.Sprintf("%s[%d].", rel, i)
		for k, ok := range item.set {
			s.set[prefix+k] = ok
		}
		for k, ok := range item.written {
			s.written[prefix+k] = ok
		}
	}
	fv.Set(items)
}

// stringMap decodes a mapping of names to scalar values (HTTP headers, say) into fv, a
// map of strings; a value left empty is "".
func (d *decoder) stringMap(fv reflect.Value, e entry, p string) {
	r := d.resolve(e.value)
	if isNull(r) {
		return
	}
	if _, ok := r.(*ast.MappingNode); !ok {
		d.errorf(e.line, e.col, p, "must be a mapping of names to values, got %s", kindOf(r))
		return
	}
	es, _ := d.mapping(e.value, p, e.line)
	t := fv.Type()
	m := reflect.MakeMapWithSize(t, len(es))
	for _, x := range es {
		kp := joinPath(p, x.key)
		if !d.spend(x.value, kp) {
			break
		}
		d.markKey(x, kp)
		if v, ok := d.scalar(x, kp); ok {
			m.SetMapIndex(reflect.ValueOf(x.key).Convert(t.Key()), reflect.ValueOf(v).Convert(t.Elem()))
		}
	}
	fv.Set(m)
}

func intRange(t reflect.Type) (int64, uint64) {
	switch t.Kind() {
	case reflect.Int32:
		return math.MinInt32, math.MaxInt32
	case reflect.Uint32:
		return 0, math.MaxUint32
	case reflect.Uint64:
		return 0, math.MaxInt64
	}
	return math.MinInt64, math.MaxInt64
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func joinComma(list []string) string { return strings.Join(list, ", ") }

// decodeTyped decodes a connector's typed section into a new config of spec, checks
// it, and applies its defaults.
func (d *decoder) decodeTyped(spec Spec, entries []entry, path string, line, col int, connector string, extra []string, foreign map[string]string, flush *Flush) any {
	cfg := spec.New()
	fs, err := FieldsOf(cfg)
	if err != nil {
		// A kind's config struct is wrong: a programming mistake its tests catch.
		d.errorf(line, col, path, "type %s cannot be configured: %v", spec.Type, err)
		return nil
	}
	s := newSection(path, line, col, connector, flush)
	d.decodeSection(s, "", entries, reflect.ValueOf(cfg).Elem(), fs, extra, foreign, "type "+spec.Type)
	d.validate(cfg, s)
	if err := ApplyDefaults(cfg); err != nil {
		d.errorf(line, col, path, "type %s: %v", spec.Type, err)
	}
	return cfg
}

func (d *decoder) validate(cfg any, s *section) {
	if v, ok := cfg.(Validator); ok {
		v.Validate(&Validation{d: d, path: s.path, line: s.line, col: s.col, connector: s.connector, set: s.set, flush: s.flush})
	}
}

// secretFile reads a secret's value from the file named by its _file key.
func (d *decoder) secretFile(e entry, p string, fv reflect.Value) bool {
	name, ok := d.scalar(e, p)
	if !ok {
		return false
	}
	if name == "" {
		d.errorf(e.line, e.col, p, "must name a file")
		return false
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(d.dir, name)
	}
	data, err := readSecret(name)
	if err != nil {
		d.errorf(e.line, e.col, p, "cannot read %s: %v", name, err)
		return false
	}
	fv.SetString(strings.TrimRight(string(data), "\r\n"))
	return true
}

// ApplyDefaults sets each zero field of a config struct (a pointer) that has a default
// tag to that default, in nested sections and in each item of a list of sections too.
// The loader calls it after decoding; a connector calls it on configs built in Go, so
// a default is written only in its tag.
func ApplyDefaults(cfg any) error {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config defaults: %T is not a pointer to a struct", cfg)
	}
	fs, err := FieldsOf(cfg)
	if err != nil {
		return err
	}
	return applyDefaults(rv.Elem(), fs)
}

func applyDefaults(rv reflect.Value, fs []Field) error {
	for _, f := range fs {
		fv := rv.Field(f.Index)
		switch f.Type {
		case FieldSection:
			if err := applyDefaults(fv, f.Fields); err != nil {
				return err
			}
			continue
		case FieldSections:
			for i := 0; i < fv.Len(); i++ {
				if err := applyDefaults(fv.Index(i), f.Fields); err != nil {
					return fmt.Errorf("%s[%d]: %w", f.Key, i, err)
				}
			}
			continue
		}
		if f.Default == "" || !fv.IsZero() {
			continue
		}
		if err := setDefault(fv, f.Default); err != nil {
			return fmt.Errorf("config defaults: %s: default %q: %w", f.Key, f.Default, err)
		}
	}
	return nil
}

func setDefault(fv reflect.Value, def string) error {
	t := fv.Type()
	switch {
	case t == durationType:
		v, err := time.ParseDuration(def)
		if err != nil {
			return err
		}
		fv.SetInt(int64(v))
		return nil
	case t == sizeType:
		v, err := ParseSize(def)
		if err != nil {
			return err
		}
		fv.SetInt(int64(v))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		fv.SetString(def)
	case reflect.Bool:
		v, err := strconv.ParseBool(def)
		if err != nil {
			return err
		}
		fv.SetBool(v)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(def, 10, t.Bits())
		if err != nil {
			return err
		}
		fv.SetInt(v)
	case reflect.Uint32, reflect.Uint64:
		v, err := strconv.ParseUint(def, 10, t.Bits())
		if err != nil {
			return err
		}
		fv.SetUint(v)
	default:
		return fmt.Errorf("a %s cannot have a default tag", t)
	}
	return nil
}
