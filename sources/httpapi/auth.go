package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// authenticator adds credentials to a request.
type authenticator struct {
	apply func(r *http.Request) error
	// invalidate drops a cached token after the API refused it (oauth2 only), so the
	// next request fetches a new one; nil for the other types.
	invalidate func()
	// queryName is the api_key's query parameter, for redaction.
	queryName string
}

// newAuthenticator builds a's credentials; tokenClient fetches OAuth2 tokens.
func newAuthenticator(a *Auth, tokenClient *http.Client) (*authenticator, error) {
	if a == nil {
		return nil, nil
	}
	switch a.Type {
	case "", "none":
		return nil, nil
	case "bearer":
		h := "Bearer " + a.Token
		return &authenticator{apply: func(r *http.Request) error {
			r.Header.Set("Authorization", h)
			return nil
		}}, nil
	case "basic":
		return &authenticator{apply: func(r *http.Request) error {
			r.SetBasicAuth(a.Username, a.Password)
			return nil
		}}, nil
	case "api_key":
		name, value := a.Name, a.Value
		if name == "" {
			return nil, fmt.Errorf("auth: api_key needs a name")
		}
		if a.In == "query" {
			return &authenticator{queryName: name, apply: func(r *http.Request) error {
				q := r.URL.Query()
				q.Set(name, value)
				r.URL.RawQuery = q.Encode()
				return nil
			}}, nil
		}
		return &authenticator{apply: func(r *http.Request) error {
			r.Header.Set(name, value)
			return nil
		}}, nil
	case "oauth2":
		s := &oauthSource{client: tokenClient, cfg: &clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes,
		}}
		return &authenticator{apply: s.apply, invalidate: s.invalidate}, nil
	}
	return nil, fmt.Errorf("auth: unknown type %q", a.Type)
}

// oauthSource caches a client credentials token until it expires (less a margin,
// oauth2.Token.Valid). It stands in for oauth2.ReuseTokenSource for two reasons: a
// token fetch then runs under the request's context, so cancelling a sync ends it,
// and a token the API refuses before its expiry can be dropped.
type oauthSource struct {
	cfg    *clientcredentials.Config
	client *http.Client

	mu  sync.Mutex
	tok *oauth2.Token
}

func (s *oauthSource) apply(r *http.Request) error {
	tok, err := s.token(r.Context())
	if err != nil {
		return err
	}
	tok.SetAuthHeader(r)
	return nil
}

func (s *oauthSource) token(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Valid() {
		return s.tok, nil
	}
	tok, err := s.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, s.client))
	if err != nil {
		return nil, &tokenError{err: err}
	}
	s.tok = tok
	return tok, nil
}

func (s *oauthSource) invalidate() {
	s.mu.Lock()
	s.tok = nil
	s.mu.Unlock()
}

// tokenError is a failure to get an OAuth2 token.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "oauth2: fetching a token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// authTransport adds credentials to the requests for one host only: a next-page URL
// from the API's response, or a redirect, that leads elsewhere goes without them.
type authTransport struct {
	base http.RoundTripper
	host string
	auth *authenticator
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.host) {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context()) // a RoundTripper must not change its request
	if err := t.auth.apply(r); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(r)
	if resp != nil {
		// The response names the request without the credentials: next-page links
		// are resolved against its URL, and errors may show it.
		resp.Request = req
	}
	return resp, err
}

// Redact returns u as text for errors and logs: the userinfo is replaced by xxxxx,
// and so is the value of each query parameter whose name suggests a secret (api_key,
// access_token, signature, password and the like).
func Redact(u *url.URL) string { return redactURL(u, "") }

// redactURL is Redact that also hides the query parameter named extra (the api_key
// auth's name, whatever it is).
func redactURL(u *url.URL, extra string) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.User != nil {
		c.User = url.User("xxxxx")
	}
	if c.RawQuery != "" {
		c.RawQuery = redactQuery(c.RawQuery, extra)
	}
	return c.String()
}

// redactQuery keeps the query as written (order and encoding), values hidden.
func redactQuery(q, extra string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if secretParam(name) || (extra != "" && strings.EqualFold(name, extra)) {
			parts[i] = k + "=xxxxx"
		}
	}
	return strings.Join(parts, "&")
}

// secretWords are parts of query parameter names that carry credentials (api_key,
// apikey, access_token, client_secret, sig, X-Amz-Signature, X-Amz-Credential,
// password, auth, session ids). Hiding a page token too is the price of the rule.
var secretWords = []string{"key", "token", "secret", "passw", "sig", "auth", "credential", "session"}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
