package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/conformance"
	"github.com/connectd/connectd/offsets"
)

// TestConformance runs the connector suite against the source polling a real HTTP
// server on loopback, which serves rows kept in memory with a Link header per page.
func TestConformance(t *testing.T) {
	conformance.TestSource(t, conformanceDriver{})
}

type conformanceDriver struct{}

// Sizes: a batch is a page of 20 records.
func (conformanceDriver) Sizes() (snapshot, stream int) { return 95, 65 }

func (conformanceDriver) Setup(_ context.Context, tb testing.TB) (conformance.SourceFixture, error) {
	store, err := offsets.NewFile(tb.TempDir())
	if err != nil {
		return nil, err
	}
	f := &apiFixture{api: &memAPI{}, state: store.State("http_conformance"), log: slog.New(slog.DiscardHandler)}
	f.srv = httptest.NewServer(f.api)
	tb.Cleanup(f.srv.Close)
	return f, nil
}

type apiFixture struct {
	api   *memAPI
	srv   *httptest.Server
	state connector.StateStore
	log   *slog.Logger
}

func (f *apiFixture) Open(ctx context.Context, mode connector.Mode) (connector.Source, error) {
	cfg := &Config{Namespace: "api", BaseURL: f.srv.URL, Interval: 50 * time.Millisecond, Streams: []Stream{{
		Name: "rows", URL: "/rows", Params: map[string]string{"since": "{{ cursor }}", "limit": "20"}, Records: "/data",
		PrimaryKey: []string{"id"}, Cursor: Cursor{Field: "updated_at", Type: "int"}, Pagination: Pagination{Type: "link_header"},
	}}}
	return Kind{}.Open(ctx, connector.SourceParams{Name: "http_conformance", Config: config.Source{Type: "http", Config: cfg},
		Mode: mode, Logger: f.log, Status: connector.NopStatus{}, State: f.state})
}

// Insert adds n rows, two per cursor value, so that equal cursors straddle pages.
func (f *apiFixture) Insert(_ context.Context, n int) error {
	f.api.add(n)
	return nil
}

// memAPI serves rows in ascending (updated_at, id) order from ?since= on, 20 a page.
type memAPI struct {
	mu   sync.Mutex
	rows []map[string]any
}

func (a *memAPI) add(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for range n {
		id := len(a.rows) + 1
		a.rows = append(a.rows, map[string]any{"id": id, "updated_at": (id + 1) / 2, "v": fmt.Sprintf("row %d", id)})
	}
}

func (a *memAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.Atoi(q.Get("since"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	page := max(1, atoi(q.Get("page")))
	a.mu.Lock()
	var match []map[string]any
	for _, row := range a.rows {
		if row["updated_at"].(int) >= since {
			match = append(match, row)
		}
	}
	a.mu.Unlock()
	from := min((page-1)*limit, len(match))
	to := min(from+limit, len(match))
	if to < len(match) {
		u := *r.URL
		v := u.Query()
		v.Set("page", strconv.Itoa(page+1))
		u.RawQuery = v.Encode()
		w.Header().Set("Link", "<"+(&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": match[from:to]})
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
