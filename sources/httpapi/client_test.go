package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestRetryAfterInSecondsOrAsADateIsHonoured(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header string
		want   time.Duration
	}{
		{"429 seconds", 429, "7", 7 * time.Second},
		{"503 date", 503, fixedNow.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"a date in the past", 429, fixedNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"capped by MaxWait", 429, "3600", time.Minute},
		{"unreadable: backoff", 429, "soon", time.Second},
		{"500 ignores it: backoff", 500, "9", time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", tc.header)
					writeJSON(w, tc.status, `{"error":"slow down"}`)
					return
				}
				writeJSON(w, 200, jsonRecords(1))
			})
			c, w := newTestClient(t, s.URL, nil, &Request{URL: "/items"}, ClientOptions{})
			if _, err := allPages(t, c, Vars{}); err != nil {
				t.Fatal(err)
			}
			if got := w.list(); !reflect.DeepEqual(got, []time.Duration{tc.want}) {
				t.Errorf("waits %v, want [%v]", got, tc.want)
			}
			if st := c.Stats(); st.Requests != 2 || st.Retries != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestABurstOf500sThenSuccessBacksOffExponentially(t *testing.T) {
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 4 {
			http.Error(w, "oops", 500+int(n.Load()%4)) // 501, 502, 503, 500
			return
		}
		writeJSON(w, 200, jsonRecords(1))
	})
	c, w := newTestClient(t, s.URL, nil, &Request{URL: "/items"}, ClientOptions{MaxAttempts: 5, MaxWait: 5 * time.Second})
	pages, err := allPages(t, c, Vars{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || n.Load() != 5 {
		t.Errorf("%d pages after %d requests", len(pages), n.Load())
	}
	// The jitter picks the ceiling: 1s doubling, capped at MaxWait.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}
	if got := w.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	if st := c.Stats(); st != (Stats{Requests: 5, Retries: 4, Pages: 1, Records: 1}) {
		t.Errorf("stats %+v", st)
	}
}

func TestBackoffIsFullJitterBelowTheCeiling(t *testing.T) {
	c := &Client{maxWait: time.Minute, jitter: func(n int64) int64 { return n / 2 }}
	for attempt, ceiling := range map[int]time.Duration{1: time.Second, 3: 4 * time.Second, 7: time.Minute, 200: time.Minute} {
		if got := c.backoff(attempt); got != time.Duration(int64(ceiling+1)/2) {
			t.Errorf("attempt %d: %v, want half of %v", attempt, got, ceiling)
		}
	}
}

func TestGivingUpAfterMaxAttemptsSaysWhatFailed(t *testing.T) {
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeJSON(w, 502, `{"error":"upstream down"}`)
	})
	c, w := newTestClient(t, s.URL, nil, &Request{URL: "/items?access_token=s3cret"}, ClientOptions{MaxAttempts: 3})
	_, err := allPages(t, c, Vars{})
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, err.Error(), `http stream "orders"`, "GET "+s.URL+"/items?access_token=xxxxx", "status 502 Bad Gateway",
		`body begins "{\"error\":\"upstream down\"}"`, "gave up after 3 attempts")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the token leaks: %v", err)
	}
	var re *RequestError
	if !errors.As(err, &re) || re.Status != 502 || re.Attempts != 3 {
		t.Errorf("%#v", re)
	}
	if n.Load() != 3 || len(w.list()) != 2 {
		t.Errorf("%d requests, waits %v", n.Load(), w.list())
	}
}

func TestNetworkErrorsAreRetriedThenReported(t *testing.T) {
	s := httptest.NewServer(http.NotFoundHandler())
	addr := s.URL
	s.Close() // nothing listens there any more
	c, w := newTestClient(t, addr, nil, &Request{URL: "/items"}, ClientOptions{MaxAttempts: 2})
	_, err := allPages(t, c, Vars{})
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, err.Error(), `http stream "orders": GET `+addr+"/items", "gave up after 2 attempts")
	var ue *url.Error
	if errors.As(err, &ue) {
		t.Errorf("net/http's url.Error, which repeats the unredacted URL, is in the chain: %v", err)
	}
	if len(w.list()) != 1 || c.Stats().Requests != 2 {
		t.Errorf("waits %v stats %+v", w.list(), c.Stats())
	}
}

func TestAnOversizedBodyIsRefusedWithoutRetrying(t *testing.T) {
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeJSON(w, 200, jsonRecords(1, 2, 3))
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items"}, ClientOptions{})
	c.maxBody = 10
	_, err := allPages(t, c, Vars{})
	if err == nil || n.Load() != 1 {
		t.Fatalf("%d requests, error %v", n.Load(), err)
	}
	mustContain(t, err.Error(), "status 200: the body is larger than 10 bytes")
}

func TestAFourHundredIsNotRetried(t *testing.T) {
	var n atomic.Int32
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeJSON(w, 404, `{"error":"no such thing"}`)
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/nothing"}, ClientOptions{})
	_, err := allPages(t, c, Vars{})
	if err == nil || n.Load() != 1 {
		t.Fatalf("%d requests, error %v", n.Load(), err)
	}
	mustContain(t, err.Error(), "status 404 Not Found", "check the stream's url")
}

func TestAnHTMLPageIsAClearError(t *testing.T) {
	page := "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>" + strings.Repeat("x", 300) + "</body></html>"
	for _, ct := range []string{"text/html; charset=utf-8", "application/json", ""} {
		t.Run(ct, func(t *testing.T) {
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				if ct != "" {
					w.Header().Set("Content-Type", ct)
				} else {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				io.WriteString(w, page)
			})
			c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items?api_key=k3y"}, ClientOptions{})
			_, err := allPages(t, c, Vars{})
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			mustContain(t, msg, `http stream "orders"`, "GET "+s.URL+"/items?api_key=xxxxx", "status 200",
				`body begins "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway`)
			if strings.Contains(msg, "k3y") || strings.Contains(msg, strings.Repeat("x", 200)) {
				t.Errorf("the key or more than 200 bytes of body: %s", msg)
			}
			if ct == "text/html; charset=utf-8" {
				mustContain(t, msg, "Content-Type text/html is not JSON")
			} else {
				mustContain(t, msg, "the body is not JSON")
			}
		})
	}
}

func TestAnAPIKeyInTheQueryIsSentButNeverShown(t *testing.T) {
	var srv string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("appid") != "s3cret" {
			t.Errorf("no key in %s", r.URL)
		}
		if r.URL.Query().Get("page") == "" {
			// Many APIs echo every parameter into their next links, the key too.
			w.Header().Set("Link", "<"+srv+"/items?appid=s3cret&page=2>; rel=next")
			writeJSON(w, 200, jsonRecords(1))
			return
		}
		writeJSON(w, 500, `{"error":"boom"}`)
	})
	srv = s.URL
	auth := &Auth{Type: "api_key", Name: "appid", In: "query", Value: "s3cret"}
	c, _ := newTestClient(t, s.URL, auth, &Request{URL: "/items", Pagination: Pagination{Type: "link_header"}}, ClientOptions{MaxAttempts: 2})
	pages, err := allPages(t, c, Vars{})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(pages[0].URL, "s3cret") {
		t.Errorf("the key leaks: %v / %s", err, pages[0].URL)
	}
	mustContain(t, err.Error(), "appid=xxxxx&page=2")

	// Next links resolve against the URL asked for, not the one the key was added to.
	req, err := c.prepare(Vars{}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.fetch(context.Background(), req)
	if err != nil || strings.Contains(resp.url.String(), "s3cret") {
		t.Errorf("response URL %v, %v", resp.url, err)
	}
}

func TestCredentialsGoOnlyToTheAPIsHost(t *testing.T) {
	var other atomic.Value
	elsewhere := server(t, func(w http.ResponseWriter, r *http.Request) {
		other.Store(r.Header.Get("Authorization") + r.Header.Get("X-Key"))
		writeJSON(w, 200, jsonRecords(2))
	})
	for _, auth := range []*Auth{
		{Type: "bearer", Token: "tok"},
		{Type: "basic", Username: "u", Password: "p"},
		{Type: "api_key", Name: "X-Key", Value: "k"},
	} {
		t.Run(auth.Type, func(t *testing.T) {
			var got string
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Get("Authorization") + r.Header.Get("X-Key")
				w.Header().Set("Link", "<"+elsewhere.URL+"/more>; rel=next") // another port: another host
				writeJSON(w, 200, jsonRecords(1))
			})
			c, _ := newTestClient(t, s.URL, auth, &Request{URL: "/items", Pagination: Pagination{Type: "link_header"}}, ClientOptions{})
			if _, err := allPages(t, c, Vars{}); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"bearer": "Bearer tok", "basic": "Basic dTpw", "api_key": "k"}[auth.Type]
			if got != want {
				t.Errorf("the API got %q, want %q", got, want)
			}
			if o := other.Load(); o != "" {
				t.Errorf("another host got credentials %q", o)
			}
		})
	}
}

// tokenServer is an OAuth2 token endpoint handing out tok1, tok2, ... that expire
// after expiresIn seconds.
func tokenServer(t *testing.T, expiresIn int, fetches *atomic.Int32) *httptest.Server {
	return server(t, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			t.Errorf("token request %v %v", r.Form, err)
		}
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		if id != "app" || secret != "shh" {
			writeJSON(w, 401, `{"error":"invalid_client"}`)
			return
		}
		n := fetches.Add(1)
		writeJSON(w, 200, `{"access_token":"tok`+strconv.Itoa(int(n))+`","token_type":"bearer","expires_in":`+strconv.Itoa(expiresIn)+`}`)
	})
}

func TestOAuth2TokenIsFetchedOnceAndRefreshedWhenItExpires(t *testing.T) {
	cases := []struct {
		name      string
		expiresIn int
		fetches   int32
		lastToken string
	}{
		// oauth2 counts a token as expired 10s early: one that lives 5s is stale at once.
		{"valid an hour", 3600, 1, "tok1"},
		{"expired at once", 5, 3, "tok3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var fetches atomic.Int32
			ts := tokenServer(t, tc.expiresIn, &fetches)
			var seen []string
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				seen = append(seen, r.Header.Get("Authorization"))
				if r.URL.Query().Get("page") == "3" {
					writeJSON(w, 200, `[]`)
					return
				}
				writeJSON(w, 200, jsonRecords(len(seen)))
			})
			auth := &Auth{Type: "oauth2", TokenURL: ts.URL + "/token", ClientID: "app", ClientSecret: "shh", Scopes: []string{"read"}}
			c, _ := newTestClient(t, s.URL, auth, &Request{URL: "/items", Pagination: Pagination{Type: "page"}}, ClientOptions{})
			if _, err := allPages(t, c, Vars{}); err != nil {
				t.Fatal(err)
			}
			if fetches.Load() != tc.fetches || seen[2] != "Bearer "+tc.lastToken {
				t.Errorf("%d token fetches, API saw %v", fetches.Load(), seen)
			}
		})
	}
}

func TestOAuth2TokenRefusedBeforeItsExpiryIsFetchedAgainOnce(t *testing.T) {
	var fetches, calls atomic.Int32
	ts := tokenServer(t, 3600, &fetches)
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") == "Bearer tok1" {
			writeJSON(w, 401, `{"error":"revoked"}`)
			return
		}
		writeJSON(w, 200, jsonRecords(1))
	})
	auth := &Auth{Type: "oauth2", TokenURL: ts.URL, ClientID: "app", ClientSecret: "shh"}
	c, w := newTestClient(t, s.URL, auth, &Request{URL: "/items"}, ClientOptions{})
	if _, err := allPages(t, c, Vars{}); err != nil {
		t.Fatal(err)
	}
	if fetches.Load() != 2 || calls.Load() != 2 || len(w.list()) != 1 || w.list()[0] != 0 {
		t.Errorf("%d fetches, %d calls, waits %v", fetches.Load(), calls.Load(), w.list())
	}
}

func TestOAuth2BadCredentialsFailAtOnce(t *testing.T) {
	var fetches atomic.Int32
	ts := tokenServer(t, 3600, &fetches)
	s := server(t, func(w http.ResponseWriter, r *http.Request) { t.Error("the API was called without a token") })
	auth := &Auth{Type: "oauth2", TokenURL: ts.URL, ClientID: "app", ClientSecret: "wrong"}
	c, w := newTestClient(t, s.URL, auth, &Request{URL: "/items"}, ClientOptions{})
	_, err := allPages(t, c, Vars{})
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, err.Error(), "oauth2: fetching a token", "invalid_client")
	if strings.Contains(err.Error(), "wrong") || len(w.list()) != 0 {
		t.Errorf("secret in the error, or retried: %v %v", err, w.list())
	}
}

func TestCancellationEndsARetryAfterWaitAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, 429, `{}`)
		cancel() // the sync is stopped while the client waits
	})
	c, err := NewClient(s.URL, nil, &Request{URL: "/items"}, ClientOptions{Stream: "orders", MaxWait: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Pages(ctx, Vars{}).Next(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestTheRateLimitDoesNotWaitPastTheContext(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `</items?page=2>; rel=next`)
		writeJSON(w, 200, jsonRecords(1))
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, opt := range []ClientOptions{{Rate: 1.0 / 86400}, {Limiter: rate.NewLimiter(rate.Every(24*time.Hour), 1)}} {
		c, err := NewClient(s.URL, nil, &Request{URL: "/items", Pagination: Pagination{Type: "link_header"}}, opt, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := c.Pages(ctx, Vars{})
		if _, err := p.Next(ctx); err != nil {
			t.Fatal(err)
		}
		// The next token comes in a day; the context ends in an hour.
		_, err = p.Next(ctx)
		if err == nil || !strings.Contains(err.Error(), "rate limit") {
			t.Fatalf("want a rate limit error, got %v", err)
		}
		if c.Stats().Requests != 1 {
			t.Errorf("stats %+v", c.Stats())
		}
	}
}

func TestTemplatesAreEscapedForWhereTheyGo(t *testing.T) {
	var rawPath, rawQuery, body, header string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		rawPath, rawQuery, header = r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("X-Since")
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		writeJSON(w, 200, `[]`)
	})
	r := &Request{
		URL:     "/v1/{{ cursor }}/items?from={{ window.start }}",
		Method:  "POST",
		Params:  map[string]string{"to": "{{ window.end }}", "empty": "{{ next_page_token }}"},
		Headers: map[string]string{"X-Since": "{{ cursor }}"},
		Body:    `{"cursor":"{{ cursor }}","to":"{{window.end}}"}`,
	}
	c, _ := newTestClient(t, s.URL, nil, r, ClientOptions{})
	v := Vars{Cursor: `a b/c?d&e="f"`, WindowStart: "2024-01-01T00:00:00+01:00", WindowEnd: "x&y=<z>"}
	if _, err := allPages(t, c, v); err != nil {
		t.Fatal(err)
	}
	if want := "/v1/a%20b%2Fc%3Fd&e=%22f%22/items"; rawPath != want {
		t.Errorf("path %s, want %s", rawPath, want)
	}
	q, _ := url.ParseQuery(rawQuery)
	if q.Get("from") != v.WindowStart || q.Get("to") != v.WindowEnd || q.Has("empty") || len(q) != 2 {
		t.Errorf("query %s", rawQuery)
	}
	if header != v.Cursor {
		t.Errorf("header %q", header)
	}
	if want := `{"cursor":"a b/c?d&e=\"f\"","to":"x&y=<z>"}`; body != want {
		t.Errorf("body %s, want %s", body, want)
	}
}

func TestARenderedBodyThatIsNotJSONIsAnError(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) { t.Error("sent") })
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/q", Method: "POST", Body: `{"after": {{ cursor }}}`}, ClientOptions{})
	_, err := allPages(t, c, Vars{}) // no cursor yet: {"after": }
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, err.Error(), `http stream "orders"`, "body is not JSON once rendered")
}

func TestNewClientRefusesABadRequest(t *testing.T) {
	cases := []struct {
		base string
		auth *Auth
		r    Request
		want string
	}{
		{"", nil, Request{URL: "/items"}, "url is a path, and the source has no base_url"},
		{"api.example.com", nil, Request{URL: "/items"}, "base_url must be an absolute"},
		{"https://x", nil, Request{URL: "/items/{{ cursr }}"}, `url: function "cursr" not defined`},
		{"https://x", &Auth{Type: "bearer"}, Request{URL: "/items"}, "auth.token: must be set for type bearer"},
		{"https://x", nil, Request{URL: "/i", Pagination: Pagination{Type: "token"}}, "pagination.token: must be set for type token"},
	}
	for _, tc := range cases {
		_, err := NewClient(tc.base, tc.auth, &tc.r, ClientOptions{Stream: "s"}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.r, err, tc.want)
		}
	}
}

func TestAbsoluteURLIgnoresTheBaseAndRelativeJoinsIt(t *testing.T) {
	cases := []struct{ base, url, want string }{
		{"https://api.example.com/v1", "orders", "https://api.example.com/v1/orders"},
		{"https://api.example.com/v1/", "/orders?x=1", "https://api.example.com/v1/orders?x=1"},
		{"https://api.example.com/v1", "https://other.example.com/o", "https://other.example.com/o"},
	}
	for _, tc := range cases {
		c, err := NewClient(tc.base, nil, &Request{URL: tc.url}, ClientOptions{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := c.requestURL(templateValues{}, "")
		if err != nil || u.String() != tc.want {
			t.Errorf("%s + %s = %v %v, want %s", tc.base, tc.url, u, err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"https://api.example.com/v1/items?page=2", "https://api.example.com/v1/items?page=2"},
		{"https://user:pw@api.example.com/x", "https://xxxxx@api.example.com/x"},
		{"https://a/x?api_key=1&page=2&apiKey=3&access_token=4&client_secret=5&X-Amz-Signature=6&password=7",
			"https://a/x?api_key=xxxxx&page=2&apiKey=xxxxx&access_token=xxxxx&client_secret=xxxxx&X-Amz-Signature=xxxxx&password=xxxxx"},
		{"https://a/x?api%5Fkey=1&flag&q=a%20b", "https://a/x?api%5Fkey=xxxxx&flag&q=a%20b"},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := Redact(u); got != tc.want {
			t.Errorf("Redact(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if Redact(nil) != "" {
		t.Error("nil")
	}
}

func TestRetryAfterParsing(t *testing.T) {
	cases := []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"99999999999999999", 24 * time.Hour, true},
		{fixedNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, true},
		{"1.5", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		got, ok := retryAfter(tc.h, fixedNow)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v, want %v %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestANonObjectRecordFailsThePageNamingTheStream(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"items":[{"id":1},42]}`)
	})
	c, _ := newTestClient(t, s.URL, nil, &Request{URL: "/items", Records: "/items"}, ClientOptions{})
	_, err := allPages(t, c, Vars{})
	if err == nil {
		t.Fatal("no error")
	}
	mustContain(t, err.Error(), `http stream "orders": GET `+s.URL+"/items: status 200 OK: record 1 is a number, not a JSON object")
}
