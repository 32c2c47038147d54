package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	js "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Validator checks values against one compiled schema.
type Validator struct {
	schema *js.Schema
}

// Problem is one way a value breaks its schema.
type Problem struct {
	// Path is the key path of the offending value below the validated one
	// (columns[1].type), empty for the value itself.
	Path string
	Msg  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Compile prepares a schema, given as JSON, for validation. A schema that is not one
// (bad JSON, an unknown draft, a malformed keyword) is an error.
func Compile(schema []byte) (*Validator, error) {
	doc, err := js.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	c := js.NewCompiler()
	c.DefaultDraft(js.Draft2020)
	const url = "mem:///schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	return &Validator{schema: s}, nil
}

// Validate checks v, a value as encoding/json or a YAML decoder gives it (maps of
// string keys, slices, scalars), and lists its problems, none when it is valid.
func (v *Validator) Validate(value any) ([]Problem, error) {
	// A round trip through JSON gives the validator the number types it expects.
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("json schema: encode the value: %w", err)
	}
	doc, err := js.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("json schema: decode the value: %w", err)
	}
	err = v.schema.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var ve *js.ValidationError
	if !errors.As(err, &ve) {
		return nil, fmt.Errorf("json schema: %w", err)
	}
	var out []Problem
	seen := map[string]bool{}
	for _, p := range leaves(ve, nil) {
		if !seen[p.String()] {
			seen[p.String()] = true
			out = append(out, p)
		}
	}
	return out, nil
}

var printer = message.NewPrinter(language.English)

// patternMessages says in words what the generator's patterns want, as the loader does.
var patternMessages = map[string]string{
	durationPattern: "must be a duration such as 30s, 5m or 1h30m, got %q",
	sizePattern:     "must be a size such as 128MiB, 64KB or 1048576, got %q",
	integerPattern:  "must be a whole number, got %q",
	booleanPattern:  "must be true or false, got %q",
}

// leaves turns the validator's tree of errors into one problem per offending key.
// Of an anyOf only the first alternative is reported: the generator puts the
// meaningful one first and the ${VAR} escape hatch after it.
func leaves(e *js.ValidationError, out []Problem) []Problem {
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			out = append(out, Problem{Path: path(append(e.InstanceLocation, m)), Msg: "required"})
		}
		return out
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			out = append(out, Problem{Path: path(append(e.InstanceLocation, p)), Msg: "unknown key"})
		}
		return out
	case *kind.AnyOf:
		if len(e.Causes) > 0 {
			return leaves(e.Causes[0], out)
		}
	case *kind.Pattern:
		if msg, ok := patternMessages[k.Want]; ok {
			return append(out, Problem{Path: path(e.InstanceLocation), Msg: fmt.Sprintf(msg, k.Got)})
		}
	}
	if len(e.Causes) == 0 {
		return append(out, Problem{Path: path(e.InstanceLocation), Msg: e.ErrorKind.LocalizedString(printer)})
	}
	for _, c := range e.Causes {
		out = leaves(c, out)
	}
	return out
}

// path writes an instance location the way config errors name keys: a.b[2].c.
func path(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}
