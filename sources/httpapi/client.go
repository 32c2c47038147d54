package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
)

// ClientOptions are a stream's request limits, which the source's config sets.
type ClientOptions struct {
	// Stream names the stream in errors and logs.
	Stream string
	// Timeout bounds one attempt, reading the body included; default 30s.
	Timeout time.Duration
	// Rate is the most requests per second (retries included); 0 is no limit.
	Rate float64
	// Burst is how many requests may go at once above Rate; default 1.
	Burst int
	// Limiter, when set, is used instead of Rate and Burst, so that the streams of one
	// API share its budget.
	Limiter *rate.Limiter
	// MaxAttempts is how many times one page is asked for before giving up; default 5.
	MaxAttempts int
	// MaxWait caps one wait between attempts, a Retry-After or a backoff; default 1m.
	MaxWait time.Duration
	// UserAgent is the User-Agent header; default connectd.
	UserAgent string
	// HTTPClient sends the requests (and fetches OAuth2 tokens); default a new
	// http.Client on http.DefaultTransport. Tests pass their server's client.
	HTTPClient *http.Client
}

// Option defaults.
const (
	defaultTimeout     = 30 * time.Second
	defaultMaxAttempts = 5
	defaultMaxWait     = time.Minute
	// firstBackoff is the ceiling of the first backoff; it doubles each attempt up
	// to MaxWait.
	firstBackoff = time.Second
	// defaultMaxBody bounds a response held in memory: a page is decoded whole.
	defaultMaxBody = 64 << 20
	// bodyQuote is how much of an unexpected body an error shows.
	bodyQuote = 200
)

// Stats counts a client's work, for status and metrics; all pagers of the client
// add to it.
type Stats struct {
	Requests int64 // attempts sent, retries included
	Retries  int64 // attempts that followed a failed one
	Pages    int64 // pages returned by Pager.Next
	Records  int64 // records in those pages
}

// Client asks one stream's endpoint for pages of records.
type Client struct {
	stream      string
	method      string
	urlT        *reqTemplate
	base        string // joined before a relative url
	params      map[string]*reqTemplate
	headers     map[string]*reqTemplate
	body        *reqTemplate
	records     *jsonSelector
	pg          Pagination
	next        *jsonSelector // next_url or token pagination's selector
	tokenInTmpl bool          // the templates place next_page_token themselves
	auth        *authenticator
	http        *http.Client
	limiter     *rate.Limiter
	timeout     time.Duration
	maxWait     time.Duration
	maxAttempts int
	userAgent   string
	maxBody     int64
	log         *slog.Logger

	requests, retries, pages, recordsN atomic.Int64

	// Replaced by tests, so that waits are observed instead of waited.
	sleep  func(ctx context.Context, d time.Duration) error
	now    func() time.Time
	jitter func(n int64) int64 // a number in [0, n)
}

// NewClient prepares the requests of one stream: r's url is joined to base unless it
// is absolute, auth (nil for none) signs the requests sent to that URL's host.
func NewClient(base string, auth *Auth, r *Request, opt ClientOptions, log *slog.Logger) (*Client, error) {
	if r == nil {
		return nil, fmt.Errorf("http stream %q: no request", opt.Stream)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var problems []string
	report := func(prefix string) func(key, msg string) {
		return func(key, msg string) { problems = append(problems, prefix+key+": "+msg) }
	}
	CheckRequest(r, report(""))
	if auth != nil {
		CheckAuth(auth, report("auth."))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("http stream %q: %s", opt.Stream, strings.Join(problems, "; "))
	}
	c := &Client{
		stream:      opt.Stream,
		method:      strings.ToUpper(r.Method),
		pg:          r.Pagination,
		params:      map[string]*reqTemplate{},
		headers:     map[string]*reqTemplate{},
		timeout:     opt.Timeout,
		maxWait:     opt.MaxWait,
		maxAttempts: opt.MaxAttempts,
		userAgent:   opt.UserAgent,
		maxBody:     defaultMaxBody,
		limiter:     opt.Limiter,
		log:         log.With("stream", opt.Stream),
		sleep:       sleepContext,
		now:         time.Now,
		jitter:      rand.Int64N,
	}
	if c.method == "" {
		c.method = http.MethodGet
	}
	if c.pg.Type == "" {
		c.pg.Type = pageNone
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.maxWait <= 0 {
		c.maxWait = defaultMaxWait
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	if c.userAgent == "" {
		c.userAgent = "connectd"
	}
	if c.limiter == nil && opt.Rate > 0 {
		burst := max(opt.Burst, 1)
		c.limiter = rate.NewLimiter(rate.Limit(opt.Rate), burst)
	}
	// CheckRequest parsed all of these already; errors cannot happen here.
	c.urlT, _ = parseURLTemplate(r.URL)
	c.tokenInTmpl = c.urlT.uses(varNextPageToken)
	for k, v := range r.Params {
		c.params[k], _ = parseTemplate(v, ctxRaw)
		c.tokenInTmpl = c.tokenInTmpl || c.params[k].uses(varNextPageToken)
	}
	for k, v := range r.Headers {
		c.headers[k], _ = parseTemplate(v, ctxRaw)
		c.tokenInTmpl = c.tokenInTmpl || c.headers[k].uses(varNextPageToken)
	}
	if r.Body != "" {
		c.body, _ = parseTemplate(r.Body, ctxJSON)
		c.tokenInTmpl = c.tokenInTmpl || c.body.uses(varNextPageToken)
	}
	c.records, _ = newJSONSelector(r.Records)
	switch c.pg.Type {
	case pageNextURL:
		c.next, _ = newJSONSelector(c.pg.NextURL)
	case pageToken:
		c.next, _ = newJSONSelector(c.pg.Token)
	}

	if !isAbsoluteURL(r.URL) {
		if base == "" {
			return nil, fmt.Errorf("http stream %q: url is a path, and the source has no base_url to join it to", c.stream)
		}
		if !isAbsoluteURL(base) {
			return nil, fmt.Errorf("http stream %q: base_url must be an absolute http(s) URL", c.stream)
		}
		c.base = base
	}
	first, err := c.requestURL(templateValues{}, "")
	if err != nil {
		return nil, fmt.Errorf("http stream %q: %w", c.stream, err)
	}

	hc := opt.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	ac, err := newAuthenticator(auth, hc)
	if err != nil {
		return nil, fmt.Errorf("http stream %q: %w", c.stream, err)
	}
	c.auth = ac
	c.http = hc
	if ac != nil {
		wrapped := *hc
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		wrapped.Transport = &authTransport{base: base, host: first.Host, auth: ac}
		c.http = &wrapped
	}
	return c, nil
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), Pages: c.pages.Load(), Records: c.recordsN.Load()}
}

// redact is Redact, also hiding the api_key auth's query parameter.
func (c *Client) redact(u *url.URL) string {
	extra := ""
	if c.auth != nil {
		extra = c.auth.queryName
	}
	return redactURL(u, extra)
}

// requestURL renders the url template with its params; token, when not "", goes in
// the pagination's parameter unless a template places it.
func (c *Client) requestURL(vals templateValues, token string) (*url.URL, error) {
	raw := c.urlT.render(vals)
	if c.base != "" {
		// Joined, not resolved: with RFC 3986 resolution, "orders" under
		// https://api/v1 would lose its /v1.
		raw = strings.TrimRight(c.base, "/") + "/" + strings.TrimLeft(raw, "/")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %v", urlProblem(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url: %s is not an absolute http(s) URL", Redact(u))
	}
	add := url.Values{}
	for k, t := range c.params {
		if v := t.render(vals); v != "" {
			add.Set(k, v)
		}
	}
	switch c.pg.Type {
	case pageNumber, pageOffset, pageToken:
		if token != "" && !c.tokenInTmpl {
			add.Set(c.pg.tokenParam(), token)
		}
		if c.pg.SizeParam != "" && c.pg.Size > 0 {
			add.Set(c.pg.SizeParam, strconv.Itoa(c.pg.Size))
		}
	}
	if len(add) > 0 {
		q := u.Query()
		for k, v := range add {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	return u, nil
}

func urlProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error() // without the URL, which may hold a secret
	}
	return err.Error()
}

// prepared is one page's request, sent once per attempt.
type prepared struct {
	method string
	url    *url.URL
	body   []byte
	header http.Header
}

// prepare renders the request for a page: at next (a URL from the previous page) or
// else at the url template with token as the next_page_token.
func (c *Client) prepare(v Vars, next, token string) (*prepared, error) {
	vals := templateValues{varCursor: v.Cursor, varNextPageToken: token, varWindowStart: v.WindowStart, varWindowEnd: v.WindowEnd}
	p := &prepared{method: c.method, header: http.Header{}}
	var err error
	if next != "" {
		p.url, err = url.Parse(next)
	} else {
		p.url, err = c.requestURL(vals, token)
	}
	if err != nil {
		return nil, err
	}
	p.header.Set("Accept", "application/json")
	p.header.Set("User-Agent", c.userAgent)
	if c.body != nil {
		p.body = []byte(c.body.render(vals))
		if err := validJSON(p.body); err != nil {
			return nil, fmt.Errorf("body is not JSON once rendered: %v", err)
		}
		p.header.Set("Content-Type", "application/json")
	}
	for k, t := range c.headers {
		val := t.render(vals)
		if strings.ContainsAny(val, "\r\n") {
			return nil, fmt.Errorf("header %s: the rendered value holds a line break", k)
		}
		if val != "" {
			p.header.Set(k, val)
		}
	}
	return p, nil
}

// response is a successful response, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
	url    *url.URL // after redirects: what relative links are relative to
}

// RequestError is a request that failed for good, or a response that cannot be used.
type RequestError struct {
	Stream   string
	Method   string
	URL      string // redacted
	Status   int    // 0 when no response came
	Body     string // the start of the response's body, when it explains the failure
	Attempts int
	Err      error // the cause, if not the status alone
}

func (e *RequestError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "http stream %q: %s %s", e.Stream, e.Method, e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": status %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Body != "" {
		fmt.Fprintf(&b, "; body begins %q", e.Body)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts)", e.Attempts)
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		b.WriteString("; check the source's auth section")
	case http.StatusNotFound:
		b.WriteString("; check the stream's url")
	}
	return b.String()
}

func (e *RequestError) Unwrap() error { return e.Err }

// fetch sends p until it succeeds, fails for good, or runs out of attempts. It
// retries network errors, 5xx and 429 (waiting as Retry-After says on 429 and 503,
// else a capped exponential backoff with full jitter), and never waits once ctx is
// done.
func (c *Client) fetch(ctx context.Context, p *prepared) (*response, error) {
	fail := func(status int, body []byte, attempts int, err error) *RequestError {
		return &RequestError{Stream: c.stream, Method: p.method, URL: c.redact(p.url), Status: status,
			Body: quoteBody(body), Attempts: attempts, Err: err}
	}
	refreshed := false
	for attempt := 1; ; attempt++ {
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return nil, fail(0, nil, attempt, fmt.Errorf("waiting for the rate limit: %w", err))
			}
		}
		resp, err := c.attempt(ctx, p)
		if ctx.Err() != nil {
			return nil, fail(0, nil, attempt, ctx.Err())
		}
		var wait time.Duration
		var retryErr error // why this attempt failed, if it may be retried
		switch {
		case err != nil:
			if permanent(err) {
				return nil, fail(0, nil, attempt, err)
			}
			retryErr, wait = err, c.backoff(attempt)
		case resp.status >= 200 && resp.status < 300:
			if err := checkContentType(resp.header.Get("Content-Type")); err != nil {
				return nil, fail(resp.status, resp.body, attempt, err)
			}
			return resp, nil
		case resp.status == http.StatusUnauthorized && c.auth != nil && c.auth.invalidate != nil && !refreshed:
			// A token revoked or rotated before its expiry: fetch a new one, once.
			c.auth.invalidate()
			refreshed = true
			retryErr = errors.New("token refused")
		case resp.status == http.StatusTooManyRequests || resp.status >= 500:
			retryErr = fmt.Errorf("status %d %s", resp.status, http.StatusText(resp.status))
			wait = c.backoff(attempt)
			if resp.status == http.StatusTooManyRequests || resp.status == http.StatusServiceUnavailable {
				if d, ok := retryAfter(resp.header.Get("Retry-After"), c.now()); ok {
					wait = min(d, c.maxWait)
				}
			}
		default:
			return nil, fail(resp.status, resp.body, attempt, nil)
		}
		if attempt >= c.maxAttempts {
			if resp != nil {
				return nil, fail(resp.status, resp.body, attempt, nil)
			}
			return nil, fail(0, nil, attempt, retryErr)
		}
		c.retries.Add(1)
		c.log.Warn("http request failed, retrying", "method", p.method, "url", c.redact(p.url),
			"attempt", attempt, "error", retryErr.Error(), "wait", wait)
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fail(0, nil, attempt, err)
		}
	}
}

// attempt sends p once and reads the response. An error is a network error (or a
// timeout, or an OAuth2 token that could not be had), never a status.
func (c *Client) attempt(ctx context.Context, p *prepared) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(actx, p.method, p.url.String(), body)
	if err != nil {
		return nil, permanentError{fmt.Errorf("building the request: %v", urlProblem(err))}
	}
	req.Header = p.header.Clone()
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.netError(actx, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return nil, c.netError(actx, fmt.Errorf("reading the body: %w", err))
	}
	c.log.Debug("http request", "method", p.method, "url", c.redact(p.url), "status", resp.StatusCode, "bytes", len(b))
	if int64(len(b)) > c.maxBody {
		return nil, permanentError{fmt.Errorf("status %d: the body is larger than %d bytes", resp.StatusCode, c.maxBody)}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b, url: resp.Request.URL}, nil
}

// permanentError is an attempt's failure that another attempt would repeat.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// permanent reports whether err fails the request for good: a permanentError, or an
// OAuth2 token endpoint refusing the credentials.
func permanent(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return true
	}
	var tok *tokenError
	var re *oauth2.RetrieveError
	return errors.As(err, &tok) && errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500
}

// netError strips the URL that net/http puts in its errors (it may hold a secret;
// errors name the redacted URL themselves) and names an attempt's timeout.
func (c *Client) netError(actx context.Context, err error) error {
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no response within %s", c.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// backoff is the wait after a failed attempt: full jitter, a random time below a
// ceiling that doubles each attempt up to MaxWait, so clients that failed together
// do not come back together.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.maxWait
	if attempt < 30 {
		ceiling = min(ceiling, firstBackoff<<(attempt-1))
	}
	return time.Duration(c.jitter(int64(ceiling) + 1))
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110
// section 10.2.3).
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second) // capped by the caller anyway; no overflow
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// checkContentType refuses a body that says it is not JSON (an HTML error page from a
// proxy, say). No type, text/plain and octet-stream go to the JSON decoder, which
// has the last word: some APIs label their JSON so.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("Content-Type %q is not JSON", ct)
	}
	switch {
	case mt == "application/json", mt == "text/json", strings.HasSuffix(mt, "+json"),
		mt == "text/plain", mt == "application/octet-stream":
		return nil
	}
	return fmt.Errorf("Content-Type %s is not JSON", mt)
}

// quoteBody is the start of a body for an error message, cut at a character.
func quoteBody(b []byte) string {
	if len(b) > bodyQuote {
		n := bodyQuote
		for n > bodyQuote-utf8.UTFMax && !utf8.RuneStart(b[n]) {
			n--
		}
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
