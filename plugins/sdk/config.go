package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/config/jsonschema"
)

// A plugin declares its config as connectd's built-in connectors do: a struct whose
// fields carry yaml, doc, default, required, enum and secret tags (see config.FieldsOf
// and docs/configuration.md). From it the SDK derives the JSON Schema it sends in the
// plugin's spec (connectd validates the connector's `config:` against it before the
// plugin sees it, and names the offending key of the config file), and it decodes
// `config:` into the struct, defaults applied. A config type without those tags is
// decoded as plain JSON, and declares no schema.

// configFields returns the keys C declares, or nil when C is not a struct whose
// fields carry yaml tags. A tagged type the tags cannot describe is an error.
func configFields[C any]() ([]config.Field, error) {
	t := reflect.TypeFor[C]()
	if t.Kind() != reflect.Struct {
		return nil, nil
	}
	tagged := false
	for i := 0; i < t.NumField(); i++ {
		if _, ok := t.Field(i).Tag.Lookup("yaml"); ok {
			tagged = true
		}
	}
	if !tagged {
		return nil, nil
	}
	var zero C
	return config.FieldsOf(&zero)
}

// ConfigSchema returns the JSON Schema of the config type C, as the SDK sends it to
// connectd, or "" when C declares no keys with tags. A plugin's tests can check it.
func ConfigSchema[C any]() (string, error) {
	if fs, err := configFields[C](); fs == nil {
		return "", err
	}
	var zero C
	s, err := jsonschema.Section(&zero)
	if err != nil {
		return "", err
	}
	s["$schema"] = jsonschema.Draft
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("config schema: %w", err)
	}
	return string(b), nil
}

// withSchema fills in info.ConfigSchema from C unless the author wrote one.
func withSchema[C any](info Info) Info {
	if info.ConfigSchema != "" {
		return info
	}
	s, err := ConfigSchema[C]()
	if err != nil {
		// A tag mistake in the plugin's own type: its author's tests catch it.
		panic(fmt.Sprintf("sdk: config type: %v", err))
	}
	info.ConfigSchema = s
	return info
}

// decodeConfig decodes the connector's config section into C. Unknown keys are
// errors, as they are in connectd's own config.
func decodeConfig[C any](raw []byte) (C, error) {
	var cfg C
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		raw = []byte("{}")
	}
	fs, err := configFields[C]()
	if err != nil {
		return cfg, Permanent(err)
	}
	if fs != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return cfg, Permanent(fmt.Errorf("config: %w", err))
		}
		var errs []error
		decodeSection(m, fs, reflect.ValueOf(&cfg).Elem(), "", &errs)
		if len(errs) > 0 {
			return cfg, Permanent(fmt.Errorf("config: %w", errors.Join(errs...)))
		}
		return cfg, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, Permanent(fmt.Errorf("config: %w", err))
	}
	return cfg, nil
}

// decodeSection sets the fields of dst (a struct) from m, the defaults of the keys
// m lacks, and reports every problem with its key path.
func decodeSection(m map[string]any, fs []config.Field, dst reflect.Value, path string, errs *[]error) {
	known := map[string]bool{}
	for _, f := range fs {
		known[f.Key] = true
		if f.Secret {
			known[f.Key+"_file"] = true
		}
	}
	for k := range m {
		if !known[k] {
			*errs = append(*errs, fmt.Errorf("%s: unknown key", join(path, k)))
		}
	}
	for _, f := range fs {
		p := join(path, f.Key)
		v, set := m[f.Key]
		if f.Secret {
			if file, ok := m[f.Key+"_file"]; ok {
				if set {
					*errs = append(*errs, fmt.Errorf("%s: set %s or %s_file, not both", p, f.Key, f.Key))
					continue
				}
				name, _ := file.(string)
				b, err := os.ReadFile(name)
				if err != nil {
					*errs = append(*errs, fmt.Errorf("%s_file: %w", p, err))
					continue
				}
				v, set = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), true
			}
		}
		if v == nil {
			set = false
		}
		field := dst.Field(f.Index)
		switch {
		case f.Type == config.FieldSection:
			sub, ok := v.(map[string]any)
			if set && !ok {
				*errs = append(*errs, fmt.Errorf("%s: must be a mapping", p))
				continue
			}
			decodeSection(sub, f.Fields, field, p, errs)
			continue
		case !set && f.Required:
			*errs = append(*errs, fmt.Errorf("%s: required", p))
			continue
		case !set && f.Default == "":
			continue
		case !set:
			v = f.Default
		}
		if err := setValue(field, f, v); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: %w", p, err))
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// setValue converts one value as JSON carries it (or a default as the tag writes it)
// to the field's type, accepting what connectd's own loader accepts: a number for a
// string, "yes" for true, "1_000" for a number.
func setValue(dst reflect.Value, f config.Field, v any) error {
	text, scalar := scalarText(v)
	if len(f.Enum) > 0 && (!scalar || !slices.Contains(f.Enum, text)) {
		return fmt.Errorf("%v is not one of %s", v, strings.Join(f.Enum, ", "))
	}
	switch f.Type {
	case config.FieldString:
		if !scalar {
			return fmt.Errorf("must be a single value")
		}
		dst.SetString(text)
	case config.FieldBool:
		switch strings.ToLower(text) {
		case "true", "yes", "on":
			dst.SetBool(true)
		case "false", "no", "off":
			dst.SetBool(false)
		default:
			return fmt.Errorf("must be true or false, got %v", v)
		}
	case config.FieldInt:
		n, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 10, 64)
		if !scalar || err != nil {
			return fmt.Errorf("must be a whole number, got %v", v)
		}
		if dst.CanUint() {
			if n < 0 || dst.OverflowUint(uint64(n)) {
				return fmt.Errorf("%d is out of range", n)
			}
			dst.SetUint(uint64(n))
		} else {
			if dst.OverflowInt(n) {
				return fmt.Errorf("%d is out of range", n)
			}
			dst.SetInt(n)
		}
	case config.FieldDuration:
		d, err := time.ParseDuration(text)
		if !scalar || err != nil || d < 0 {
			return fmt.Errorf("must be a duration such as 30s, 5m or 1h30m, got %v", v)
		}
		dst.SetInt(int64(d))
	case config.FieldSize:
		n, err := config.ParseSize(text)
		if !scalar || err != nil {
			return fmt.Errorf("must be a size such as 128MiB, 64KB or 1048576, got %v", v)
		}
		dst.SetInt(int64(n))
	case config.FieldList:
		items, ok := v.([]any)
		if !ok {
			return fmt.Errorf("must be a list")
		}
		out := make([]string, 0, len(items))
		for i, it := range items {
			s, ok := scalarText(it)
			if !ok {
				return fmt.Errorf("[%d]: must be a single value", i)
			}
			out = append(out, s)
		}
		dst.Set(reflect.ValueOf(out).Convert(dst.Type()))
	default:
		// Free-form mappings, and types of the author's own (a list of columns, say),
		// decode from JSON as encoding/json would (numbers as float64).
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(dst.Addr().Interface()); err != nil {
			return err
		}
	}
	return nil
}

// scalarText returns a scalar's text as written; ok is false for a list or mapping.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}
