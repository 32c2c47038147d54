package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/record"
)

// ReplicaSchema is the source table the replica checks write records of: a bigint
// key, a text column that updates sometimes leave unchanged (as PostgreSQL does with
// a TOASTed value), an exact decimal, and a nullable integer. The fixture's
// destination must keep its replica in a table that ReadReplica reads.
var ReplicaSchema = record.NewSchema("conformance", "replica", []record.Column{
	{Name: "id", SourceType: "bigint", Type: record.Type{Kind: record.KindInt64}, Key: true},
	{Name: "body", SourceType: "text", Type: record.Type{Kind: record.KindString}, Nullable: true},
	{Name: "amount", SourceType: "numeric(12,2)", Type: record.Type{Kind: record.KindDecimal, Precision: 12, Scale: 2}},
	{Name: "qty", SourceType: "integer", Type: record.Type{Kind: record.KindInt32}, Nullable: true},
})

// Indexes of ReplicaSchema's columns; replicaColumns lists the others after the key,
// in the schema's order.
const (
	colID   = 0
	colBody = 1
)

// replicaKeys is how many keys the replica records use: few enough that most keys
// see several records, and that a deleted key comes back.
const replicaKeys = 36

// ReplicaRow is one row of the replica table, its values in the text form the
// target's own cast to text gives (nil for NULL).
type ReplicaRow struct {
	ID     int64
	Body   *string
	Amount *string // numeric(12,2); compared as a decimal of scale 2, so 12.5 equals 12.50
	Qty    *string // integer; compared as an integer
	// Deleted is the row's _deleted mark; always false with hard deletes.
	Deleted bool
}

// replicaColumns are the ReplicaRow fields the checks compare, with how each is
// brought to one form.
var replicaColumns = []struct {
	name  string
	field func(r *ReplicaRow) **string
	norm  func(s string) string
}{
	{"body", func(r *ReplicaRow) **string { return &r.Body }, func(s string) string { return s }},
	{"amount", func(r *ReplicaRow) **string { return &r.Amount }, func(s string) string {
		if b, ok := record.AppendDecimalAt(nil, strings.TrimSpace(s), 2); ok {
			return string(b)
		}
		return s
	}},
	{"qty", func(r *ReplicaRow) **string { return &r.Qty }, func(s string) string {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
		return s
	}},
}

// ReplicaRecords returns n deterministic records of ReplicaSchema for seed, in source
// order, over a few dozen keys: a snapshot of the first keys (r), then inserts,
// updates (some leaving body unchanged: nil in After and named in Unchanged, only
// where the row's body is not NULL, as PostgreSQL sends them), deletes whose Before
// holds only the key, key changes (a delete of the old key and an insert of the new
// at consecutive positions, in one transaction), re-inserts of deleted keys and a
// truncate now and then. Positions strictly increase; a replay writes the same
// records with the same positions again.
func ReplicaRecords(seed uint64, n int) []record.Record {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	base := time.Date(2026, 3, 4, 23, 0, 0, 0, time.UTC)
	recs := make([]record.Record, 0, n)
	tx := 0
	add := func(op record.Op, before, after []record.Value, unchanged []string) {
		i := len(recs)
		var pos [8]byte
		binary.BigEndian.PutUint64(pos[:], uint64(2_000_000+10*i))
		recs = append(recs, record.Record{Op: op, Schema: ReplicaSchema, Before: before, After: after, Unchanged: unchanged,
			Pos: pos[:], CommitTS: base.Add(time.Duration(i) * time.Second), TxID: strconv.Itoa(tx)})
	}
	keyOnly := func(k int64) []record.Value { return []record.Value{k, nil, nil, nil} }
	live := map[int64][]record.Value{} // the source table as the records so far leave it
	snapshot := replicaKeys / 3
	truncated := false
	for len(recs) < n {
		tx++
		i := len(recs)
		if i < snapshot {
			k := int64(i + 1)
			live[k] = replicaRow(rng, k, i)
			add(record.OpRead, nil, slices.Clone(live[k]), nil)
			continue
		}
		// One truncate at the latest halfway, so that every run of a check with a
		// few hundred records has one, and more by chance.
		if i >= 2*snapshot && (rng.IntN(200) == 0 || !truncated && i >= n/2) {
			truncated = true
			add(record.OpTruncate, nil, make([]record.Value, len(ReplicaSchema.Columns)), nil)
			clear(live)
			continue
		}
		k := int64(1 + rng.IntN(replicaKeys))
		row, ok := live[k]
		if !ok {
			live[k] = replicaRow(rng, k, i)
			add(record.OpCreate, nil, slices.Clone(live[k]), nil)
			continue
		}
		p := rng.IntN(100)
		if p < 8 && i+2 <= n {
			if k2, ok := absentKey(rng, live); ok {
				next := replicaRow(rng, k2, i)
				next[colBody] = row[colBody] // the row takes its body along to its new key
				add(record.OpDelete, keyOnly(k), nil, nil)
				add(record.OpCreate, nil, slices.Clone(next), nil)
				delete(live, k)
				live[k2] = next
				continue
			}
		}
		if p < 20 {
			add(record.OpDelete, keyOnly(k), nil, nil)
			delete(live, k)
			continue
		}
		next := replicaRow(rng, k, i)
		after := slices.Clone(next)
		var unchanged []string
		if row[colBody] != nil && rng.IntN(100) < 45 {
			next[colBody], after[colBody], unchanged = row[colBody], nil, []string{"body"}
		}
		live[k] = next
		add(record.OpUpdate, nil, after, unchanged)
	}
	return recs
}

// absentKey picks a key the source table does not hold, for a key change.
func absentKey(rng *rand.Rand, live map[int64][]record.Value) (int64, bool) {
	start := rng.IntN(replicaKeys)
	for j := range replicaKeys {
		k := int64(1 + (start+j)%replicaKeys)
		if _, ok := live[k]; !ok {
			return k, true
		}
	}
	return 0, false
}

// replicaRow is a new image of key k at record i. The values are what loaders get
// wrong: NULL beside an empty string, quotes, backslashes, tabs and newlines, text
// long enough that PostgreSQL would TOAST it, negative and ten-digit decimals, the
// integer limits.
func replicaRow(rng *rand.Rand, k int64, i int) []record.Value {
	var body record.Value
	switch rng.IntN(20) {
	case 0:
		body = nil
	case 1:
		body = ""
	case 2:
		body = strings.Repeat(fmt.Sprintf("k%d r%d ", k, i), 400)
	case 3, 4:
		body = fmt.Sprintf("k%d r%d: it's \"quoted\", back\\slash, naïve, tab\tand\nnewline", k, i)
	default:
		body = fmt.Sprintf("k%d r%d", k, i)
	}
	cents := rng.Int64N(200_000) - 50_000
	if rng.IntN(10) == 0 {
		cents = rng.Int64N(1_000_000_000_000) - 500_000_000_000 // up to ten digits before the point
	}
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	amount := record.Decimal(fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100))
	var qty record.Value
	switch q := rng.IntN(20); {
	case q < 6:
		qty = nil
	case q == 6:
		qty = int32(math.MaxInt32)
	case q == 7:
		qty = int32(math.MinInt32)
	default:
		qty = int32(rng.IntN(2001) - 1000)
	}
	return []record.Value{k, body, amount, qty}
}

// Replica is what a replica table must hold after a sequence of records of
// ReplicaSchema: the model the replica checks compare a destination's table with.
// Inserts and updates set the row of their key, except that a column an update
// names in Unchanged keeps the value the row had; a delete removes the row (hard)
// or marks it deleted with the values it had (soft); a truncate removes every row
// (hard) or marks every row deleted (soft).
type Replica struct {
	// Rows are the rows the table must hold, by key; with soft deletes the deleted
	// ones too, each with the values it had when deleted.
	Rows map[int64]ReplicaRow
	// Truncated are, with soft deletes, the keys a truncate marked deleted and no
	// record brought back. The table may hold each (deleted, with any values) or
	// not: a row written and truncated within one flush never reaches it, and the
	// values a truncated row keeps are those of the last flush before the truncate.
	Truncated map[int64]bool

	soft bool
}

// NewReplica returns the model of an empty replica table; soft says whether deletes
// mark rows instead of removing them.
func NewReplica(soft bool) *Replica {
	return &Replica{Rows: map[int64]ReplicaRow{}, Truncated: map[int64]bool{}, soft: soft}
}

// ReplicaModel returns the model of a replica table that recs were applied to.
func ReplicaModel(recs []record.Record, soft bool) (*Replica, error) {
	m := NewReplica(soft)
	return m, m.Apply(recs...)
}

// Apply applies records in order. It fails on a record of another schema, and on an
// unchanged column of a key that has no row to keep the value from.
func (m *Replica) Apply(recs ...record.Record) error {
	for i := range recs {
		if err := m.apply(&recs[i]); err != nil {
			return fmt.Errorf("record %s at %s: %w", recs[i].Op, recs[i].Pos, err)
		}
	}
	return nil
}

func (m *Replica) apply(r *record.Record) error {
	if r.Schema == nil || r.Schema.Fingerprint() != ReplicaSchema.Fingerprint() {
		return errors.New("not a record of the replica schema")
	}
	if r.Op == record.OpTruncate {
		if m.soft {
			for k := range m.Rows {
				m.Truncated[k] = true
			}
		}
		clear(m.Rows)
		return nil
	}
	img := r.Row()
	if len(img) != len(ReplicaSchema.Columns) {
		return fmt.Errorf("its image has %d values for %d columns", len(img), len(ReplicaSchema.Columns))
	}
	id, ok := img[colID].(int64)
	if !ok {
		return fmt.Errorf("its key is %T, not int64", img[colID])
	}
	old, had := m.Rows[id]
	switch r.Op {
	case record.OpDelete:
		if !m.soft {
			delete(m.Rows, id)
			return nil
		}
		if !had && m.Truncated[id] {
			return nil // deleted either way; its values are the truncate's business
		}
		row := ReplicaRow{ID: id}
		if had {
			row = old
		}
		// What the old image carries is written; what it leaves out the row keeps.
		for c, v := range img[1:] {
			if v != nil {
				s, err := textOf(v)
				if err != nil {
					return fmt.Errorf("column %s: %w", replicaColumns[c].name, err)
				}
				*replicaColumns[c].field(&row) = s
			}
		}
		row.Deleted = true
		m.Rows[id] = row
		return nil
	case record.OpRead, record.OpCreate, record.OpUpdate:
		row := ReplicaRow{ID: id}
		for c, v := range img[1:] {
			name := replicaColumns[c].name
			if slices.Contains(r.Unchanged, name) {
				if !had {
					return fmt.Errorf("column %s is unchanged, but key %d has no row to keep its value from", name, id)
				}
				*replicaColumns[c].field(&row) = *replicaColumns[c].field(&old)
				continue
			}
			s, err := textOf(v)
			if err != nil {
				return fmt.Errorf("column %s: %w", name, err)
			}
			*replicaColumns[c].field(&row) = s
		}
		m.Rows[id] = row
		delete(m.Truncated, id)
		return nil
	}
	return fmt.Errorf("op %q is not one a destination is given", r.Op)
}

// textOf is the text form of a value of the replica schema, normalised as the
// comparison normalises what a target holds.
func textOf(v record.Value) (*string, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		s = x
	case record.Decimal:
		b, ok := record.AppendDecimalAt(nil, string(x), 2)
		if !ok {
			return nil, fmt.Errorf("%q is not a decimal of scale 2", string(x))
		}
		s = string(b)
	default:
		b, ok := record.AppendInteger(nil, v)
		if !ok {
			return nil, fmt.Errorf("a value of type %T", v)
		}
		s = string(b)
	}
	return &s, nil
}

// maxDifferences is how many differing keys an error lists.
const maxDifferences = 5

// Match returns nil when got, the rows a replica table holds, is what the model
// allows, and otherwise an error that names the first few keys that differ, and for
// each the columns.
func (m *Replica) Match(got []ReplicaRow) error {
	problems := map[int64][]string{}
	held := map[int64]int{}
	for _, g := range got {
		if held[g.ID]++; held[g.ID] > 1 {
			continue
		}
		want, ok := m.Rows[g.ID]
		switch {
		case !ok && m.Truncated[g.ID] && g.Deleted:
		case !ok && m.Truncated[g.ID]:
			problems[g.ID] = append(problems[g.ID], "held as a live row, but a truncate deleted it: _deleted is false, want true")
		case !ok && m.soft:
			problems[g.ID] = append(problems[g.ID], "held, but no record wrote the key")
		case !ok:
			problems[g.ID] = append(problems[g.ID], "held, but the key was deleted, truncated or never written")
		default:
			if g.Deleted != want.Deleted {
				problems[g.ID] = append(problems[g.ID], fmt.Sprintf("_deleted is %t, want %t", g.Deleted, want.Deleted))
			}
			for _, c := range replicaColumns {
				have, need := *c.field(&g), *c.field(&want)
				if have == nil && need == nil || have != nil && need != nil && c.norm(*have) == *need {
					continue
				}
				problems[g.ID] = append(problems[g.ID], fmt.Sprintf("column %s is %s, want %s", c.name, show(have), show(need)))
			}
		}
	}
	for id, n := range held {
		if n > 1 {
			problems[id] = append(problems[id], fmt.Sprintf("held %d times", n))
		}
	}
	for id, want := range m.Rows {
		if held[id] == 0 && want.Deleted {
			problems[id] = append(problems[id], "missing: want a row marked deleted")
		} else if held[id] == 0 {
			problems[id] = append(problems[id], "missing")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(problems))
	lines := make([]string, 0, maxDifferences)
	for _, id := range keys[:min(len(keys), maxDifferences)] {
		lines = append(lines, fmt.Sprintf("key %d: %s", id, strings.Join(problems[id], ", ")))
	}
	if len(keys) > len(lines) {
		lines = append(lines, fmt.Sprintf("and %d keys more", len(keys)-len(lines)))
	}
	return fmt.Errorf("the replica differs from the model at %d %s (the model has %d rows, the table %d): %s",
		len(keys), plural(len(keys), "key", "keys"), len(m.Rows), len(got), strings.Join(lines, "; "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// show quotes a text value for an error, cutting a long one.
func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	if n := len(*s); n > 60 {
		return fmt.Sprintf("%q... (%d bytes)", (*s)[:50], n)
	}
	return strconv.Quote(*s)
}
