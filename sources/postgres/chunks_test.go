package postgres

import (
	"reflect"
	"strings"
	"testing"

	"github.com/connectd/connectd/record"
)

func TestChunkCountRoundsUpAndCaps(t *testing.T) {
	cases := []struct {
		rows int64
		per  uint32
		want int
	}{
		{0, 100, 1}, {-1, 100, 1}, {100, 100, 1}, {101, 100, 2}, {1000, 100, 10},
		{1 << 40, 1, maxChunks},
	}
	for _, c := range cases {
		if got := chunkCount(c.rows, c.per); got != c.want {
			t.Errorf("chunkCount(%d, %d) = %d, want %d", c.rows, c.per, got, c.want)
		}
	}
}

func TestEvenIntBoundsSplitTheRangeEvenly(t *testing.T) {
	cases := []struct {
		lo, hi int64
		n      int
		want   []int64
	}{
		{1, 100, 4, []int64{26, 51, 76}},
		{1, 100, 1, nil},
		{5, 5, 3, nil},
		{-10, 9, 2, []int64{0}},
		{1, 3, 10, []int64{2, 3}},             // narrower than n: one key per chunk
		{-1 << 63, 1<<63 - 1, 2, []int64{-1}}, // 2^64 keys taken as 2^64-1: off by one
	}
	for _, c := range cases {
		got := evenIntBounds(c.lo, c.hi, c.n)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("evenIntBounds(%d, %d, %d) = %v, want %v", c.lo, c.hi, c.n, got, c.want)
		}
	}
	// Strictly increasing and inside the range for awkward spans.
	for _, n := range []int{2, 3, 7, 1000} {
		b := evenIntBounds(-7, 1<<62, n)
		if len(b) != n-1 {
			t.Errorf("n=%d: %d bounds", n, len(b))
		}
		for i := range b {
			if b[i] <= -7 || (i > 0 && b[i] <= b[i-1]) {
				t.Fatalf("n=%d: bounds not increasing inside the range: %v", n, b)
			}
		}
	}
}

func TestSampleBoundsTakeQuantilesWithoutRepeats(t *testing.T) {
	var sorted [][]string
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		sorted = append(sorted, []string{k, "1"})
	}
	if got, want := sampleBounds(sorted, 4), [][]string{{"c", "1"}, {"e", "1"}, {"g", "1"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("sampleBounds = %v, want %v", got, want)
	}
	same := [][]string{{"x"}, {"x"}, {"x"}, {"x"}, {"y"}, {"y"}}
	if got, want := sampleBounds(same, 3), [][]string{{"x"}, {"y"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("sampleBounds of repeated keys = %v, want %v", got, want)
	}
	if got := sampleBounds(nil, 5); got != nil {
		t.Errorf("sampleBounds of an empty sample = %v, want none (one chunk)", got)
	}
	if got := sampleBounds([][]string{{"a"}}, 5); got != nil {
		t.Errorf("sampleBounds of one key = %v, want none", got)
	}
}

func TestPageBoundsSplitPages(t *testing.T) {
	if got, want := pageBounds(100, 4), []uint32{25, 50, 75}; !reflect.DeepEqual(got, want) {
		t.Errorf("pageBounds(100, 4) = %v, want %v", got, want)
	}
	if got, want := pageBounds(3, 10), []uint32{1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("pageBounds(3, 10) = %v, want %v", got, want)
	}
	if got := pageBounds(1, 10); got != nil {
		t.Errorf("pageBounds(1, 10) = %v, want one chunk", got)
	}
}

func TestChunkQueryBoundsEachChunk(t *testing.T) {
	tb := &snapTable{t: table{schema: "public", name: "t"}, sh: &tableShape{schema: &record.Schema{Columns: []record.Column{
		{Name: "a", SourceType: "integer"}, {Name: "b", SourceType: "text"}, {Name: "v", SourceType: "text"},
	}}}, key: []int{0, 1}}
	p := tablePlan{By: splitKey, Bounds: [][]string{{"10", "x"}, {"20", "it's"}}}
	list := `"a", "b", "v"`
	cases := []struct {
		idx   int
		after []string
		want  string
	}{
		{0, nil, `WHERE ("a", "b") < (E'10'::integer, E'x'::text) ORDER BY "a", "b"`},
		{1, nil, `WHERE ("a", "b") >= (E'10'::integer, E'x'::text) AND ("a", "b") < (E'20'::integer, E'it''s'::text) ORDER BY "a", "b"`},
		{2, nil, `WHERE ("a", "b") >= (E'20'::integer, E'it''s'::text) ORDER BY "a", "b"`},
		{1, []string{"15", `a\b`}, `WHERE ("a", "b") > (E'15'::integer, E'a\\b'::text) AND ("a", "b") < (E'20'::integer, E'it''s'::text) ORDER BY "a", "b"`},
	}
	for _, c := range cases {
		got := chunkQuery(tb, p, c.idx, c.after, list)
		want := `COPY (SELECT "a", "b", "v" FROM "public"."t" ` + c.want + `) TO STDOUT`
		if got != want {
			t.Errorf("chunk %d after %v:\n got %s\nwant %s", c.idx, c.after, got, want)
		}
	}
	ctid := tablePlan{By: splitCtid, Pages: []uint32{100, 200}}
	for idx, want := range []string{
		`WHERE ctid < '(100,0)'::tid)`,
		`WHERE ctid >= '(100,0)'::tid AND ctid < '(200,0)'::tid)`,
		`WHERE ctid >= '(200,0)'::tid)`,
	} {
		if got := chunkQuery(tb, ctid, idx, nil, list); !strings.HasSuffix(got, want+" TO STDOUT") {
			t.Errorf("ctid chunk %d: %s, want it to end in %s", idx, got, want)
		}
	}
	if got := chunkQuery(tb, tablePlan{}, 0, nil, list); got != `COPY (SELECT "a", "b", "v" FROM "public"."t") TO STDOUT` {
		t.Errorf("whole table: %s", got)
	}
}

func TestRowsPerChunkShrinksForLargeRows(t *testing.T) {
	for _, c := range []struct {
		rows, size  int64
		chunk, want uint32
	}{
		{1_000_000, 200 << 20, 20000, 20000}, // 200 bytes a row: as configured
		{24, 300 << 20, 20000, 5},            // 12.5 MiB a row: 64 MiB a chunk
		{10, 10 << 30, 20000, 1},             // 1 GiB a row: one row a chunk
		{0, 1 << 30, 20000, 20000},           // no estimate: as configured
	} {
		if got := rowsPerChunk(c.rows, c.size, c.chunk); got != c.want {
			t.Errorf("rowsPerChunk(%d rows, %d bytes, %d) = %d, want %d", c.rows, c.size, c.chunk, got, c.want)
		}
	}
}
