package httpapi

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Vars are the values a stream's templates may use, besides next_page_token, which
// the pager sets.
type Vars struct{ Cursor, WindowStart, WindowEnd string }

// Page is one response's records.
type Page struct {
	Records []map[string]any
	Number  int    // 1 for the first page of a Pager
	URL     string // the request's URL, redacted
	Status  int
}

// Pager walks the pages of one run of a stream's request. Next after an error asks for
// the same page again.
type Pager struct {
	c    *Client
	vars Vars
	// The next request: a URL from the last page (link_header, next_url), or the url
	// template with a next_page_token (page number, offset, token).
	nextURL string
	token   string
	n       int
	done    bool

	// What was already asked for, hashed: an API that hands out a URL or token twice
	// would otherwise page forever.
	seed     maphash.Seed
	seen     map[uint64]bool
	lastBody uint64
}

// Pages starts a run of the stream's request with v.
func (c *Client) Pages(_ context.Context, v Vars) *Pager {
	p := &Pager{c: c, vars: v, seed: maphash.MakeSeed(), seen: map[uint64]bool{}}
	switch c.pg.Type {
	case pageNumber:
		p.token = "1"
		if c.pg.ZeroBased {
			p.token = "0"
		}
	case pageOffset:
		p.token = "0"
	}
	return p
}

// Next fetches the next page; io.EOF after the last.
func (p *Pager) Next(ctx context.Context) (*Page, error) {
	if p.done {
		return nil, io.EOF
	}
	c := p.c
	req, err := c.prepare(p.vars, p.nextURL, p.token)
	if err != nil {
		return nil, fmt.Errorf("http stream %q: %w", c.stream, err)
	}
	if p.n == 0 {
		p.seen[maphash.String(p.seed, req.url.String())] = true
	}
	resp, err := c.fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	fail := func(err error, body bool) error {
		e := &RequestError{Stream: c.stream, Method: req.method, URL: c.redact(req.url), Status: resp.status, Err: err}
		if body {
			e.Body = quoteBody(resp.body)
		}
		return e
	}
	var recs []map[string]any
	var doc any
	last := resp.status == http.StatusNoContent
	if !last {
		if doc, err = decodeJSON(resp.body); err != nil {
			return nil, fail(fmt.Errorf("the body is not JSON: %v", err), true)
		}
		if recs, err = c.records.records(doc); err != nil {
			return nil, fail(err, false)
		}
	}
	nextURL, token := "", ""
	if !last {
		if nextURL, token, err = p.following(resp, doc, len(recs)); err != nil {
			return nil, fail(err, false)
		}
		last = nextURL == "" && token == ""
	}
	p.n++
	p.nextURL, p.token, p.done = nextURL, token, last
	c.pages.Add(1)
	c.recordsN.Add(int64(len(recs)))
	return &Page{Records: recs, Number: p.n, URL: c.redact(req.url), Status: resp.status}, nil
}

// following finds where the page after this one is: a URL, a token, or neither
// (this was the last page).
func (p *Pager) following(resp *response, doc any, n int) (nextURL, token string, err error) {
	c := p.c
	switch c.pg.Type {
	case pageLinkHeader:
		link, err := nextLink(resp.header.Values("Link"))
		if err != nil || link == "" {
			return "", "", err
		}
		return p.resolve(resp.url, link, "the Link header's next")
	case pageNextURL:
		link, err := c.next.value(doc)
		if err != nil || link == "" {
			return "", "", err
		}
		return p.resolve(resp.url, link, "pagination.next_url")
	case pageToken:
		tok, err := c.next.value(doc)
		if err != nil || tok == "" {
			return "", "", err
		}
		if p.repeated("t" + tok) {
			return "", "", fmt.Errorf("the next page token %q was already used: the API pages in a circle", tok)
		}
		return "", tok, nil
	case pageNumber, pageOffset:
		if n == 0 || (c.pg.Size > 0 && n < c.pg.Size) {
			return "", "", nil
		}
		// An API that ignores the page parameter returns page 1 forever.
		h := maphash.Bytes(p.seed, resp.body)
		if p.n > 0 && h == p.lastBody {
			return "", "", fmt.Errorf("page %d is the same as page %d: does the API take the %q parameter?", p.n+1, p.n, c.pg.tokenParam())
		}
		p.lastBody = h
		cur, err := strconv.ParseInt(p.token, 10, 64)
		if err != nil {
			return "", "", fmt.Errorf("page token %q is not a number", p.token)
		}
		if c.pg.Type == pageNumber {
			return "", strconv.FormatInt(cur+1, 10), nil
		}
		return "", strconv.FormatInt(cur+int64(n), 10), nil
	}
	return "", "", nil
}

// resolve makes a next link absolute against the URL that answered and refuses one
// already fetched.
func (p *Pager) resolve(base *url.URL, link, what string) (string, string, error) {
	ref, err := url.Parse(strings.TrimSpace(link))
	if err != nil {
		return "", "", fmt.Errorf("%s is not a URL: %v", what, urlProblem(err))
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", "", fmt.Errorf("%s %s is not an http(s) URL", what, p.c.redact(u))
	}
	s := u.String()
	if p.repeated(s) {
		return "", "", fmt.Errorf("%s %s was already fetched: the API pages in a circle", what, p.c.redact(u))
	}
	return s, "", nil
}

// repeated records key and reports whether it was seen before.
func (p *Pager) repeated(key string) bool {
	h := maphash.String(p.seed, key)
	if p.seen[h] {
		return true
	}
	p.seen[h] = true
	return false
}

// nextLink returns the target of the first link whose relation types include "next"
// in a response's Link header fields (RFC 8288 section 3), "" if there is none.
func nextLink(fields []string) (string, error) {
	for _, f := range fields {
		links, err := parseLinkHeader(f)
		if err != nil {
			return "", err
		}
		for _, l := range links {
			for _, r := range l.rels {
				if r == "next" {
					return l.target, nil
				}
			}
		}
	}
	return "", nil
}

// webLink is one link-value of a Link header.
type webLink struct {
	target string
	rels   []string // lower case
}

// parseLinkHeader parses a Link field value:
//
//	Link       = #link-value
//	link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
//	link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
//
// A comma may appear inside <...> and inside a quoted string, which is why the value
// is scanned rather than split. Only the first rel parameter counts (section 3.3);
// unquoted values are read up to the next ';', ',' or space, leniently.
func parseLinkHeader(s string) ([]webLink, error) {
	var out []webLink
	i := 0
	bad := func(what string) error {
		return fmt.Errorf("Link header: %s at byte %d of %q", what, i, s)
	}
	for {
		for i < len(s) && (s[i] == ',' || isOWS(s[i])) {
			i++
		}
		if i == len(s) {
			return out, nil
		}
		if s[i] != '<' {
			return nil, bad("want '<'")
		}
		end := strings.IndexByte(s[i:], '>')
		if end < 0 {
			return nil, bad("no '>' after '<'")
		}
		l := webLink{target: strings.TrimSpace(s[i+1 : i+end])}
		i += end + 1
		relSeen := false
		for {
			i = skipOWS(s, i)
			if i == len(s) || s[i] == ',' {
				break
			}
			if s[i] != ';' {
				return nil, bad("want ';' or ','")
			}
			i = skipOWS(s, i+1)
			if i == len(s) || s[i] == ',' {
				break // a trailing ';', tolerated
			}
			j := i
			for j < len(s) && isTokenChar(s[j]) {
				j++
			}
			if j == i {
				return nil, bad("want a parameter name")
			}
			name := s[i:j]
			i = skipOWS(s, j)
			var val string
			if i < len(s) && s[i] == '=' {
				i = skipOWS(s, i+1)
				var err error
				if val, i, err = linkParamValue(s, i); err != nil {
					return nil, bad(err.Error())
				}
			}
			if strings.EqualFold(name, "rel") && !relSeen {
				relSeen = true
				l.rels = strings.Fields(strings.ToLower(val))
			}
		}
		out = append(out, l)
	}
}

// linkParamValue reads a token or quoted-string at s[i:].
func linkParamValue(s string, i int) (string, int, error) {
	if i < len(s) && s[i] == '"' {
		var b strings.Builder
		for i++; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 < len(s) {
					i++
					b.WriteByte(s[i])
				}
			case '"':
				return b.String(), i + 1, nil
			default:
				b.WriteByte(s[i])
			}
		}
		return "", i, errors.New("unterminated quoted string")
	}
	j := i
	for j < len(s) && s[j] != ';' && s[j] != ',' && !isOWS(s[j]) {
		j++
	}
	return s[i:j], j, nil
}

func isOWS(b byte) bool { return b == ' ' || b == '\t' }

func skipOWS(s string, i int) int {
	for i < len(s) && isOWS(s[i]) {
		i++
	}
	return i
}

// isTokenChar reports a tchar of RFC 9110 section 5.6.2.
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}
