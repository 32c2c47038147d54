package connector

import (
	"fmt"
	"sort"
)

// Registry maps type names to connector kinds. cmd fills one at start-up; it is not
// safe for concurrent writes.
type Registry struct {
	sources      map[string]SourceKind
	destinations map[string]DestinationKind
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sources: map[string]SourceKind{}, destinations: map[string]DestinationKind{}}
}

// AddSource registers a source kind under its type name.
func (r *Registry) AddSource(typ string, k SourceKind) { r.sources[typ] = k }

// AddDestination registers a destination kind under its type name.
func (r *Registry) AddDestination(typ string, k DestinationKind) { r.destinations[typ] = k }

// Source returns the source kind of a type name.
func (r *Registry) Source(typ string) (SourceKind, error) {
	k, ok := r.sources[typ]
	if !ok {
		return nil, fmt.Errorf("unknown source type %q (known: %v)", typ, keys(r.sources))
	}
	return k, nil
}

// Destination returns the destination kind of a type name.
func (r *Registry) Destination(typ string) (DestinationKind, error) {
	k, ok := r.destinations[typ]
	if !ok {
		return nil, fmt.Errorf("unknown destination type %q (known: %v)", typ, keys(r.destinations))
	}
	return k, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
