package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is one verify run over a connector's tables.
type Report struct {
	Connector string `json:"connector"`
	// Position is the committed offset the run verified at.
	Position string `json:"position"`
	// Boundary is the source snapshot's boundary, in the source's terms.
	Boundary string         `json:"boundary"`
	Tables   []*TableReport `json:"tables"`
}

// Equal reports whether every table is equal.
func (r *Report) Equal() bool {
	for _, t := range r.Tables {
		if !t.Equal() {
			return false
		}
	}
	return true
}

// TableReport is the comparison of one table. Counts are exact for the keys sampled;
// Examples lists the first of them.
type TableReport struct {
	Table           string `json:"table"` // namespace.table
	Where           string `json:"where"` // where the destination holds the table
	SourceRows      int64  `json:"source_rows"`
	DestRows        int64  `json:"destination_rows"` // keys live in the rebuilt state
	Ranges          int    `json:"ranges"`
	RangesDiffering int    `json:"ranges_differing"`
	Missing         int64  `json:"missing"`   // keys in the source, not in the destination
	Extra           int64  `json:"extra"`     // keys in the destination, not in the source
	Differing       int64  `json:"differing"` // keys in both with a differing column
	// DuplicatePositions counts stored records whose position another stored record has too.
	DuplicatePositions int64 `json:"duplicate_positions"`
	// Unresolved counts keys whose state has an unchanged column with no earlier value.
	Unresolved int64   `json:"unresolved"`
	Sample     float64 `json:"sample_percent"`
	// Method is how the source side was read: "digest" (its server digested the
	// ranges and only differing ones were read) or "rows"; MethodNote says why rows.
	Method         string        `json:"method"`
	MethodNote     string        `json:"method_note,omitempty"`
	Examples       []KeyDiff     `json:"examples"`
	Elapsed        time.Duration `json:"-"`
	ElapsedSeconds float64       `json:"elapsed_seconds"`
}

// Equal reports whether the table showed no difference of any kind.
func (r *TableReport) Equal() bool {
	return r.Missing == 0 && r.Extra == 0 && r.Differing == 0 && r.DuplicatePositions == 0 && r.Unresolved == 0
}

// The kinds of KeyDiff.
const (
	DiffMissing           = "missing"
	DiffExtra             = "extra"
	DiffDiffers           = "differs"
	DiffDuplicatePosition = "duplicate_position"
	DiffUnresolved        = "unresolved"
)

// KeyDiff is one key that differs.
type KeyDiff struct {
	Kind    string        `json:"kind"` // missing, extra, differs, duplicate_position, unresolved
	Key     []ColumnValue `json:"key"`
	Columns []ColumnDiff  `json:"columns,omitempty"` // the first (at most 5) differing columns
	Where   string        `json:"where,omitempty"`   // where the destination's latest record of the key is
	// Position is the duplicated position, in hex (duplicate_position only).
	Position string `json:"position,omitempty"`
}

// keyText renders the key as column=value pairs joined by sep.
func (d *KeyDiff) keyText(sep string) string {
	parts := make([]string, len(d.Key))
	for i, k := range d.Key {
		parts[i] = k.Column + "=" + k.Value
	}
	return strings.Join(parts, sep)
}

// Summary is the difference on one line, for logs: "extra id=7", "differs a=1,b=x
// (note,v)" (the differing columns' names, not their values).
func (d *KeyDiff) Summary() string {
	s := d.Kind + " " + d.keyText(",")
	if len(d.Columns) > 0 {
		names := make([]string, len(d.Columns))
		for i, c := range d.Columns {
			names[i] = c.Column
		}
		s += " (" + strings.Join(names, ",") + ")"
	}
	return s
}

// ColumnValue is one column of a key, rendered.
type ColumnValue struct {
	Column string `json:"column"`
	Value  string `json:"value"`
}

// ColumnDiff is one column whose values differ, rendered.
type ColumnDiff struct {
	Column      string `json:"column"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("verify: write report: %w", err)
	}
	return nil
}

// WriteText writes the report for a reader: per table a line of counts and its
// examples indented below it, then "equal" or "NOT EQUAL: " and what differs.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Connector != "" || r.Position != "" || r.Boundary != "" {
		fmt.Fprintf(&b, "connector %s  position %s  boundary %s\n", r.Connector, r.Position, r.Boundary)
	}
	var sum TableReport
	unequal := 0
	for _, t := range r.Tables {
		status := "equal"
		if !t.Equal() {
			status = "DIFFERS"
			unequal++
		}
		fmt.Fprintf(&b, "%s: %s  source %d  destination %d  missing %d  extra %d  differing %d",
			t.Table, status, t.SourceRows, t.DestRows, t.Missing, t.Extra, t.Differing)
		if t.DuplicatePositions > 0 {
			fmt.Fprintf(&b, "  duplicate positions %d", t.DuplicatePositions)
		}
		if t.Unresolved > 0 {
			fmt.Fprintf(&b, "  unresolved %d", t.Unresolved)
		}
		fmt.Fprintf(&b, "  ranges %d (%d differing)", t.Ranges, t.RangesDiffering)
		if t.Method != "" {
			fmt.Fprintf(&b, "  by %s", t.Method)
		}
		if t.Sample > 0 && t.Sample < 100 {
			fmt.Fprintf(&b, "  sample %g%%", t.Sample)
		}
		fmt.Fprintf(&b, "  %.1fs  %s\n", t.Elapsed.Seconds(), t.Where)
		for _, e := range t.Examples {
			writeExample(&b, &e)
		}
		sum.Missing += t.Missing
		sum.Extra += t.Extra
		sum.Differing += t.Differing
		sum.DuplicatePositions += t.DuplicatePositions
		sum.Unresolved += t.Unresolved
	}
	if unequal == 0 {
		fmt.Fprintf(&b, "equal (%d tables)\n", len(r.Tables))
	} else {
		fmt.Fprintf(&b, "NOT EQUAL: %d of %d tables differ: missing %d, extra %d, differing %d, duplicate positions %d, unresolved %d\n",
			unequal, len(r.Tables), sum.Missing, sum.Extra, sum.Differing, sum.DuplicatePositions, sum.Unresolved)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("verify: write report: %w", err)
	}
	return nil
}

func writeExample(b *strings.Builder, e *KeyDiff) {
	fmt.Fprintf(b, "    %-18s %s", e.Kind, e.keyText(", "))
	if e.Position != "" {
		fmt.Fprintf(b, "  position %s", e.Position)
	}
	if e.Where != "" {
		fmt.Fprintf(b, "  in %s", e.Where)
	}
	b.WriteByte('\n')
	for _, c := range e.Columns {
		fmt.Fprintf(b, "        %s: source %s, destination %s\n", c.Column, c.Source, c.Destination)
	}
}
