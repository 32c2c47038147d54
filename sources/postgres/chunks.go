package postgres

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A snapshot splits every table into chunks before it reads a row, and saves the
// split with its state: chunks are what its readers share out, and a resume reads
// exactly the chunks the interrupted run did not complete, so the split must not
// change between runs (docs/design.md, "Parallel snapshot").

// Ways a table is split.
const (
	splitWhole = ""     // one chunk, in no particular order
	splitKey   = "key"  // ranges of the key, each read in key order
	splitCtid  = "ctid" // ranges of heap pages, each read in page order
)

// maxChunks caps a table's chunks: a plan is saved with the snapshot's state, and a
// chunk is one query.
const maxChunks = 1 << 16

// tablePlan is how a snapshot splits one table. Chunk i covers the keys (or pages)
// from bound i-1 (inclusive) to bound i (exclusive); the first chunk has no lower
// bound and the last no upper one, so the split covers every row whatever the
// snapshot the bounds were taken in.
type tablePlan struct {
	By     string     `json:"by,omitempty"`
	Bounds [][]string `json:"bounds,omitempty"` // splitKey: key column texts in key order
	Pages  []uint32   `json:"pages,omitempty"`  // splitCtid: first heap page of chunks 1..n-1
	// Relfilenode of a ctid split: a table rewritten since (VACUUM FULL, CLUSTER, a
	// type change) has its rows on other pages, so a resume cannot trust the ranges.
	Relfilenode uint32 `json:"relfilenode,omitempty"`
}

func (p tablePlan) chunks() int {
	switch p.By {
	case splitKey:
		return len(p.Bounds) + 1
	case splitCtid:
		return len(p.Pages) + 1
	}
	return 1
}

// chunkBytes bounds a chunk's share of the table's size on disk (TOAST and indexes
// included): a reader holds a whole decoded chunk until its turn to be emitted, so
// tables of large rows get fewer rows per chunk.
const chunkBytes = 64 << 20

// rowsPerChunk is chunkRows, less for a table whose rows average more than
// chunkBytes/chunkRows bytes; at least one.
func rowsPerChunk(rows, size int64, chunkRows uint32) uint32 {
	if rows <= 0 || size <= 0 {
		return chunkRows
	}
	avg := max(size/rows, 1)
	return uint32(max(min(int64(chunkRows), chunkBytes/avg), 1))
}

// chunkCount is how many chunks of chunkRows rows rows make, at least one.
func chunkCount(rows int64, chunkRows uint32) int {
	if rows <= int64(chunkRows) || chunkRows == 0 {
		return 1
	}
	n := (rows + int64(chunkRows) - 1) / int64(chunkRows)
	return int(min(n, maxChunks))
}

// evenIntBounds splits the integers lo..hi into n ranges of equal width and returns
// the first value of ranges 2..n (fewer when the span is narrower than n).
func evenIntBounds(lo, hi int64, n int) []int64 {
	if n <= 1 || hi <= lo {
		return nil
	}
	span := uint64(hi) - uint64(lo) + 1 // in uint64: the span of int64 does not fit an int64
	if span == 0 {                      // the whole int64 range
		span = math.MaxUint64
	}
	if uint64(n) > span {
		n = int(span)
	}
	out := make([]int64, 0, n-1)
	for i := 1; i < n; i++ {
		h, l := bits.Mul64(span, uint64(i))
		q, _ := bits.Div64(h, l, uint64(n))
		b := int64(uint64(lo) + q)
		if len(out) == 0 || b > out[len(out)-1] {
			out = append(out, b)
		}
	}
	return out
}

// sampleBounds picks n-1 bounds from keys sorted in key order, at even quantiles,
// leaving out repeats so that no chunk is empty by construction.
func sampleBounds(sorted [][]string, n int) [][]string {
	if n <= 1 || len(sorted) == 0 {
		return nil
	}
	var out [][]string
	for i := 1; i < n; i++ {
		k := sorted[i*len(sorted)/n]
		if len(out) > 0 && equalKey(out[len(out)-1], k) {
			continue
		}
		if i*len(sorted)/n == 0 {
			continue // the smallest sampled key would leave the first chunk nearly empty
		}
		out = append(out, k)
	}
	return out
}

func equalKey(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pageBounds splits pages heap pages into n ranges and returns the first page of
// ranges 2..n.
func pageBounds(pages uint32, n int) []uint32 {
	if n <= 1 || pages <= 1 {
		return nil
	}
	n = min(n, int(pages))
	out := make([]uint32, 0, n-1)
	for i := 1; i < n; i++ {
		out = append(out, uint32(uint64(pages)*uint64(i)/uint64(n)))
	}
	return out
}

// intKeyTypes are the key types split into even ranges between the smallest and the
// largest key.
var intKeyTypes = map[string]bool{"smallint": true, "integer": true, "bigint": true}

// planTable decides how tb is split into chunks of about chunkRows rows. Its bounds
// may come from outside the snapshot: the open first and last chunk catch any key
// or page beyond them.
func (s *Source) planTable(ctx context.Context, tb *snapTable, chunkRows uint32) (tablePlan, error) {
	rows, err := s.estimateRows(ctx, tb.t)
	if err != nil {
		return tablePlan{}, err
	}
	var size int64
	if err := s.conn.QueryRow(ctx, `SELECT pg_catalog.pg_total_relation_size($1::oid)`, int64(tb.t.oid)).Scan(&size); err != nil {
		return tablePlan{}, classify("read the size of "+tb.t.qualified(), err)
	}
	if c := rowsPerChunk(rows, size, chunkRows); c < chunkRows {
		s.log.Debug("large rows: smaller snapshot chunks", "table", tb.t.qualified(), "chunk_rows", c, "bytes", size, "rows", rows)
		chunkRows = c
	}
	if tb.key != nil {
		return s.planByKey(ctx, tb, rows, chunkRows)
	}
	// Without a key, rows are read in heap order and the last ctid read is where
	// a resume continues; a partitioned table has no heap of its own and a ctid per
	// partition, so it is read in one piece.
	var pages, node int64
	err = s.conn.QueryRow(ctx, `SELECT pg_catalog.pg_relation_size($1::oid) / current_setting('block_size')::int8, c.relfilenode::int8
FROM pg_catalog.pg_class c WHERE c.oid = $1::oid`, int64(tb.t.oid)).Scan(&pages, &node)
	if err != nil {
		return tablePlan{}, classify("read the size of "+tb.t.qualified(), err)
	}
	n := chunkCount(rows, chunkRows)
	if node <= 0 || node > math.MaxUint32 || pages > math.MaxUint32 {
		if n > 1 {
			s.log.Warn("table has no primary key or replica identity index and no heap of its own to split by ctid (a partitioned table): it is read in one chunk, by one reader; a resume inside it reads it again", "table", tb.t.qualified(), "rows", rows)
		}
		return tablePlan{}, nil
	}
	p := tablePlan{By: splitCtid, Relfilenode: uint32(node)}
	if n == 1 {
		return p, nil
	}
	if s.cat.version < 140000 {
		// Before PostgreSQL 14 a ctid range is a filter over the whole table, so n
		// chunks would read it n times.
		s.log.Warn("table has no primary key or replica identity index, and before PostgreSQL 14 it cannot be split by ctid: it is read in one chunk, by one reader", "table", tb.t.qualified(), "rows", rows)
		return p, nil
	}
	p.Pages = pageBounds(uint32(pages), n)
	s.log.Debug("snapshot split by ctid", "table", tb.t.qualified(), "chunks", p.chunks(), "pages", pages, "rows", rows)
	return p, nil
}

func (s *Source) planByKey(ctx context.Context, tb *snapTable, rows int64, chunkRows uint32) (tablePlan, error) {
	p := tablePlan{By: splitKey}
	n := chunkCount(rows, chunkRows)
	cols := make([]string, len(tb.key))
	for j, i := range tb.key {
		cols[j] = pgx.Identifier{tb.sh.schema.Columns[i].Name}.Sanitize()
	}
	if len(tb.key) == 1 && intKeyTypes[tb.sh.schema.Columns[tb.key[0]].SourceType] {
		var lo, hi *int64
		q := fmt.Sprintf("SELECT min(%[1]s)::int8, max(%[1]s)::int8 FROM %[2]s", cols[0], tb.t.ident())
		if err := s.conn.QueryRow(ctx, q).Scan(&lo, &hi); err != nil {
			return p, classify("read the key range of "+tb.t.qualified(), err)
		}
		if lo == nil || hi == nil {
			return p, nil // empty now; the open chunk reads whatever the snapshot holds
		}
		// A dense key needs no estimate; a sparse one splits by the estimate. Keys
		// bunched in part of the range make uneven chunks, which only costs balance.
		if span := uint64(*hi) - uint64(*lo); span < math.MaxInt64 {
			if dense := int64(span) + 1; rows <= 0 || rows > dense {
				rows = dense
			}
		}
		n = chunkCount(rows, chunkRows)
		for _, b := range evenIntBounds(*lo, *hi, n) {
			p.Bounds = append(p.Bounds, []string{strconv.FormatInt(b, 10)})
		}
		s.log.Debug("snapshot split by key range", "table", tb.t.qualified(), "chunks", p.chunks(), "min", *lo, "max", *hi, "rows", rows)
		return p, nil
	}
	if n == 1 {
		return p, nil
	}
	// Other keys: bounds at quantiles of a sample of pages, read in key order. A
	// sample of few pages (a small table) may hold too few keys: then a larger one.
	want := min(int64(n)*32, 200000)
	texts := make([]string, len(cols))
	for j, c := range cols {
		texts[j] = c + "::text"
	}
	var sample [][]string
	for pct := min(100, max(0.0001, 100*float64(want)/float64(rows))); ; pct = min(100, pct*8) {
		var err error
		q := fmt.Sprintf("SELECT %s FROM %s TABLESAMPLE SYSTEM (%g) ORDER BY %s", strings.Join(texts, ", "), tb.t.ident(), pct, strings.Join(cols, ", "))
		if sample, err = s.sampleKeys(ctx, q); err != nil {
			return p, classify("sample the keys of "+tb.t.qualified(), err)
		}
		if int64(len(sample)) >= want/4 || pct >= 100 {
			break
		}
	}
	p.Bounds = sampleBounds(sample, n)
	s.log.Debug("snapshot split by sampled keys", "table", tb.t.qualified(), "chunks", p.chunks(), "sample", len(sample), "rows", rows)
	return p, nil
}

// sampleKeys runs q and returns its rows as text.
func (s *Source) sampleKeys(ctx context.Context, q string) ([][]string, error) {
	res, err := s.conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer res.Close()
	var out [][]string
	for res.Next() {
		raw := res.RawValues()
		k := make([]string, len(raw))
		for j, v := range raw {
			k[j] = string(v)
		}
		out = append(out, k)
	}
	return out, res.Err()
}

var explainRows = regexp.MustCompile(`rows=(\d+)`)

// estimateRows is the planner's estimate of tb's rows: pg_class.reltuples once the
// table was analyzed, else what its size suggests (never-analyzed tables are common
// right after a load).
func (s *Source) estimateRows(ctx context.Context, t table) (int64, error) {
	if t.estimate > 0 {
		return t.estimate, nil
	}
	var plan string
	if err := s.conn.QueryRow(ctx, "EXPLAIN SELECT 1 FROM "+t.ident()).Scan(&plan); err != nil {
		return 0, classify("estimate the rows of "+t.qualified(), err)
	}
	m := explainRows.FindStringSubmatch(plan)
	if m == nil {
		return 0, nil
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n, nil
}

// chunkQuery is the COPY of chunk idx of tb under plan p; after, when not nil, is a
// key the read continues after (a resume inside the chunk). list is the column list.
func chunkQuery(tb *snapTable, p tablePlan, idx int, after []string, list string) string {
	var conds []string
	order := ""
	switch p.By {
	case splitKey:
		keys := make([]string, len(tb.key))
		types := make([]string, len(tb.key))
		for j, i := range tb.key {
			keys[j] = pgx.Identifier{tb.sh.schema.Columns[i].Name}.Sanitize()
			types[j] = tb.sh.schema.Columns[i].SourceType
		}
		tuple := func(vals []string) string {
			lits := make([]string, len(vals))
			for j, v := range vals {
				lits[j] = textLiteral(v) + "::" + types[j]
			}
			return "(" + strings.Join(lits, ", ") + ")"
		}
		k := "(" + strings.Join(keys, ", ") + ")"
		switch {
		case after != nil:
			conds = append(conds, k+" > "+tuple(after))
		case idx > 0 && idx <= len(p.Bounds):
			conds = append(conds, k+" >= "+tuple(p.Bounds[idx-1]))
		}
		if idx < len(p.Bounds) {
			conds = append(conds, k+" < "+tuple(p.Bounds[idx]))
		}
		order = " ORDER BY " + strings.Join(keys, ", ")
	case splitCtid:
		list += ", ctid"
		switch {
		case after != nil:
			conds = append(conds, "ctid > "+textLiteral(after[0])+"::tid")
		case idx > 0 && idx <= len(p.Pages):
			conds = append(conds, fmt.Sprintf("ctid >= '(%d,0)'::tid", p.Pages[idx-1]))
		}
		if idx < len(p.Pages) {
			conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::tid", p.Pages[idx]))
		}
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	return fmt.Sprintf("COPY (SELECT %s FROM %s%s%s) TO STDOUT", list, tb.t.ident(), where, order)
}
