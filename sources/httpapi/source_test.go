package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/record"
)

// syncOnce runs one sync of a source over api from start and returns what it emitted.
func syncOnce(t *testing.T, cfg *Config, state connector.StateStore, start record.Position) ([]record.Record, error) {
	t.Helper()
	src, err := Kind{}.Open(context.Background(), connector.SourceParams{Name: "t", Config: config.Source{Type: "http", Config: cfg},
		Mode: connector.ModeSync, State: state})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	var out []record.Record
	err = src.Read(context.Background(), start, func(_ context.Context, b []record.Record) error {
		out = append(out, b...)
		return nil
	})
	return out, err
}

func memConfig(url string) *Config {
	return &Config{Namespace: "api", BaseURL: url, Interval: time.Second, Streams: []Stream{{
		Name: "rows", URL: "/rows", Params: map[string]string{"since": "{{ cursor }}", "limit": "20"}, Records: "/data",
		PrimaryKey: []string{"id"}, Cursor: Cursor{Field: "updated_at", Type: "int"}, Pagination: Pagination{Type: "link_header"},
	}}}
}

func data(recs []record.Record) (n int, last record.Position) {
	for _, r := range recs {
		if r.Op != record.OpCheckpoint {
			n++
		}
		last = r.Pos
	}
	return n, last
}

// Records of the highest cursor value are asked for again by the next round and
// dropped, while new records of that same value are delivered: nothing skipped,
// nothing twice.
func TestEqualCursorValuesAcrossRoundsAreNeitherSkippedNorDoubled(t *testing.T) {
	api := &memAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	store, err := offsets.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	state := store.State("t")
	api.add(41) // cursors 1..21, the last value held by one row
	recs, err := syncOnce(t, memConfig(srv.URL), state, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, last := data(recs)
	if n != 41 {
		t.Fatalf("first round: %d records, want 41", n)
	}
	api.add(1) // row 42: cursor 21 again, the highest value delivered
	recs, err = syncOnce(t, memConfig(srv.URL), state, last)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := data(recs); n != 1 || recs[0].After[0] != int64(42) || recs[0].Op != record.OpUpdate {
		t.Fatalf("second round: %d records (%v), want row 42 once as an update", n, recs)
	}
}

// An API that returns a cursor lower than one before it stops the source for good,
// saying how to fix it.
func TestCursorGoingBackFailsWithTheFix(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data": [{"id": 1, "updated_at": 5}, {"id": 2, "updated_at": 3}]}`))
	}))
	defer srv.Close()
	store, _ := offsets.NewFile(t.TempDir())
	_, err := syncOnce(t, memConfig(srv.URL), store.State("t"), nil)
	if err == nil || !connector.IsPermanent(err) || !strings.Contains(err.Error(), "ascending order of updated_at") {
		t.Fatalf("error %v, want a permanent one asking for ascending order", err)
	}
}

func TestWindowsCoverTheCursorToNow(t *testing.T) {
	str := &stream{cfg: &Stream{Name: "w"}, cursor: &Cursor{Field: "t", Type: "time", Start: "2026-01-01T00:00:00Z", Window: 24 * time.Hour}}
	w, err := newWindow(str, &streamState{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)
	vs, err := w.windows(now)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"}, {"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"}, {"2026-01-03T00:00:00Z", "2026-01-03T12:00:00Z"}}
	if len(vs) != len(want) {
		t.Fatalf("windows %v", vs)
	}
	for i, v := range vs {
		if v.WindowStart != want[i][0] || v.WindowEnd != want[i][1] {
			t.Errorf("window %d: %s..%s, want %s..%s", i, v.WindowStart, v.WindowEnd, want[i][0], want[i][1])
		}
	}
}

// A lookback asks from before the highest cursor and drops what it delivered there
// already, by key and content; a record changed within the lookback comes again.
func TestLookbackDropsWhatWasDelivered(t *testing.T) {
	str := &stream{cfg: &Stream{Name: "l"}, cursor: &Cursor{Field: "t", Type: "time", Lookback: time.Minute}}
	w, err := newWindow(str, &streamState{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) cursorValue {
		cv, err := parseCursor("time", s)
		if err != nil {
			t.Fatal(err)
		}
		return cv
	}
	w.delivered([]byte(`[1]`), 11, at("2026-01-01T00:00:00Z"), true)
	w.delivered([]byte(`[2]`), 22, at("2026-01-01T00:09:30Z"), true)
	w.delivered([]byte(`[3]`), 33, at("2026-01-01T00:10:00Z"), true)
	end := w.end()
	if end.Cursor != "2026-01-01T00:10:00Z" || len(end.Seen) != 2 {
		t.Fatalf("end state %+v: want the cursor and the two records within a minute of it", end)
	}
	next, err := newWindow(str, end)
	if err != nil {
		t.Fatal(err)
	}
	if got := next.requestCursor(); got != "2026-01-01T00:09:00Z" {
		t.Errorf("the next pass asks from %s, want a minute before the cursor", got)
	}
	if next.wanted([]byte(`[2]`), 22, at("2026-01-01T00:09:30Z")) {
		t.Error("record 2, unchanged, came again")
	}
	if !next.wanted([]byte(`[2]`), 23, at("2026-01-01T00:09:30Z")) {
		t.Error("record 2, changed within the lookback, was dropped")
	}
	if next.wanted([]byte(`[1]`), 11, at("2026-01-01T00:00:00Z")) {
		t.Error("record 1, below the lookback, came again")
	}
}

func TestContentHashIsTheJSONContent(t *testing.T) {
	dec := func(s string) any {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var h contentHasher
	contentHash := h.sum
	same := [][2]string{
		{`{"a": 1, "b": [true, null, "x"]}`, `{"b":[true,null,"x"],"a":1}`},
		{`{"o": {"y": 2, "x": 1}}`, `{"o": {"x": 1, "y": 2}}`},
	}
	for _, p := range same {
		if contentHash(dec(p[0])) != contentHash(dec(p[1])) {
			t.Errorf("%s and %s hash apart", p[0], p[1])
		}
	}
	differ := [][2]string{
		{`{"a": 1}`, `{"a": "1"}`}, {`{"a": 1}`, `{"a": 1.0}`}, {`{"a": ["x", "y"]}`, `{"a": ["xy"]}`},
		{`{"a": null}`, `{}`}, {`{"ab": "c"}`, `{"a": "bc"}`}, {`{"a": {}}`, `{"a": []}`},
	}
	for _, p := range differ {
		if contentHash(dec(p[0])) == contentHash(dec(p[1])) {
			t.Errorf("%s and %s hash alike", p[0], p[1])
		}
	}
}

// An API whose pages shift (offset paging while rows are added) can return a record
// twice in one pass: it is delivered once.
func TestRecordRepeatedInAPassIsDeliveredOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("page") == "" {
			w.Header().Set("Link", `</rows?page=2>; rel="next"`)
			_, _ = w.Write([]byte(`{"data": [{"id": 1, "updated_at": 5}, {"id": 2, "updated_at": 6}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"data": [{"id": 2, "updated_at": 6}, {"id": 3, "updated_at": 6}]}`))
	}))
	defer srv.Close()
	store, _ := offsets.NewFile(t.TempDir())
	recs, err := syncOnce(t, memConfig(srv.URL), store.State("t"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := data(recs); n != 3 {
		t.Fatalf("%d records, want 3: %v", n, recs)
	}
}

// A record a pass missed (shifted out of an offset-paged list) is delivered by the
// next round's lookback, and only it: what the earlier round delivered is dropped.
func TestLookbackRecoversWhatAPassMissed(t *testing.T) {
	var mu sync.Mutex
	rows := []string{
		`{"id": 1, "t": "2026-01-01T00:00:01Z"}`, `{"id": 2, "t": "2026-01-01T00:00:02Z"}`,
		`{"id": 4, "t": "2026-01-01T00:00:04Z"}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data": [` + strings.Join(rows, ",") + `]}`))
	}))
	defer srv.Close()
	cfg := &Config{Namespace: "api", BaseURL: srv.URL, Streams: []Stream{{Name: "rows", URL: "/rows", Records: "/data",
		PrimaryKey: []string{"id"}, Cursor: Cursor{Field: "t", Type: "time", Lookback: time.Minute}}}}
	store, _ := offsets.NewFile(t.TempDir())
	state := store.State("t")
	recs, err := syncOnce(t, cfg, state, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, last := data(recs)
	if n != 3 {
		t.Fatalf("first round: %d records", n)
	}
	mu.Lock()
	rows = []string{rows[0], rows[1], `{"id": 3, "t": "2026-01-01T00:00:03Z"}`, rows[2]}
	mu.Unlock()
	recs, err = syncOnce(t, cfg, state, last)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := data(recs); n != 1 || recs[0].After[0] != int64(3) {
		t.Fatalf("second round: %v, want record 3 only", recs)
	}
}
