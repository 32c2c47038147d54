package httpapi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Auth is the source's `auth` section: how every request proves who it is.
type Auth struct {
	Type     string `yaml:"type" default:"none" enum:"none,bearer,basic,api_key,oauth2" doc:"How requests authenticate: none, bearer (a token in the Authorization header), basic (username and password), api_key (a key in a header or query parameter) or oauth2 (client credentials, the token refreshed as it expires)."`
	Token    string `yaml:"token" secret:"true" doc:"bearer: the token, sent as Authorization: Bearer <token>." example:"${API_TOKEN}"`
	Username string `yaml:"username" doc:"basic: the user name."`
	Password string `yaml:"password" secret:"true" doc:"basic: the password."`
	Name     string `yaml:"name" doc:"api_key: the header or query parameter that carries the key." example:"X-API-Key"`
	In       string `yaml:"in" default:"header" enum:"header,query" doc:"api_key: send the key in a header or as a query parameter."`
	Value    string `yaml:"value" secret:"true" doc:"api_key: the key."`
	// The OAuth2 client credentials grant (RFC 6749 section 4.4): the only grant a
	// daemon without a user can run on its own.
	TokenURL     string   `yaml:"token_url" doc:"oauth2: the token endpoint." example:"https://auth.example.com/oauth/token"`
	ClientID     string   `yaml:"client_id" doc:"oauth2: the client id."`
	ClientSecret string   `yaml:"client_secret" secret:"true" doc:"oauth2: the client secret."`
	Scopes       []string `yaml:"scopes" doc:"oauth2: the scopes to ask for (none by default)."`
}

// Request is a stream's request: what to ask and how to page.
type Request struct {
	URL        string            `yaml:"url" required:"the endpoint, absolute or relative to base_url, e.g. /v1/orders" doc:"The endpoint: an absolute http(s) URL, or a path joined to the source's base_url. May use {{ cursor }}, {{ window.start }}, {{ window.end }} and {{ next_page_token }} after the host; their values are URL-escaped." example:"/v1/orders"`
	Method     string            `yaml:"method" default:"GET" enum:"GET,POST" doc:"The HTTP method; POST sends body."`
	Headers    map[string]string `yaml:"headers" doc:"Extra request headers; values may use the template variables. A header whose value renders empty is left out."`
	Params     map[string]string `yaml:"params" doc:"Query parameters; values may use the template variables (escaped for you). A parameter whose value renders empty is left out, so since: \"{{ cursor }}\" asks for everything on the first run." example:"{sort: updated_at, since: \"{{ cursor }}\"}"`
	Body       string            `yaml:"body" doc:"POST: the JSON body. Template values are JSON-escaped without quotes, so write \"{{ cursor }}\" for a string and {{ next_page_token }} for a number." example:"{\"since\": \"{{ cursor }}\"}"`
	Records    string            `yaml:"records" doc:"Where the records are in the response: a JSON pointer (/data/items) or a JSONPath ($.data.items[*]); empty: the body is the array of records. A pointer, or a JSONPath without wildcards, finds the array of records (an object there is one record; missing or null, a page without records); a JSONPath with wildcards or filters finds the records themselves."`
	Pagination Pagination        `yaml:"pagination" doc:"How to ask for the next page."`
}

// Pagination says how the next page is asked for and when there is none.
type Pagination struct {
	Type      string `yaml:"type" default:"none" enum:"none,link_header,next_url,page,offset,token" doc:"none (one page), link_header (the Link header's rel=\"next\"), next_url (a URL in the body), page (a page number), offset (a record offset) or token (an opaque token from the body)."`
	NextURL   string `yaml:"next_url" doc:"next_url: JSON pointer or JSONPath of the next page's URL in the body, absolute or relative to the request's URL; absent, null or empty on the last page." example:"/links/next"`
	Token     string `yaml:"token" doc:"token: JSON pointer or JSONPath of the next page's token in the body; absent, null or empty on the last page." example:"/meta/next_cursor"`
	Param     string `yaml:"param" defaultdoc:"page, offset or cursor" doc:"page, offset, token: the query parameter that carries the page number, offset or token. Not sent when the request uses {{ next_page_token }} itself (in the body, say)."`
	Size      int    `yaml:"size" doc:"page, offset: records per page, at most what the API returns; a page with fewer records is the last (without size, only an empty page is). Sent as size_param when that is set."`
	SizeParam string `yaml:"size_param" doc:"page, offset: the query parameter that carries size." example:"per_page"`
	// A bool rather than a start number: the loader cannot tell a written 0 from a
	// key left out, and APIs count pages from 0 or 1.
	ZeroBased bool `yaml:"zero_based" doc:"page: pages are numbered from 0 instead of 1."`
}

// Pagination types.
const (
	pageNone       = "none"
	pageLinkHeader = "link_header"
	pageNextURL    = "next_url"
	pageNumber     = "page"
	pageOffset     = "offset"
	pageToken      = "token"
)

// tokenParam is the query parameter a pagination type sends its token in.
func (p *Pagination) tokenParam() string {
	if p.Param != "" {
		return p.Param
	}
	switch p.Type {
	case pageNumber:
		return "page"
	case pageOffset:
		return "offset"
	case pageToken:
		return "cursor"
	}
	return ""
}

// CheckTemplates reports the first template of r (url, params, headers, body) that
// does not parse, uses something other than the four variables, or (the body) is not
// JSON once rendered.
func CheckTemplates(r *Request) error {
	var errs []error
	checkTemplates(r, func(key, msg string) { errs = append(errs, fmt.Errorf("%s: %s", key, msg)) })
	return errors.Join(errs...)
}

func checkTemplates(r *Request, report func(key, msg string)) {
	if _, err := parseURLTemplate(r.URL); err != nil {
		report("url", err.Error())
	}
	for _, k := range sortedKeys(r.Params) {
		if _, err := parseTemplate(r.Params[k], ctxRaw); err != nil {
			report("params."+k, err.Error())
		}
	}
	for _, k := range sortedKeys(r.Headers) {
		if _, err := parseTemplate(r.Headers[k], ctxRaw); err != nil {
			report("headers."+k, err.Error())
		}
	}
	if r.Body != "" {
		t, err := parseTemplate(r.Body, ctxJSON)
		if err != nil {
			report("body", err.Error())
		} else if err := checkBody(t); err != nil {
			report("body", err.Error())
		}
	}
}

// checkBody renders a body with every variable set to 1, which fits both a quoted
// string and a bare number, so only a body that is never JSON fails.
func checkBody(t *reqTemplate) error {
	b := t.render(templateValues{"1", "1", "1", "1"})
	if err := validJSON([]byte(b)); err != nil {
		return fmt.Errorf("is not JSON (with each variable rendered as 1): %v", err)
	}
	return nil
}

// CheckRequest reports each problem of r through report, keyed by the key's path
// inside the request ("pagination.token"), so a config's Validate can pass them to
// config.Validation.Errorf under its own prefix.
func CheckRequest(r *Request, report func(key, msg string)) {
	if strings.TrimSpace(r.URL) == "" {
		report("url", "must not be empty")
	}
	checkTemplates(r, report)
	method := strings.ToUpper(r.Method)
	if method != "" && method != "GET" && method != "POST" {
		report("method", "must be GET or POST")
	}
	if r.Body != "" && method != "POST" {
		report("body", "is sent only with method: POST")
	}
	if _, err := newJSONSelector(r.Records); err != nil {
		report("records", err.Error())
	}
	p := &r.Pagination
	need := func(key, val, typ string) {
		if val == "" {
			report("pagination."+key, "must be set for type "+typ)
			return
		}
		if _, err := newJSONSelector(val); err != nil {
			report("pagination."+key, err.Error())
		}
	}
	unused := func(key string, set bool, types string) {
		if set {
			report("pagination."+key, fmt.Sprintf("is used only by type %s, not %s", types, p.Type))
		}
	}
	typ := p.Type
	if typ == "" {
		typ = pageNone
	}
	switch typ {
	case pageNone, pageLinkHeader, pageNextURL, pageNumber, pageOffset, pageToken:
	default:
		report("pagination.type", "must be one of none, link_header, next_url, page, offset, token")
		return
	}
	if typ == pageNextURL {
		need("next_url", p.NextURL, typ)
	} else {
		unused("next_url", p.NextURL != "", pageNextURL)
	}
	if typ == pageToken {
		need("token", p.Token, typ)
	} else {
		unused("token", p.Token != "", pageToken)
	}
	counted := typ == pageNumber || typ == pageOffset
	if !counted && typ != pageToken {
		unused("param", p.Param != "", "page, offset or token")
	}
	if !counted {
		unused("size", p.Size != 0, "page or offset")
		unused("size_param", p.SizeParam != "", "page or offset")
	}
	if typ != pageNumber {
		unused("zero_based", p.ZeroBased, pageNumber)
	}
	if p.Size < 0 {
		report("pagination.size", "must not be negative")
	}
	if p.SizeParam != "" && p.Size == 0 {
		report("pagination.size_param", "needs pagination.size, the value to send")
	}
}

// CheckAuth reports each problem of a through report, keyed by the key inside the
// auth section: a missing key of its type, or a key that belongs to another type
// (a token written under type: basic is a mistake, not something to ignore).
func CheckAuth(a *Auth, report func(key, msg string)) {
	typ := a.Type
	if typ == "" {
		typ = "none"
	}
	type key struct {
		name string
		set  bool
		typ  string
	}
	keys := []key{
		{"token", a.Token != "", "bearer"},
		{"username", a.Username != "", "basic"},
		{"password", a.Password != "", "basic"},
		{"name", a.Name != "", "api_key"},
		{"value", a.Value != "", "api_key"},
		{"token_url", a.TokenURL != "", "oauth2"},
		{"client_id", a.ClientID != "", "oauth2"},
		{"client_secret", a.ClientSecret != "", "oauth2"},
		{"scopes", len(a.Scopes) > 0, "oauth2"},
	}
	switch typ {
	case "none", "bearer", "basic", "api_key", "oauth2":
	default:
		report("type", "must be one of none, bearer, basic, api_key, oauth2")
		return
	}
	optional := map[string]bool{"password": true, "scopes": true}
	for _, k := range keys {
		switch {
		case k.typ != typ && k.set:
			report(k.name, fmt.Sprintf("is used only by type %s, not %s", k.typ, typ))
		case k.typ == typ && !k.set && !optional[k.name]:
			report(k.name, "must be set for type "+typ)
		}
	}
	if in := a.In; in != "" && in != "header" && in != "query" {
		report("in", "must be header or query")
	}
	if typ == "api_key" && a.Name != "" && strings.ContainsAny(a.Name, " \t\r\n:=&?") {
		report("name", fmt.Sprintf("%q is not a header or parameter name", a.Name))
	}
	if typ == "oauth2" && a.TokenURL != "" {
		if u, err := url.Parse(a.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			report("token_url", "must be an absolute http(s) URL")
		}
	}
}
