package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// A connector kind declares its configuration as a Go struct whose fields carry tags;
// the loader decodes a connector's section into it, and the reference documentation
// and the JSON Schema of the config file are generated from the same tags, so a key,
// its default and its description are written once, beside the connector.
//
// The tags of a field:
//
//	yaml:"key"         the key in the config file (required; "-" skips the field)
//	doc:"..."          what the key does, one or two sentences (required)
//	default:"v"        the value used when the key is left out, written as in YAML;
//	                   the loader applies it
//	defaultdoc:"..."   a default computed in code (say "connectd_<connector name>"),
//	                   for the documentation only
//	required:"true"    the key must be set; instead of "true" the tag may say what to
//	                   write, which the loader adds to its "required" error
//	secret:"true"      the value may instead be read from a file named by <key>_file
//	enum:"a,b,c"       the only values allowed
//	example:"v"        an example value, as written in YAML
//
// Supported field types: string, bool, the sized ints, time.Duration, Size, []string,
// map[string]string (names to scalar values, such as HTTP headers), map[string]any
// (free-form), nested structs (a section of keys), slices of structs (a list of
// sections, each item decoded and checked like a section: its own required keys,
// defaults, enums, secrets and, when the item's pointer implements Validator, its own
// Validate), and any type that implements FieldTyper (it names its own type in
// documentation).

// Spec is one connector kind's configuration: what registering a kind tells the loader.
type Spec struct {
	// Type is the kind's `type:` value, such as "postgres".
	Type string
	// Summary is one line describing the kind, for the generated reference.
	Summary string
	// New returns a pointer to a new, zero config struct of the kind.
	New func() any
}

// Field describes one key of a config section.
type Field struct {
	Key         string
	Type        string // see FieldType* below, or a FieldTyper's name
	Description string
	Default     string // applied by the loader when the key is left out
	DefaultDoc  string // a default computed in code, described
	Required    bool
	// RequiredHint says what to write when a required key is missing ("" when the
	// required tag is just "true").
	RequiredHint string
	Secret       bool
	Enum         []string
	Example      string
	Fields       []Field // the keys of a section, or of each item of a list of sections
	// Index is the field's index in its struct (reflect.Value.Field).
	Index int
}

// Field types, as the reference documentation names them.
const (
	FieldString   = "string"
	FieldBool     = "boolean"
	FieldInt      = "integer"
	FieldDuration = "duration"
	FieldSize     = "size"
	FieldList     = "list of strings"
	FieldMapping  = "mapping"
	FieldStrings  = "mapping of strings"
	FieldSection  = "section"
	FieldSections = "list of sections"
)

// FieldTyper is implemented by a field type the loader cannot name from its Go type
// (a list of NAME or NAME: value items, say); its documentation type is what it
// returns.
type FieldTyper interface {
	ConfigType() string
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
	typerType    = reflect.TypeFor[FieldTyper]()
)

// FieldsOf lists the keys of a tagged config struct (or a pointer to one), in field
// order. It reports a missing yaml or doc tag, and a field type it cannot decode, as an
// error: those are programming mistakes that tests of each kind catch.
func FieldsOf(v any) ([]Field, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return nil, fmt.Errorf("config spec: nil value")
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config spec: %s is not a struct", t)
	}
	return fieldsOf(t, map[reflect.Type]bool{})
}

// fieldsOf lists the keys of struct t. inside holds the structs being listed, of
// which t is one: a struct that holds a list of itself would describe itself forever.
func fieldsOf(t reflect.Type, inside map[reflect.Type]bool) ([]Field, error) {
	if inside[t] {
		return nil, fmt.Errorf("config spec: %s contains itself", t)
	}
	inside[t] = true
	defer delete(inside, t)
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, ok := sf.Tag.Lookup("yaml")
		if key == "-" || !sf.IsExported() {
			continue
		}
		key, _, _ = strings.Cut(key, ",")
		if !ok || key == "" {
			return nil, fmt.Errorf("config spec: %s.%s has no yaml key", t, sf.Name)
		}
		f := Field{
			Key:         key,
			Description: sf.Tag.Get("doc"),
			Default:     sf.Tag.Get("default"),
			DefaultDoc:  sf.Tag.Get("defaultdoc"),
			Required:    requiredTag(sf.Tag.Get("required")),
			Secret:      sf.Tag.Get("secret") == "true",
			Example:     sf.Tag.Get("example"),
			Index:       i,
		}
		if f.Required && sf.Tag.Get("required") != "true" {
			f.RequiredHint = sf.Tag.Get("required")
		}
		if f.Description == "" {
			return nil, fmt.Errorf("config spec: %s.%s (%s) has no doc", t, sf.Name, key)
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, ",")
		}
		typ, err := fieldType(sf.Type)
		if err != nil {
			return nil, fmt.Errorf("config spec: %s.%s (%s): %w", t, sf.Name, key, err)
		}
		f.Type = typ
		switch typ {
		case FieldSection:
			if f.Fields, err = fieldsOf(sf.Type, inside); err != nil {
				return nil, err
			}
		case FieldSections:
			if f.Fields, err = fieldsOf(sf.Type.Elem(), inside); err != nil {
				return nil, err
			}
		}
		if f.Secret && typ != FieldString {
			return nil, fmt.Errorf("config spec: %s.%s (%s): only a string can be a secret", t, sf.Name, key)
		}
		out = append(out, f)
	}
	return out, nil
}

func fieldType(t reflect.Type) (string, error) {
	if t.Implements(typerType) {
		return reflect.Zero(t).Interface().(FieldTyper).ConfigType(), nil
	}
	switch {
	case t == durationType:
		return FieldDuration, nil
	case t == sizeType:
		return FieldSize, nil
	}
	switch t.Kind() {
	case reflect.String:
		return FieldString, nil
	case reflect.Bool:
		return FieldBool, nil
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return FieldInt, nil
	case reflect.Slice:
		switch t.Elem().Kind() {
		case reflect.String:
			return FieldList, nil
		case reflect.Struct:
			return FieldSections, nil
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			break
		}
		switch t.Elem().Kind() {
		case reflect.Interface:
			return FieldMapping, nil
		case reflect.String:
			return FieldStrings, nil
		}
	case reflect.Struct:
		return FieldSection, nil
	}
	return "", fmt.Errorf("type %s cannot be decoded from the config file", t)
}

func requiredTag(s string) bool { return s != "" && s != "false" }
