package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
)

// feed is a source kind that exists only in these tests, shaped like a source of JSON
// APIs: a list of streams, each a section of its own, and mappings of strings (HTTP
// headers, query parameters).

type feedConfig struct {
	BaseURL string            `yaml:"base_url" required:"true" doc:"The API's root."`
	Headers map[string]string `yaml:"headers" doc:"Sent with every request."`
	Streams []feedStream      `yaml:"streams" required:"the endpoints to read, each with a name and url" doc:"The endpoints read, one table each."`
}

type feedStream struct {
	Name   string            `yaml:"name" required:"true" doc:"The stream's name."`
	URL    string            `yaml:"url" required:"true" doc:"Where to read it."`
	Method string            `yaml:"method" default:"GET" enum:"GET,POST" doc:"The HTTP method."`
	Token  string            `yaml:"token" secret:"true" doc:"A bearer token."`
	Every  time.Duration     `yaml:"every" default:"1m" doc:"How often to poll."`
	Query  map[string]string `yaml:"query" doc:"Query parameters."`
	Table  string            `yaml:"table" defaultdoc:"<connector>_<name>" doc:"The table written."`
	Cursor struct {
		Field string `yaml:"field" doc:"The field that orders the records."`
		Start string `yaml:"start" default:"0" doc:"The cursor's first value."`
	} `yaml:"cursor" doc:"Incremental reads."`
}

// Validate checks one stream, with keys relative to it.
func (s *feedStream) Validate(v *config.Validation) {
	if v.Set("url") && !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
		v.Errorf("url", "must be an http:// or https:// URL")
	}
	if v.Set("every") && s.Every <= 0 {
		v.Errorf("every", "must be greater than 0")
	}
	if v.Set("cursor.start") && !v.Set("cursor.field") {
		v.Errorf("cursor.field", "required when cursor.start is set")
	}
	if !v.Set("table") {
		s.Table = v.Connector() + "_" + s.Name
	}
}

// Validate checks what no single stream can: that there is one, and no name twice.
func (c *feedConfig) Validate(v *config.Validation) {
	if v.Set("streams") && len(c.Streams) == 0 {
		v.Errorf("streams", "must list at least one stream")
	}
	first := map[string]int{}
	for i, s := range c.Streams {
		key := fmt.Sprintf("streams[%d].name", i)
		if !v.Set(key) {
			continue
		}
		if j, dup := first[s.Name]; dup {
			v.Errorf(key, "%q is also the name of streams[%d]", s.Name, j)
			continue
		}
		first[s.Name] = i
	}
}

// withFeed adds the feed source kind to the built-in kinds.
type withFeed struct{ config.Kinds }

func (k withFeed) SourceTypes() []string { return append(k.Kinds.SourceTypes(), "feed") }

func (k withFeed) SourceSpec(typ string) (config.Spec, bool) {
	if typ == "feed" {
		return config.Spec{Type: "feed", Summary: "JSON APIs.", New: func() any { return &feedConfig{} }}, true
	}
	return k.Kinds.SourceSpec(typ)
}

func parseFeed(path string, data []byte, lookup func(string) (string, bool)) (*config.Config, error) {
	return config.Parse(path, data, lookup, withFeed{kinds})
}

func feedOf(s config.Source) *feedConfig { c, _ := s.Config.(*feedConfig); return c }

// feedStreams is the streams key of validFeed, lines 10 to 20.
const feedStreams = `      streams:
        - name: orders
          url: https://api.example.com/orders
        - name: customers
          url: https://api.example.com/customers
          method: POST
          every: 5m
          query: {page_size: 100, empty: }
          cursor: {field: updated_at}
        - name: refunds
          url: https://api.example.com/refunds
`

const validFeed = `offsets: file:///var/lib/connectd
connectors:
  api:
    source:
      type: feed
      base_url: https://api.example.com
      headers:
        Accept: application/json
        X-Retries: 3
` + feedStreams + `    destination:
      type: parquet
      url: file:///data/lake
`

func TestListOfSectionsDecodesEachItemWithItsDefaults(t *testing.T) {
	cfg, err := parseFeed("c.yaml", []byte(validFeed), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := feedOf(cfg.Connectors["api"].Source)
	stream := func(name, url, method string, every time.Duration) feedStream {
		s := feedStream{Name: name, URL: url, Method: method, Every: every, Table: "api_" + name}
		s.Cursor.Start = "0"
		return s
	}
	want := &feedConfig{
		BaseURL: "https://api.example.com",
		Headers: map[string]string{"Accept": "application/json", "X-Retries": "3"},
		Streams: []feedStream{
			stream("orders", "https://api.example.com/orders", "GET", time.Minute),
			stream("customers", "https://api.example.com/customers", "POST", 5*time.Minute),
			stream("refunds", "https://api.example.com/refunds", "GET", time.Minute),
		},
	}
	want.Streams[1].Query = map[string]string{"page_size": "100", "empty": ""}
	want.Streams[1].Cursor.Field = "updated_at"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("config:\n got %+v\nwant %+v", got, want)
	}
}

func TestListOfSectionsErrorsNameTheItemAndItsLine(t *testing.T) {
	const item2 = "        - name: refunds\n          url: https://api.example.com/refunds\n"
	cases := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"unknown key in an item", item2, "        - name: refunds\n          ulr: https://api.example.com/refunds\n",
			[]string{
				`c.yaml:19: connectors.api.source.streams[2].url: required`,
				`c.yaml:20: connectors.api.source.streams[2].ulr: unknown key (did you mean "url"?)`,
			}},
		{"required key missing in an item", item2, "        - url: https://api.example.com/refunds\n",
			[]string{`c.yaml:19: connectors.api.source.streams[2].name: required`}},
		{"enum in an item", "method: POST", "method: PATCH",
			[]string{`c.yaml:15: connectors.api.source.streams[1].method: must be one of GET, POST; got "PATCH"`}},
		{"type of a value in an item", "every: 5m", "every: often",
			[]string{`c.yaml:16: connectors.api.source.streams[1].every: must be a duration such as 30s, 5m or 1h30m, got "often"`}},
		{"nested section in an item", "cursor: {field: updated_at}", "cursor: {feild: updated_at}",
			[]string{`c.yaml:18: connectors.api.source.streams[1].cursor.feild: unknown key (did you mean "field"?)`}},
		{"item's Validate on a key it sets", "https://api.example.com/refunds", "ftp://api.example.com/refunds",
			[]string{`c.yaml:20: connectors.api.source.streams[2].url: must be an http:// or https:// URL`}},
		{"item's Validate on a nested key left out", "cursor: {field: updated_at}", "cursor: {start: '2024-01-01'}",
			[]string{`c.yaml:13: connectors.api.source.streams[1].cursor.field: required when cursor.start is set`}},
		{"problems of several items, in line order", item2, "        - name: refunds\n          url: https://api.example.com/refunds\n          every: 0s\n        - {name: orders, url: x}\n",
			[]string{
				`c.yaml:21: connectors.api.source.streams[2].every: must be greater than 0`,
				`c.yaml:22: connectors.api.source.streams[3].url: must be an http:// or https:// URL`,
				`c.yaml:22: connectors.api.source.streams[3].name: "orders" is also the name of streams[0]`,
			}},
		{"parent's Validate across items", "name: refunds", "name: orders",
			[]string{`c.yaml:19: connectors.api.source.streams[2].name: "orders" is also the name of streams[0]`}},
		{"required list missing", "      streams:\n", "      streamz:\n",
			[]string{
				`c.yaml:4: connectors.api.source.streams: required: the endpoints to read, each with a name and url`,
				`c.yaml:10: connectors.api.source.streamz: unknown key (did you mean "streams"?)`,
			}},
		{"empty list", feedStreams, "      streams: []\n",
			[]string{`c.yaml:10: connectors.api.source.streams: must list at least one stream`}},
		{"not a list", "      streams:\n        - name: orders\n          url: https://api.example.com/orders\n", "      streams: orders\n      x:\n        - name: orders\n          url: https://api.example.com/orders\n",
			[]string{
				`c.yaml:10: connectors.api.source.streams: must be a list of sections (items of key: value), got a string`,
				`c.yaml:11: connectors.api.source.x: unknown key (known keys: base_url, headers, streams, type)`,
			}},
		{"item not a mapping", "        - name: orders\n          url: https://api.example.com/orders\n", "        - orders\n",
			[]string{`c.yaml:11: connectors.api.source.streams[0]: must be a mapping of keys to values, got a string`}},
		{"stray dash", "        - name: orders\n", "        -\n        - name: orders\n",
			[]string{`c.yaml:11: connectors.api.source.streams[0]: must be a mapping of keys to values, got nothing`}},
		{"string map value not a scalar", "X-Retries: 3", "X-Retries: [1, 2]",
			[]string{`c.yaml:9: connectors.api.source.headers.X-Retries: must be a single value, got a list`}},
		{"string map in an item", "page_size: 100", "page_size: {max: 100}",
			[]string{`c.yaml:17: connectors.api.source.streams[1].query.page_size: must be a single value, got a mapping`}},
		{"string map not a mapping", "      headers:\n        Accept: application/json\n        X-Retries: 3\n", "      headers: [Accept]\n",
			[]string{`c.yaml:7: connectors.api.source.headers: must be a mapping of names to values, got a list`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(validFeed, c.old, c.new, 1)
			if src == validFeed {
				t.Fatalf("%q is not in the file", c.old)
			}
			got := feedErrLines(t, src)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

func feedErrLines(t *testing.T, src string) []string {
	t.Helper()
	_, err := parseFeed("c.yaml", []byte(src), nil)
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestItemsShareSettingsThroughMergeKeys(t *testing.T) {
	src := strings.Replace(validFeed, "        - name: refunds\n          url: https://api.example.com/refunds\n",
		"        - &post {name: refunds, url: https://api.example.com/refunds, method: POST}\n        - {<<: *post, name: payouts}\n", 1)
	cfg, err := parseFeed("c.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := feedOf(cfg.Connectors["api"].Source).Streams
	if len(s) != 4 || s[3].Name != "payouts" || s[3].URL != "https://api.example.com/refunds" || s[3].Method != "POST" || s[3].Every != time.Minute {
		t.Fatalf("streams %+v", s)
	}
}

func TestSecretOfAnItemReadsItsFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "c.yaml")
	src := strings.Replace(validFeed, "          method: POST\n", "          method: POST\n          token_file: token\n", 1)
	cfg, err := parseFeed(path, []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := feedOf(cfg.Connectors["api"].Source).Streams; s[1].Token != "t0ken" || s[0].Token != "" {
		t.Fatalf("tokens %q %q", s[0].Token, s[1].Token)
	}
	for name, c := range map[string]struct{ new, want string }{
		"both":       {"          token: x\n          token_file: token\n", `c.yaml:17: connectors.api.source.streams[1].token_file: set token or token_file, not both`},
		"unreadable": {"          token_file: nothing\n", `c.yaml:16: connectors.api.source.streams[1].token_file: cannot read ` + filepath.Join(dir, "nothing") + `: no such file or directory`},
	} {
		src := strings.Replace(validFeed, "          method: POST\n", "          method: POST\n"+c.new, 1)
		_, err := parseFeed(path, []byte(src), nil)
		if err == nil || strings.ReplaceAll(err.Error(), path, "c.yaml") != c.want {
			t.Errorf("%s: error %v, want %s", name, err, c.want)
		}
	}
}

func TestApplyDefaultsFillsEachItemOfAGoBuiltConfig(t *testing.T) {
	c := &feedConfig{BaseURL: "https://x", Streams: []feedStream{{Name: "a"}, {Name: "b", Method: "POST", Every: time.Second}}}
	c.Streams[1].Cursor.Start = "42"
	if err := config.ApplyDefaults(c); err != nil {
		t.Fatal(err)
	}
	a, b := c.Streams[0], c.Streams[1]
	if a.Method != "GET" || a.Every != time.Minute || a.Cursor.Start != "0" {
		t.Errorf("first item %+v", a)
	}
	if b.Method != "POST" || b.Every != time.Second || b.Cursor.Start != "42" {
		t.Errorf("second item %+v", b)
	}
	if c.Headers != nil {
		t.Errorf("headers %v, want none", c.Headers)
	}
}

func TestFieldsOfDescribesListItemsAndStringMaps(t *testing.T) {
	fs, err := config.FieldsOf(&feedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if fs[1].Type != config.FieldStrings || fs[2].Type != config.FieldSections || !fs[2].Required {
		t.Fatalf("fields %+v", fs)
	}
	var keys []string
	for _, f := range fs[2].Fields {
		keys = append(keys, f.Key+":"+f.Type)
	}
	if got, want := strings.Join(keys, " "), "name:string url:string method:string token:string every:duration query:mapping of strings table:string cursor:section"; got != want {
		t.Errorf("item keys %q, want %q", got, want)
	}
	if m := fs[2].Fields[2]; m.Default != "GET" || strings.Join(m.Enum, ",") != "GET,POST" {
		t.Errorf("method %+v", m)
	}
}

func TestAliasesCannotMultiplyItemsWithoutBound(t *testing.T) {
	var q, items strings.Builder
	for i := range 400 {
		fmt.Fprintf(&q, "k%d: v, ", i)
	}
	for range 300 {
		items.WriteString("*s, ")
	}
	src := strings.Replace(validFeed, feedStreams,
		"      streams: [&s {name: a, url: http://x, query: {"+q.String()+"}}, "+items.String()+"]\n", 1)
	_, err := parseFeed("c.yaml", []byte(src), nil)
	if err == nil || !strings.Contains(err.Error(), "too many values (more than 100000 after expanding aliases)") {
		t.Fatalf("error %v", err)
	}
}
