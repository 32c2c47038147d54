package jsonschema

import (
	"fmt"
	"slices"

	"github.com/connectd/connectd/config"
)

// connectorName is the pattern the loader accepts for a connector's name.
const connectorName = "^[a-zA-Z0-9_-]+$"

// Document is what the schema of a whole config file is made of.
type Document struct {
	// ID is the schema's $id, where it is published; empty leaves it out.
	ID string
	// Top is a tagged config struct of the keys at the top of the file besides
	// `connectors` (offsets, server, plugins).
	Top any
	// Source and Destination are tagged config structs of the keys every source or
	// every destination has besides `type` (a destination's `flush`); nil for none.
	Source, Destination any
	// Connector is a tagged config struct of the keys a connector has besides source
	// and destination (verify); nil for none.
	Connector any
	// Sources and Destinations are the registered kinds, selected by `type`.
	Sources, Destinations []config.Spec
}

// File returns the schema of a whole config file: the top-level keys, the connectors
// map, and each connector's source and destination checked against the keys of the
// kind its `type` selects.
func File(d Document) (Schema, error) {
	top, err := Section(d.Top)
	if err != nil {
		return nil, fmt.Errorf("top level: %w", err)
	}
	defs := Schema{}
	source, err := side(defs, "source", d.Source, d.Sources)
	if err != nil {
		return nil, err
	}
	destination, err := side(defs, "destination", d.Destination, d.Destinations)
	if err != nil {
		return nil, err
	}
	connProps := Schema{"source": source, "destination": destination}
	if d.Connector != nil {
		s, err := Section(d.Connector)
		if err != nil {
			return nil, fmt.Errorf("every connector: %w", err)
		}
		for k, v := range s["properties"].(Schema) {
			connProps[k] = v
		}
	}
	defs["connector"] = Schema{
		"type":                 "object",
		"description":          "One pipeline: changes read by its source are written to its destination.",
		"properties":           connProps,
		"required":             []any{"source", "destination"},
		"additionalProperties": false,
	}
	props := top["properties"].(Schema)
	props["connectors"] = Schema{
		"type":                 "object",
		"description":          "The connectors, by name. The name is the connector's identity: its offsets, and the defaults derived from it, follow it.",
		"patternProperties":    Schema{connectorName: Schema{"$ref": "#/$defs/connector"}},
		"additionalProperties": false,
	}
	if !slices.Contains(anys(top["required"]), any("connectors")) {
		top["required"] = append(anys(top["required"]), "connectors")
	}
	top["$schema"] = Draft
	if d.ID != "" {
		top["$id"] = d.ID
	}
	top["title"] = "connectd configuration"
	top["$defs"] = defs
	return top, nil
}

// side builds the schema of a connector's source or destination: `type` picks one of
// the kinds, whose keys (with the shared ones and `type`) are then the only ones
// allowed. Each kind's schema is a definition, "source-postgres" say.
func side(defs Schema, what string, shared any, kinds []config.Spec) (Schema, error) {
	var sharedProps Schema
	if shared != nil {
		s, err := Section(shared)
		if err != nil {
			return nil, fmt.Errorf("every %s: %w", what, err)
		}
		sharedProps = s["properties"].(Schema)
	}
	var types, branches []any
	for _, k := range kinds {
		s, err := Section(k.New())
		if err != nil {
			return nil, fmt.Errorf("%s type %s: %w", what, k.Type, err)
		}
		props := s["properties"].(Schema)
		for key, p := range sharedProps {
			props[key] = p
		}
		props["type"] = Schema{"const": k.Type}
		s["required"] = append(anys(s["required"]), "type")
		if k.Summary != "" {
			s["description"] = k.Summary
		}
		name := what + "-" + k.Type
		defs[name] = s
		types = append(types, k.Type)
		branches = append(branches, Schema{
			"if":   Schema{"properties": Schema{"type": Schema{"const": k.Type}}, "required": []any{"type"}},
			"then": Schema{"$ref": "#/$defs/" + name},
		})
	}
	return Schema{
		"type":        "object",
		"description": fmt.Sprintf("The connector's %s; `type` selects its kind and so its keys.", what),
		"properties":  Schema{"type": Schema{"enum": types, "description": fmt.Sprintf("The kind of %s.", what)}},
		"required":    []any{"type"},
		"allOf":       branches,
	}, nil
}

func anys(v any) []any {
	s, _ := v.([]any)
	return s
}
