package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// waits records the waits a client asked for instead of waiting them.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) list() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// newTestClient builds a client for stream "orders" whose waits are recorded, whose
// clock stands at fixedNow and whose jitter always picks the ceiling, so backoffs are
// predictable.
func newTestClient(t *testing.T, base string, auth *Auth, r *Request, opt ClientOptions) (*Client, *waits) {
	t.Helper()
	if opt.Stream == "" {
		opt.Stream = "orders"
	}
	c, err := NewClient(base, auth, r, opt, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	w := &waits{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		w.mu.Lock()
		w.d = append(w.d, d)
		w.mu.Unlock()
		return ctx.Err()
	}
	c.now = func() time.Time { return fixedNow }
	c.jitter = func(n int64) int64 { return n - 1 }
	return c, w
}

// allPages runs a pager to its end.
func allPages(t *testing.T, c *Client, v Vars) ([]*Page, error) {
	t.Helper()
	p := c.Pages(context.Background(), v)
	var pages []*Page
	for i := 0; i < 100; i++ {
		pg, err := p.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return pages, nil
		}
		if err != nil {
			return pages, err
		}
		pages = append(pages, pg)
	}
	t.Fatal("more than 100 pages: the pager does not stop")
	return nil, nil
}

// ids lists the "id" field of each record of pages.
func ids(pages []*Page) string {
	var out []string
	for _, p := range pages {
		if s := recordIDs(p.Records); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// jsonRecords renders records with the given ids as a JSON array.
func jsonRecords(ids ...int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf(`{"id":%d}`, id)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// server starts an httptest server with h, closed when the test ends.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func mustContain(t *testing.T, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%q\ndoes not contain %q", s, w)
		}
	}
}
