package reference

import (
	"fmt"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/config/jsonschema"
)

// Parts returns the tables of a configuration reference by the name of their part:
// "top" for the keys at the top of the file, "source" and "destination" for the keys
// every source or destination has (when there are any), "connector" for the keys of a
// connector besides source and destination, "source T" and
// "destination T" for each kind, or just "T" for a type whose source and destination
// take the same keys (type: plugin), so the document shows that table once.
func Parts(d jsonschema.Document) (map[string]string, error) {
	parts := map[string]string{}
	for name, v := range map[string]any{"top": d.Top, "source": d.Source, "destination": d.Destination, "connector": d.Connector} {
		if v == nil {
			continue
		}
		fs, err := config.FieldsOf(v)
		if err != nil {
			return nil, fmt.Errorf("reference: %s: %w", name, err)
		}
		parts[name] = Table(fs)
	}
	sources, err := kindTables("source", d.Sources)
	if err != nil {
		return nil, err
	}
	destinations, err := kindTables("destination", d.Destinations)
	if err != nil {
		return nil, err
	}
	for typ, t := range sources {
		if dt, ok := destinations[typ]; ok && dt == t {
			parts[typ] = t
			delete(destinations, typ)
			continue
		}
		parts["source "+typ] = t
	}
	for typ, t := range destinations {
		parts["destination "+typ] = t
	}
	return parts, nil
}

func kindTables(what string, kinds []config.Spec) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range kinds {
		fs, err := config.FieldsOf(k.New())
		if err != nil {
			return nil, fmt.Errorf("reference: %s type %s: %w", what, k.Type, err)
		}
		out[k.Type] = Table(fs)
	}
	return out, nil
}
