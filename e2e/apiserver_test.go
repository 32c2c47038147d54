package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// apiServer is a small JSON API over a PostgreSQL table, of the shapes the http source
// polls: GET /items?since=<RFC 3339>&limit=N lists the rows updated at or after since,
// in ascending order of (updated_at, id), paged in the style the path names:
//
//	/link/items    Link: <...>; rel="next" headers, ?page=N
//	/next/items    {"data": [...], "links": {"next": "<url>"}}
//	/page/items    ?page=N (1-based), the last page short or empty
//	/offset/items  ?offset=N
//	/token/items   {"data": [...], "next_cursor": "<opaque>"}, ?cursor=<opaque>
//
// Faults are injected per request: the next n requests answer 429 with Retry-After,
// 500, or an HTML page; delay slows every page.
type apiServer struct {
	url   string
	pool  *pgxpool.Pool
	table string
	srv   *http.Server

	requests  atomic.Int64
	mu        sync.Mutex
	tooMany   int // requests left to answer 429
	failures  int // requests left to answer 500
	html      int // requests left to answer an HTML page
	delay     time.Duration
	retryWait string // Retry-After value
}

func startAPI(t *testing.T, dsn, table string) *apiServer {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &apiServer{url: "http://" + ln.Addr().String(), pool: pool, table: table, retryWait: "1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{style}/items", a.items)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = a.srv.Close()
		pool.Close()
	})
	return a
}

// fault arranges the next n requests to answer with kind: "429", "500" or "html".
func (a *apiServer) fault(kind string, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch kind {
	case "429":
		a.tooMany = n
	case "500":
		a.failures = n
	case "html":
		a.html = n
	}
}

func (a *apiServer) setDelay(d time.Duration) {
	a.mu.Lock()
	a.delay = d
	a.mu.Unlock()
}

func (a *apiServer) items(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	a.mu.Lock()
	delay := a.delay
	switch {
	case a.tooMany > 0:
		a.tooMany--
		a.mu.Unlock()
		w.Header().Set("Retry-After", a.retryWait)
		http.Error(w, `{"error": "slow down"}`, http.StatusTooManyRequests)
		return
	case a.failures > 0:
		a.failures--
		a.mu.Unlock()
		http.Error(w, `{"error": "boom"}`, http.StatusInternalServerError)
		return
	case a.html > 0:
		a.html--
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Maintenance: back soon</body></html>"))
		return
	}
	a.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit <= 0 {
		limit = 20
	}
	offset := 0
	style := r.PathValue("style")
	switch style {
	case "link", "page":
		if p, _ := strconv.Atoi(q.Get("page")); p > 1 {
			offset = (p - 1) * limit
		}
	case "offset":
		offset, _ = strconv.Atoi(q.Get("offset"))
	case "token":
		if c := q.Get("cursor"); c != "" {
			b, err := base64.RawURLEncoding.DecodeString(c)
			if err != nil {
				http.Error(w, `{"error": "bad cursor"}`, http.StatusBadRequest)
				return
			}
			offset, _ = strconv.Atoi(string(b))
		}
	case "next":
		offset, _ = strconv.Atoi(q.Get("skip"))
	}
	since := time.Time{}
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			http.Error(w, `{"error": "bad since"}`, http.StatusBadRequest)
			return
		}
	}
	// One more than a page tells whether there is a next one.
	// Every column of the table is a field of the record (a column added later is a
	// new field), updated_at in RFC 3339.
	rows, err := a.pool.Query(r.Context(), fmt.Sprintf(`SELECT row_to_json(i)::text FROM (
		SELECT * FROM %s WHERE updated_at >= $1 ORDER BY updated_at, id LIMIT $2 OFFSET $3) i`, pgx.Identifier{a.table}.Sanitize()),
		since, limit+1, offset)
	if err != nil {
		http.Error(w, `{"error": "query"}`, http.StatusInternalServerError)
		return
	}
	var data []json.RawMessage
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			http.Error(w, `{"error": "scan"}`, http.StatusInternalServerError)
			return
		}
		data = append(data, json.RawMessage(s))
	}
	if rows.Err() != nil {
		http.Error(w, `{"error": "rows"}`, http.StatusInternalServerError)
		return
	}
	more := len(data) > limit
	if more {
		data = data[:limit]
	}
	if data == nil {
		data = []json.RawMessage{}
	}
	body := map[string]any{"data": data}
	next := func(param string, value string) string {
		u := *r.URL
		v := u.Query()
		v.Set(param, value)
		u.RawQuery = v.Encode()
		return a.url + u.RequestURI()
	}
	if more {
		switch style {
		case "link":
			p, _ := strconv.Atoi(q.Get("page"))
			w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next", <%s>; rel="first"`, next("page", strconv.Itoa(max(p, 1)+1)), next("page", "1")))
		case "next":
			body["links"] = map[string]string{"next": next("skip", strconv.Itoa(offset+limit))}
		case "token":
			body["next_cursor"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset + limit)))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}
