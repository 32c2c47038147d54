package warehouse

import (
	"fmt"
	"path"
	"strings"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/record"
)

// Mode is how a target table keeps the records of its source table.
type Mode string

const (
	// Merge keeps a replica: one row per key, as the source has it now.
	Merge Mode = "merge"
	// Append keeps every record, with the lake's metadata columns.
	Append Mode = "append"
)

// The metadata columns. Append tables have the lake's five; merge tables _pos (the
// position of the record the row is at, compared so that an older record never
// overwrites a newer one) and _commit_ts, and with soft deletes _deleted and
// _deleted_at.
const (
	ColOp        = "_op"
	ColPos       = "_pos"
	ColCommitTS  = "_commit_ts"
	ColTxID      = "_txid"
	ColUnchanged = "_unchanged"
	ColDeleted   = "_deleted"
	ColDeletedAt = "_deleted_at"
	// OffsetsTable holds each connector's committed position, in the target schema.
	OffsetsTable = "_connectd_offsets"
)

// Rule overrides the mode or the deletes of the source tables it matches.
type Rule struct {
	Match  string `yaml:"match" required:"namespace.table, * allowed: public.audit_*" doc:"The source tables the rule applies to: namespace.table, with * and ? as wildcards." example:"public.events"`
	Mode   string `yaml:"mode" enum:"merge,append" doc:"The mode of these tables (default: the destination's mode)."`
	Delete string `yaml:"delete" enum:"hard,soft" doc:"hard removes a deleted row, soft marks it (default: soft_delete's)."`
}

// Layout says where and how each source table lands.
type Layout struct {
	Schema     string // the target schema
	Table      string // the target table name pattern, with {namespace} and {table}
	Mode       Mode
	SoftDelete bool
	Rules      []Rule // the first that matches wins
}

// Target is where and how one source table lands.
type Target struct {
	Schema, Table string
	Mode          Mode
	SoftDelete    bool
}

// For returns the target of a source table.
func (l Layout) For(namespace, table string) Target {
	t := Target{Schema: l.Schema, Table: l.name(namespace, table), Mode: l.Mode, SoftDelete: l.SoftDelete}
	for _, r := range l.Rules {
		if ok, _ := path.Match(r.Match, namespace+"."+table); !ok {
			continue
		}
		if r.Mode != "" {
			t.Mode = Mode(r.Mode)
		}
		if r.Delete != "" {
			t.SoftDelete = r.Delete == "soft"
		}
		break
	}
	return t
}

func (l Layout) name(namespace, table string) string {
	return strings.NewReplacer("{namespace}", namespace, "{table}", table).Replace(l.Table)
}

// ValidateLayout checks the keys a destination's config shares with every warehouse
// destination: the table pattern (key "table") and the rules (key "tables"). An
// empty pattern is left alone: the loader validates before it applies the defaults,
// and the kind's default pattern then takes its place.
func ValidateLayout(v *config.Validation, table string, rules []Rule) {
	if !v.Set("table") {
		table = "{table}" // the default
	}
	rest := strings.NewReplacer("{namespace}", "", "{table}", "").Replace(table)
	switch {
	case !strings.Contains(table, "{table}"):
		v.Errorf("table", "%q must contain {table}, or every source table would land in one target table", table)
	case strings.ContainsAny(rest, "{}"):
		v.Errorf("table", "%q: only {namespace} and {table} are replaced", table)
	}
	for i, r := range rules {
		if _, err := path.Match(r.Match, ""); err != nil || !strings.Contains(r.Match, ".") {
			v.Errorf(fmt.Sprintf("tables[%d].match", i), "%q is not namespace.table (with * and ? as wildcards)", r.Match)
		}
	}
}

// metaColumns are the metadata columns of a target table in mode m.
func metaColumns(m Mode, soft bool) []LoadColumn {
	text := record.Type{Kind: record.KindString}
	ts := record.Type{Kind: record.KindTimestampTZ}
	if m == Append {
		return []LoadColumn{{ColOp, text}, {ColPos, text}, {ColCommitTS, ts}, {ColTxID, text},
			{ColUnchanged, record.Type{Kind: record.KindList, Elem: &text}}}
	}
	cols := []LoadColumn{{ColPos, text}, {ColCommitTS, ts}}
	if soft {
		cols = append(cols, LoadColumn{ColDeleted, record.Type{Kind: record.KindBool}}, LoadColumn{ColDeletedAt, ts})
	}
	return cols
}

// isMeta reports whether name is a metadata column, which a source column may not shadow.
func isMeta(name string) bool {
	switch name {
	case ColOp, ColPos, ColCommitTS, ColTxID, ColUnchanged, ColDeleted, ColDeletedAt:
		return true
	}
	return false
}
