// Package jsonschema derives JSON Schemas (draft 2020-12) from the tagged config
// structs connector kinds declare (config.FieldsOf): one section's schema, which a
// plugin's config is checked against, and the schema of a whole config file, which
// editors use for completion and validation (docs/configuration.md, "Editors").
//
// The schemas describe the file as written, before the loader interpolates ${VAR}:
// any value may be a string holding ${...}, and a scalar may be written the ways the
// loader accepts (a number where a string is expected, "yes" for true).
package jsonschema

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/goccy/go-yaml"

	"github.com/connectd/connectd/config"
)

// Schema is a JSON Schema or one of its subschemas, as it is encoded in JSON.
type Schema = map[string]any

// Draft is the dialect of every schema this package writes.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Provider is implemented by a field type the generator cannot describe from its Go
// type (a config.FieldTyper, such as a list of NAME or NAME: value items): it gives
// the schema of its values.
type Provider interface {
	JSONSchema() map[string]any
}

// Patterns of values the loader reads from strings. interpolated matches a value the
// loader will replace from the environment, which a schema cannot check.
const (
	interpolated    = `\$\{`
	durationPattern = `^(?:[0-9]+(?:\.[0-9]*)?(?:ns|us|µs|ms|s|m|h))+$|^0$|` + interpolated
	sizePattern     = `^\s*(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?:[kKmMgGtT](?:[iI])?[bB]|[bB])?\s*$|` + interpolated
	integerPattern  = `^-?[0-9][0-9_]*$|` + interpolated
	booleanPattern  = `^(?:true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$|` + interpolated
)

var providerType = reflect.TypeFor[Provider]()

// Section returns the schema of a section whose keys are those of v, a tagged config
// struct (or a pointer to one): an object with exactly those keys, their types,
// enums, defaults and descriptions, the required ones required, and a <key>_file
// variant beside every secret.
func Section(v any) (Schema, error) {
	fs, err := config.FieldsOf(v)
	if err != nil {
		return nil, err
	}
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return object(fs, t), nil
}

func object(fs []config.Field, t reflect.Type) Schema {
	props := Schema{}
	var required []any
	var rules []any
	for _, f := range fs {
		ft := t.Field(f.Index).Type
		props[f.Key] = field(f, ft)
		if !f.Secret {
			if f.Required {
				required = append(required, f.Key)
			}
			continue
		}
		file := f.Key + "_file"
		props[file] = Schema{
			"type":        "string",
			"description": fmt.Sprintf("A file holding the value of %s (its trailing newline is dropped); relative to the config file.", f.Key),
		}
		rules = append(rules, Schema{"not": Schema{"required": []any{f.Key, file}}})
		if f.Required {
			rules = append(rules, Schema{"anyOf": []any{Schema{"required": []any{f.Key}}, Schema{"required": []any{file}}}})
		}
	}
	s := Schema{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	if len(rules) > 0 {
		s["allOf"] = rules
	}
	return s
}

func field(f config.Field, t reflect.Type) Schema {
	var s Schema
	switch {
	case reflect.PointerTo(t).Implements(providerType) || t.Implements(providerType):
		s = anyOrInterpolated(reflect.New(t).Interface().(Provider).JSONSchema())
	case f.Type == config.FieldSection:
		s = object(f.Fields, t)
		// `server:` with nothing under it is an empty section.
		s["type"] = []any{"object", "null"}
		s = anyOrInterpolated(s)
	case f.Type == config.FieldSections:
		// Unlike a section, an item must not be empty: the loader refuses a stray "-".
		item := anyOrInterpolated(object(f.Fields, t.Elem()))
		s = anyOrInterpolated(Schema{"type": []any{"array", "null"}, "items": item})
	case len(f.Enum) > 0:
		enum := make([]any, len(f.Enum))
		for i, v := range f.Enum {
			enum[i] = v
		}
		s = anyOrInterpolated(Schema{"enum": enum})
	default:
		s = scalar(f.Type, t)
	}
	if f.Description != "" {
		s["description"] = f.Description
	}
	if f.Default != "" {
		s["default"] = value(f.Type, f.Default)
	}
	if f.Example != "" {
		s["examples"] = []any{value(f.Type, f.Example)}
	}
	return s
}

// anyOrInterpolated also accepts a ${VAR} in place of a value the schema describes:
// the loader substitutes it before parsing the YAML, so it may even stand for a list
// or a mapping. The schema comes first, which is the alternative problems report.
func anyOrInterpolated(s Schema) Schema {
	return Schema{"anyOf": []any{s, Schema{"type": "string", "pattern": interpolated}}}
}

func scalar(typ string, t reflect.Type) Schema {
	switch typ {
	case config.FieldString:
		// The loader takes a scalar's text as written: `password: 12345` is "12345".
		return Schema{"type": []any{"string", "number", "boolean"}}
	case config.FieldBool:
		return Schema{"type": []any{"boolean", "string"}, "pattern": booleanPattern}
	case config.FieldInt:
		s := Schema{"type": []any{"integer", "string"}, "pattern": integerPattern}
		switch t.Kind() {
		case reflect.Uint32:
			s["minimum"], s["maximum"] = 0, uint64(1<<32-1)
		case reflect.Uint, reflect.Uint64:
			s["minimum"] = 0
		}
		return s
	case config.FieldDuration:
		// 0 is the only duration YAML reads as a number.
		return Schema{"anyOf": []any{Schema{"type": "string", "pattern": durationPattern}, Schema{"const": 0}}}
	case config.FieldSize:
		return Schema{"type": []any{"integer", "string"}, "minimum": 0, "pattern": sizePattern}
	case config.FieldList:
		return anyOrInterpolated(Schema{"type": []any{"array", "null"}, "items": Schema{"type": []any{"string", "number", "boolean"}}})
	case config.FieldMapping:
		return anyOrInterpolated(Schema{"type": []any{"object", "null"}})
	case config.FieldStrings:
		// Values are scalars taken as written, as a string key's; `X-Empty:` is "".
		return anyOrInterpolated(Schema{"type": []any{"object", "null"},
			"additionalProperties": Schema{"type": []any{"string", "number", "boolean", "null"}}})
	}
	// A FieldTyper without a schema of its own: say what shape its values have.
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return anyOrInterpolated(Schema{"type": []any{"array", "null"}})
	case reflect.Map, reflect.Struct:
		return anyOrInterpolated(Schema{"type": []any{"object", "null"}})
	}
	return Schema{}
}

// value converts a default or example, written as in YAML, to the JSON value an
// editor should insert.
func value(typ, s string) any {
	switch typ {
	case config.FieldBool:
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case config.FieldInt:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case config.FieldString, config.FieldDuration, config.FieldSize:
	default:
		// A list, a mapping or a type of its own: the example is written in YAML.
		var v any
		if err := yaml.Unmarshal([]byte(s), &v); err == nil && v != nil {
			return v
		}
	}
	return s
}
