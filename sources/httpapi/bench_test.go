package httpapi

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// BenchmarkPage turns pages of 1,000 decoded records into the envelope's records, as a
// pass does: schema, row, cursor, key, hash and positions.
func BenchmarkPage(b *testing.B) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]map[string]any, 1000)
	for i := range recs {
		recs[i] = map[string]any{
			"id": json.Number(strconv.Itoa(i + 1)), "name": "item " + strconv.Itoa(i+1), "amount": json.Number("12.5"),
			"updated_at": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339), "active": true,
			"tags": []any{"t", "x"}, "customer": map[string]any{"id": json.Number("7"), "tier": "gold"},
		}
	}
	str := &stream{cfg: &Stream{Name: "items", PrimaryKey: []string{"id"}, Flatten: 1}, cursor: &Cursor{Field: "updated_at", Type: "time"}}
	tr, err := str.tracker("bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	w, _ := newWindow(str, &streamState{})
	s := &Source{cfg: &Config{Namespace: "bench"}, status: noStatus{}}
	pr := &passRun{s: s, str: str, round: 1, tracker: tr, w: w, op: record.OpRead,
		emit: func(context.Context, []record.Record) error { return nil }}
	page := &Page{Records: recs, Number: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		pr.w = &window{str: str, seen: map[string]seenRecord{}}
		if err := pr.page(context.Background(), page); err != nil {
			b.Fatal(err)
		}
		pr.flush()
	}
}

type noStatus struct{}

func (noStatus) SetPhase(string)                       {}
func (noStatus) SnapshotProgress(string, int64, int64) {}
func (noStatus) SourceLag(int64, float64)              {}
func (noStatus) SourcePosition(string)                 {}
func (noStatus) SourceRetained(int64, int64)           {}
