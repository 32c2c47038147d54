package connector

import (
	"fmt"
	"sort"

	"github.com/connectd/connectd/config"
)

var _ config.Kinds = (*Registry)(nil)

// Registry maps type names to connector kinds, and keeps them in the order they were
// added (the order the config loader and the reference list them in). connector/builtin
// fills one with the kinds compiled in; it is not safe for concurrent writes. It
// implements config.Kinds, so the loader decodes each section into its kind's struct.
type Registry struct {
	sources      map[string]SourceKind
	destinations map[string]DestinationKind
	sourceOrder  []string
	destOrder    []string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sources: map[string]SourceKind{}, destinations: map[string]DestinationKind{}}
}

// AddSource registers a source kind under its type name.
func (r *Registry) AddSource(typ string, k SourceKind) {
	if _, ok := r.sources[typ]; !ok {
		r.sourceOrder = append(r.sourceOrder, typ)
	}
	r.sources[typ] = k
}

// AddDestination registers a destination kind under its type name.
func (r *Registry) AddDestination(typ string, k DestinationKind) {
	if _, ok := r.destinations[typ]; !ok {
		r.destOrder = append(r.destOrder, typ)
	}
	r.destinations[typ] = k
}

// SourceTypes lists the source types in the order they were added.
func (r *Registry) SourceTypes() []string { return append([]string(nil), r.sourceOrder...) }

// DestinationTypes lists the destination types in the order they were added.
func (r *Registry) DestinationTypes() []string { return append([]string(nil), r.destOrder...) }

// SourceSpec returns the config spec of a source type.
func (r *Registry) SourceSpec(typ string) (config.Spec, bool) {
	k, ok := r.sources[typ]
	if !ok {
		return config.Spec{}, false
	}
	return k.ConfigSpec(), true
}

// DestinationSpec returns the config spec of a destination type.
func (r *Registry) DestinationSpec(typ string) (config.Spec, bool) {
	k, ok := r.destinations[typ]
	if !ok {
		return config.Spec{}, false
	}
	return k.ConfigSpec(), true
}

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
