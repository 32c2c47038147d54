package config

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// The loader walks goccy's syntax tree itself rather than decoding into the structs:
// that is what lets it report every problem (not just the first) with its line and key
// path, reject unknown keys with a suggestion, and pick a section's keys by its type.

// maxExpansion bounds how many nodes alias expansion may produce in free-form plugin
// config, so a "billion laughs" file fails instead of exhausting memory.
const maxExpansion = 100000

type decoder struct {
	file    string
	dir     string // the config file's directory, for relative *_file paths
	errs    Errors
	aliases map[*ast.AliasNode]ast.Node
	budget  int
	keys    map[string][2]int // line and column of each key decoded (markKey)
	kinds   Kinds
}

// entry is one key of a mapping, with the merge keys (<<) already applied.
type entry struct {
	key   string
	line  int
	col   int
	value ast.Node
}

// field decodes one allowed key of a section.
type field struct {
	name   string
	decode func(e entry, path string)
}

func (d *decoder) errorf(line, col int, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func pos(n ast.Node) (line, col int) {
	if n == nil {
		return 0, 0
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

// collectAliases resolves every alias to the node of the anchor defined before it, in
// document order. An anchor is registered only after its own value has been walked, so
// an alias can never point into itself and the graph stays acyclic.
func (d *decoder) collectAliases(n ast.Node, anchors map[string]ast.Node) {
	switch v := n.(type) {
	case nil:
	case *ast.AnchorNode:
		d.collectAliases(v.Value, anchors)
		if v.Name != nil {
			anchors[v.Name.GetToken().Value] = v.Value
		}
	case *ast.AliasNode:
		name := ""
		if v.Value != nil {
			name = v.Value.GetToken().Value
		}
		if target, ok := anchors[name]; ok {
			d.aliases[v] = target
		} else {
			line, col := pos(v)
			d.errorf(line, col, "", "alias *%s refers to no anchor defined before it", name)
		}
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.collectAliases(mv, anchors)
		}
	case *ast.MappingValueNode:
		d.collectAliases(v.Key, anchors)
		d.collectAliases(v.Value, anchors)
	case *ast.SequenceNode:
		for _, x := range v.Values {
			d.collectAliases(x, anchors)
		}
	case *ast.TagNode:
		d.collectAliases(v.Value, anchors)
	}
}

// resolve looks through anchors, aliases and tags to the node that holds the value.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for i := 0; i < 1000; i++ {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.AliasNode:
			n = d.aliases[v] // nil for an unknown alias, already reported
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
	return nil
}

func kindOf(n ast.Node) string {
	switch n.(type) {
	case nil, *ast.NullNode:
		return "nothing"
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	default:
		return "a string"
	}
}

func isNull(n ast.Node) bool {
	switch n.(type) {
	case nil, *ast.NullNode:
		return true
	}
	return false
}

// mapping returns a mapping's entries in file order. Null counts as an empty mapping
// (`server:` with nothing under it). ok is false, with the error reported, when the
// node is something else.
func (d *decoder) mapping(n ast.Node, path string, line int) ([]entry, bool) {
	r := d.resolve(n)
	if isNull(r) {
		return nil, true
	}
	m, ok := r.(*ast.MappingNode)
	if !ok {
		if l, _ := pos(n); l > 0 {
			line = l
		}
		d.errorf(line, 0, path, "must be a mapping of keys to values, got %s", kindOf(r))
		return nil, false
	}
	var entries, merged []entry
	seen := map[string]bool{}
	for _, mv := range m.Values {
		if mv.Key == nil {
			continue
		}
		kl, kc := pos(mv.Key)
		if mv.Key.IsMergeKey() {
			merged = append(merged, d.mergeSource(mv.Value, path, kl)...)
			continue
		}
		key, ok := d.keyText(mv.Key)
		if !ok {
			d.errorf(kl, kc, path, "keys must be plain strings")
			continue
		}
		seen[key] = true
		entries = append(entries, entry{key: key, line: kl, col: kc, value: mv.Value})
	}
	// YAML merge keys: explicit keys win over merged ones, earlier merged ones over later.
	for _, e := range merged {
		if !seen[e.key] {
			seen[e.key] = true
			entries = append(entries, e)
		}
	}
	return entries, true
}

func (d *decoder) mergeSource(n ast.Node, path string, line int) []entry {
	r := d.resolve(n)
	if s, ok := r.(*ast.SequenceNode); ok {
		var out []entry
		for _, x := range s.Values {
			es, _ := d.mapping(x, path, line)
			out = append(out, es...)
		}
		return out
	}
	es, _ := d.mapping(n, path, line)
	return es
}

func (d *decoder) keyText(k ast.Node) (string, bool) {
	switch v := d.resolve(k).(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.MappingKeyNode:
		return d.keyText(v.Value)
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return v.GetToken().Value, true
	}
	return "", false
}

// fields decodes entries against the allowed keys. foreign names keys that belong to
// another type of the same section, for a more useful message than "unknown key".
func (d *decoder) fields(entries []entry, path string, fs []field, foreign map[string]string, what string) {
	byName := make(map[string]field, len(fs))
	names := make([]string, 0, len(fs))
	for _, f := range fs {
		byName[f.name] = f
		names = append(names, f.name)
	}
	for _, e := range entries {
		p := joinPath(path, e.key)
		f, ok := byName[e.key]
		if !ok {
			if other, isForeign := foreign[e.key]; isForeign {
				d.errorf(e.line, e.col, p, "unknown key for %s (it belongs to type %s)", what, other)
			} else if s := suggest(e.key, names); s != "" {
				d.errorf(e.line, e.col, p, "unknown key (did you mean %q?)", s)
			} else {
				sort.Strings(names)
				d.errorf(e.line, e.col, p, "unknown key (known keys: %s)", strings.Join(names, ", "))
			}
			continue
		}
		f.decode(e, p)
	}
}

// scalar returns a scalar's text as the user wrote it: `password: 12345` is the string
// "12345", not a number. Null gives "".
func (d *decoder) scalar(e entry, path string) (string, bool) {
	switch v := d.resolve(e.value).(type) {
	case nil, *ast.NullNode:
		return "", true
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value, true
		}
		return "", true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	default:
		d.errorf(e.line, e.col, path, "must be a single value, got %s", kindOf(v))
		return "", false
	}
}

func (d *decoder) str(dst *string) func(entry, string) {
	return func(e entry, path string) {
		if s, ok := d.scalar(e, path); ok {
			*dst = s
		}
	}
}

func (d *decoder) integer(e entry, path string) (int64, bool) {
	r := d.resolve(e.value)
	if n, ok := r.(*ast.IntegerNode); ok {
		switch v := n.GetValue().(type) {
		case int64:
			return v, true
		case uint64:
			if v > math.MaxInt64 {
				d.errorf(e.line, e.col, path, "%d is too large", v)
				return 0, false
			}
			return int64(v), true
		}
	}
	s, ok := d.scalar(e, path)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil {
		d.errorf(e.line, e.col, path, "must be a whole number, got %q", s)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(dst *bool) func(entry, string) {
	return func(e entry, path string) {
		s, ok := d.scalar(e, path)
		if !ok {
			return
		}
		switch strings.ToLower(s) {
		case "true", "yes", "on":
			*dst = true
		case "false", "no", "off", "":
			*dst = false
		default:
			d.errorf(e.line, e.col, path, "must be true or false, got %q", s)
		}
	}
}

func (d *decoder) duration(e entry, path string) (time.Duration, bool) {
	s, ok := d.scalar(e, path)
	if !ok {
		return 0, false
	}
	if s == "" {
		return 0, true
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.errorf(e.line, e.col, path, "must be a duration such as 30s, 5m or 1h30m, got %q", s)
		return 0, false
	}
	if v < 0 {
		d.errorf(e.line, e.col, path, "must not be negative")
		return 0, false
	}
	return v, true
}

func (d *decoder) size(e entry, path string) (Size, bool) {
	s, ok := d.scalar(e, path)
	if !ok {
		return 0, false
	}
	v, err := ParseSize(s)
	if err != nil {
		d.errorf(e.line, e.col, path, "must be a size such as 128MiB, 64KB or 1048576, got %q", s)
		return 0, false
	}
	return v, true
}

// stringList decodes a list of strings; each item is reported by its own line.
func (d *decoder) stringList(e entry, path string) ([]string, []int, bool) {
	r := d.resolve(e.value)
	if isNull(r) {
		return nil, nil, true
	}
	seq, ok := r.(*ast.SequenceNode)
	if !ok {
		d.errorf(e.line, e.col, path, "must be a list, e.g. [public.orders], got %s", kindOf(r))
		return nil, nil, false
	}
	out := make([]string, 0, len(seq.Values))
	lines := make([]int, 0, len(seq.Values))
	for i, x := range seq.Values {
		l, c := pos(x)
		if l == 0 {
			l, c = e.line, e.col
		}
		s, ok := d.scalar(entry{key: e.key, line: l, col: c, value: x}, fmt.Sprintf("%s[%d]", path, i))
		if !ok {
			continue
		}
		out = append(out, s)
		lines = append(lines, l)
	}
	return out, lines, true
}

// anyValue converts free-form YAML (plugin config) into maps, slices and scalars.
func (d *decoder) anyValue(n ast.Node, path string) any {
	if !d.spend(n, path) {
		return nil
	}
	switch v := d.resolve(n).(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode:
		es, _ := d.mapping(v, path, 0)
		m := make(map[string]any, len(es))
		for _, e := range es {
			m[e.key] = d.anyValue(e.value, joinPath(path, e.key))
		}
		return m
	case *ast.SequenceNode:
		s := make([]any, 0, len(v.Values))
		for i, x := range v.Values {
			s = append(s, d.anyValue(x, fmt.Sprintf("%s[%d]", path, i)))
		}
		return s
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value
		}
		return ""
	case ast.ScalarNode:
		return v.GetValue()
	default:
		line, col := pos(n)
		d.errorf(line, col, path, "unsupported YAML value %s", kindOf(v))
		return nil
	}
}

// spend counts one value decoded against the budget of alias expansion; false means
// the budget is spent (reported once) and the value must be skipped.
func (d *decoder) spend(n ast.Node, path string) bool {
	d.budget--
	if d.budget == 0 {
		line, col := pos(n)
		d.errorf(line, col, path, "too many values (more than %d after expanding aliases)", maxExpansion)
	}
	return d.budget > 0
}

// suggest returns the known name closest to key when it is close enough to be a typo.
func suggest(key string, names []string) string {
	best, bestDist := "", len(key)/3+1
	if bestDist > 3 {
		bestDist = 3
	}
	for _, n := range names {
		if dist := levenshtein(key, n); dist <= bestDist && (best == "" || dist < levenshtein(key, best)) {
			best = n
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// markKey remembers where a key was written, for errors found after decoding.
func (d *decoder) markKey(e entry, path string) {
	if d.keys == nil {
		d.keys = map[string][2]int{}
	}
	d.keys[path] = [2]int{e.line, e.col}
}
