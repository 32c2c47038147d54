package httpapi

import (
	"fmt"
	"strconv"
	"time"

	"github.com/connectd/connectd/config"
)

// Config is the source section of `type: http` (README).
type Config struct {
	Namespace   string            `yaml:"namespace" required:"the lake namespace of the streams' tables, e.g. shop" doc:"The lake namespace (schema) every stream's table is written under."`
	BaseURL     string            `yaml:"base_url" doc:"Prefix of every stream's url that is not absolute." example:"https://api.example.com/v1"`
	Auth        Auth              `yaml:"auth" doc:"How requests authenticate (secrets from ${VAR} or *_file keys only)."`
	Headers     map[string]string `yaml:"headers" doc:"Headers sent with every request (a stream's own headers win)."`
	Interval    time.Duration     `yaml:"interval" default:"1m" doc:"Pause between two rounds of polls in connectd run (a round polls every stream once; sync runs one round)."`
	Timeout     time.Duration     `yaml:"timeout" default:"30s" doc:"Bound of one request, body included."`
	Rate        int               `yaml:"rate" default:"10" doc:"Requests per second at most, per stream."`
	MaxAttempts int               `yaml:"max_attempts" default:"8" doc:"Attempts of one request before the source fails: 429, 503 (after Retry-After), other 5xx and network errors are retried with exponential backoff and jitter."`
	UserAgent   string            `yaml:"user_agent" default:"connectd" doc:"The User-Agent header."`
	Streams     []Stream          `yaml:"streams" required:"at least one stream: a name, a url, a primary_key" doc:"The API endpoints polled, each written as one table named after the stream."`
}

// Stream is one endpoint: one table in the lake.
type Stream struct {
	Name       string            `yaml:"name" required:"true" doc:"The stream's name, which is its table's name in the lake."`
	URL        string            `yaml:"url" required:"true" doc:"The endpoint, absolute or relative to base_url; may hold {{ cursor }}, {{ next_page_token }}, {{ window.start }}, {{ window.end }}." example:"/orders?updated_since={{ cursor }}"`
	Method     string            `yaml:"method" default:"GET" enum:"GET,POST" doc:"The HTTP method."`
	Headers    map[string]string `yaml:"headers" doc:"Headers of this stream's requests; values may be templated like url."`
	Params     map[string]string `yaml:"params" doc:"Query parameters; values may be templated like url (and are URL-escaped)."`
	Body       string            `yaml:"body" doc:"A JSON body for POST; may be templated like url (values are JSON-escaped)."`
	Records    string            `yaml:"records" doc:"Where the array of records is in the response: a JSON pointer (/data/items) or a JSONPath ($.data.items[*]); empty: the response is the array."`
	Pagination Pagination        `yaml:"pagination" doc:"How the next page is asked for."`
	PrimaryKey []string          `yaml:"primary_key" required:"the fields that identify a record, e.g. [id]" doc:"Top-level fields of a record that identify it (the table's key)."`
	Cursor     Cursor            `yaml:"cursor" doc:"The field whose highest value is the stream's offset; without one every round reads the whole endpoint."`
	Deleted    Deleted           `yaml:"deleted" doc:"How the API marks a deleted record, if it does."`
	Schema     []ColumnDecl      `yaml:"schema" doc:"Declared columns; the other fields of the records are inferred (README: \"Schema\")."`
	Flatten    int               `yaml:"flatten" doc:"Nested objects are flattened into parent_child columns to this depth; deeper ones are JSON."`
	// DeclaredOnly keeps a stream's table to what it declares.
	DeclaredOnly bool `yaml:"declared_only" doc:"Only the declared columns and the key: other fields of the records are left out instead of inferred."`
}

// Cursor is a stream's incremental cursor.
type Cursor struct {
	Field    string        `yaml:"field" doc:"The top-level field of a record holding its cursor value (an updated_at, a sequence number)."`
	Type     string        `yaml:"type" default:"time" enum:"time,int,string" doc:"time: RFC 3339; int: an integer; string: compared byte by byte."`
	Start    string        `yaml:"start" doc:"The cursor of the first request; empty: the template's {{ cursor }} is empty."`
	Lookback time.Duration `yaml:"lookback" default:"1m" doc:"time cursors: each round asks from the highest value seen minus this, and drops the records it already delivered (by key and content): what a pass can miss is recovered by the next, a record committed with an earlier timestamp than one already seen (a long transaction) or shifted out of an offset-paged list while it changed. Keep it longer than a round's pass and the API's longest write; 0 turns it off."`
	Window   time.Duration `yaml:"window" doc:"time cursors: ask in windows of this length from the cursor to now, for APIs that take a from/to range ({{ window.start }}, {{ window.end }}); needs cursor.start."`
}

// Deleted says which records are deletions: those whose field holds value.
type Deleted struct {
	Field string `yaml:"field" doc:"The top-level field that marks a deleted record."`
	Value string `yaml:"value" default:"true" doc:"The field's value (as JSON text: true, \"deleted\", 1) that means deleted."`
}

// ConfigSpec describes the `type: http` source section.
func (Kind) ConfigSpec() config.Spec {
	return config.Spec{Type: "http", Summary: "JSON APIs polled incrementally: pagination, cursors, auth, retries; one table per stream.",
		New: func() any { return &Config{} }}
}

// Validate checks what the tags cannot: unique stream names, the requests and their
// templates, the auth, cursor starts.
func (c *Config) Validate(v *config.Validation) {
	if v.Set("auth") {
		CheckAuth(&c.Auth, func(key, msg string) { v.Errorf("auth."+key, "%s", msg) })
	}
	seen := map[string]bool{}
	for i := range c.Streams {
		s := &c.Streams[i]
		at := func(key string) string { return fmt.Sprintf("streams[%d].%s", i, key) }
		if seen[s.Name] {
			v.Errorf(at("name"), "stream %q is named twice", s.Name)
		}
		seen[s.Name] = true
		CheckRequest(s.request(), func(key, msg string) { v.Errorf(at(key), "%s", msg) })
		if len(s.PrimaryKey) == 0 {
			v.Errorf(at("primary_key"), "a stream needs the fields that identify a record, e.g. [id]")
		}
		if s.Cursor.Start != "" {
			if _, err := parseCursor(s.Cursor.Type, s.Cursor.Start); err != nil {
				v.Errorf(at("cursor.start"), "%v", err)
			}
		}
		if v.Set(at("cursor.lookback")) && s.Cursor.Lookback != 0 && s.Cursor.Type != "time" && s.Cursor.Type != "" {
			v.Errorf(at("cursor.lookback"), "a lookback needs a time cursor (type: time), not %s", s.Cursor.Type)
		}
		if s.Cursor.Window != 0 && (s.Cursor.Type != "time" && s.Cursor.Type != "" || s.Cursor.Start == "") {
			v.Errorf(at("cursor.window"), "windows need a time cursor (type: time) and a cursor.start")
		}
		if s.Cursor.Field == "" && s.Cursor.Start != "" {
			v.Errorf(at("cursor.start"), "a start needs cursor.field")
		}
	}
}

// request is the stream's request section as the client takes it.
func (s *Stream) request() *Request {
	return &Request{URL: s.URL, Method: s.Method, Headers: s.Headers, Params: s.Params, Body: s.Body,
		Records: s.Records, Pagination: s.Pagination}
}

// parseCursor reads a cursor value of the given type from its text.
func parseCursor(typ, text string) (cursorValue, error) {
	switch typ {
	case "int":
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return cursorValue{}, fmt.Errorf("cursor %q is not an integer", text)
		}
		return cursorValue{ord: appendOrderedInt(nil, n), text: text, num: n}, nil
	case "string":
		return cursorValue{ord: appendOrdered(nil, []byte(text)), text: text}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return cursorValue{}, fmt.Errorf("cursor %q is not an RFC 3339 time", text)
	}
	us := t.UnixMicro()
	return cursorValue{ord: appendOrderedInt(nil, us), text: text, num: us}, nil
}
