package jsonschema

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/connectd/connectd/config"
)

// Hand-made kinds, shaped like the built-in ones, so the generator is tested on every
// field type without depending on them.

type envList []string

func (envList) ConfigType() string { return "list of NAME or NAME: value" }

func (*envList) JSONSchema() map[string]any {
	return Schema{"type": "array", "items": Schema{"anyOf": []any{
		Schema{"type": "string"},
		Schema{"type": "object", "minProperties": 1, "maxProperties": 1},
	}}}
}

type topKeys struct {
	Offsets string `yaml:"offsets" doc:"Where offsets live." required:"true"`
	Server  struct {
		Listen string `yaml:"listen" doc:"host:port."`
	} `yaml:"server" doc:"The status server."`
}

type destinationKeys struct {
	Flush struct {
		Rows     int64         `yaml:"rows" doc:"Rows." default:"1000000"`
		Bytes    config.Size   `yaml:"bytes" doc:"Bytes." default:"128MiB"`
		Interval time.Duration `yaml:"interval" doc:"Interval." default:"60s"`
	} `yaml:"flush" doc:"When to flush."`
}

type pgKeys struct {
	DSN       string        `yaml:"dsn" doc:"Where." required:"true" secret:"true"`
	Tables    []string      `yaml:"tables" doc:"Which." required:"true" example:"[public.orders, \"public.line_*\"]"`
	Snapshot  string        `yaml:"snapshot" doc:"When." default:"initial" enum:"initial,never"`
	Heartbeat time.Duration `yaml:"heartbeat" doc:"Beat."`
	Chunk     int           `yaml:"snapshot_chunk" doc:"Rows." default:"100000"`
	ServerID  uint32        `yaml:"server_id" doc:"An id."`
}

type pluginKeys struct {
	Name   string         `yaml:"name" doc:"Which."`
	Config map[string]any `yaml:"config" doc:"Passed as is."`
	Env    envList        `yaml:"env" doc:"Environment."`
}

type parquetKeys struct {
	URL string `yaml:"url" doc:"Where." required:"true"`
	S3  struct {
		PathStyle bool   `yaml:"path_style" doc:"Paths." default:"false"`
		Secret    string `yaml:"secret_access_key" doc:"Key." secret:"true"`
	} `yaml:"s3" doc:"S3."`
}

func testDocument() Document {
	return Document{
		ID:          "https://example.com/connectd.schema.json",
		Top:         &topKeys{},
		Destination: &destinationKeys{},
		Sources: []config.Spec{
			{Type: "postgres", Summary: "PostgreSQL.", New: func() any { return &pgKeys{} }},
			{Type: "plugin", New: func() any { return &pluginKeys{} }},
		},
		Destinations: []config.Spec{
			{Type: "parquet", New: func() any { return &parquetKeys{} }},
			{Type: "plugin", New: func() any { return &pluginKeys{} }},
		},
	}
}

func compile(t *testing.T, s Schema) *Validator {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Compile(raw)
	if err != nil {
		t.Fatalf("the generated schema does not compile: %v\n%s", err, raw)
	}
	return v
}

func validateYAML(t *testing.T, v *Validator, text string) []Problem {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	ps, err := v.Validate(doc)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

const goodFile = `
offsets: file:///tmp/o
server:
connectors:
  orders_eu-1:
    source:
      type: postgres
      dsn_file: /run/secrets/dsn
      tables: [public.orders, 123]
      snapshot: ${SNAPSHOT:-initial}
      heartbeat: 0
      snapshot_chunk: 1_000
      server_id: ${ID}
    destination:
      type: parquet
      url: s3://b/p
      s3: {path_style: yes, secret_access_key: x}
      flush: {rows: 10, bytes: 1.5GiB, interval: 1m30s}
  events:
    source:
      type: plugin
      name: jsonl
      config: {path: /x, anything: [1, 2]}
      env: [PATH, {TOKEN: abc}]
    destination:
      type: plugin
      name: ndjson
      flush: {bytes: 1048576, interval: 500ms}
  interpolated:
    source:
      type: postgres
      dsn: ${DSN}
      tables: ${TABLES}
    destination:
      type: parquet
      url: ${URL}
      s3: ${S3}
      flush: ${FLUSH}
`

func TestFileSchemaAcceptsWhatTheLoaderAccepts(t *testing.T) {
	s, err := File(testDocument())
	if err != nil {
		t.Fatal(err)
	}
	if ps := validateYAML(t, compile(t, s), goodFile); len(ps) > 0 {
		t.Fatalf("a valid file is refused: %v", ps)
	}
}

func TestFileSchemaRefusesBrokenFilesNamingTheKey(t *testing.T) {
	s, err := File(testDocument())
	if err != nil {
		t.Fatal(err)
	}
	v := compile(t, s)
	for _, c := range []struct{ old, new, want string }{
		{"      tables: [public.orders, 123]\n", "      tabels: [public.orders]\n", "connectors.orders_eu-1.source.tabels: unknown key"},
		{"      tables: [public.orders, 123]\n", "", "connectors.orders_eu-1.source.tables: required"},
		{"snapshot: ${SNAPSHOT:-initial}", "snapshot: sometimes", "connectors.orders_eu-1.source.snapshot: value must be one of"},
		{"heartbeat: 0", "heartbeat: 5", "connectors.orders_eu-1.source.heartbeat: got number, want string"},
		{"heartbeat: 0", "heartbeat: soon", "connectors.orders_eu-1.source.heartbeat: must be a duration such as 30s, 5m or 1h30m, got \"soon\""},
		{"interval: 1m30s", "interval: 90", "connectors.orders_eu-1.destination.flush.interval"},
		{"bytes: 1.5GiB", "bytes: lots", "connectors.orders_eu-1.destination.flush.bytes: must be a size such as 128MiB, 64KB or 1048576, got \"lots\""},
		{"path_style: yes", "path_style: maybe", "connectors.orders_eu-1.destination.s3.path_style: must be true or false, got \"maybe\""},
		{"snapshot_chunk: 1_000", "snapshot_chunk: many", "connectors.orders_eu-1.source.snapshot_chunk: must be a whole number, got \"many\""},
		{"server_id: ${ID}", "server_id: -1", "connectors.orders_eu-1.source.server_id: minimum"},
		{"dsn_file: /run/secrets/dsn", "dsn: x\n      dsn_file: /y", "connectors.orders_eu-1.source"},
		{"dsn_file: /run/secrets/dsn", "slot: x", "connectors.orders_eu-1.source.slot: unknown key"},
		{"type: postgres", "type: oracle", "connectors.orders_eu-1.source.type: value must be one of 'postgres', 'plugin'"},
		{"      name: ndjson\n", "      name: ndjson\n      url: file:///x\n", "connectors.events.destination.url: unknown key"},
		{"  events:", "  bad name:", "connectors.bad name: unknown key"},
		{"offsets: file:///tmp/o", "offset: file:///tmp/o", "offsets: required"},
		{"env: [PATH, {TOKEN: abc}]", "env: [{}]", "connectors.events.source.env[0]"},
	} {
		text := strings.Replace(goodFile, c.old, c.new, 1)
		if text == goodFile {
			t.Fatalf("%q is not in the file", c.old)
		}
		ps := validateYAML(t, v, text)
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if !strings.Contains(strings.Join(got, "\n"), c.want) {
			t.Errorf("%q -> %q: problems %q, want one containing %q", c.old, c.new, got, c.want)
		}
	}
}

func TestSectionCarriesDefaultsExamplesAndDescriptions(t *testing.T) {
	s, err := Section(&pgKeys{})
	if err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(Schema)
	if d := props["snapshot_chunk"].(Schema)["default"]; d != int64(100000) {
		t.Errorf("snapshot_chunk default %v (%T)", d, d)
	}
	if d := props["snapshot"].(Schema)["default"]; d != "initial" {
		t.Errorf("snapshot default %v", d)
	}
	if d := props["dsn"].(Schema)["description"]; d != "Where." {
		t.Errorf("dsn description %v", d)
	}
	if ex, _ := json.Marshal(props["tables"].(Schema)["examples"]); string(ex) != `[["public.orders","public.line_*"]]` {
		t.Errorf("tables examples %s, want the YAML example as a list", ex)
	}
	if _, ok := props["dsn_file"]; !ok {
		t.Errorf("no dsn_file beside the secret dsn: %v", props)
	}
	if _, err := Section(struct{ A chan int }{}); err == nil {
		t.Error("an undecodable struct gave a schema")
	}
}

// httpKeys has a list of sections and mappings of strings, like a source of JSON APIs.
type httpKeys struct {
	Headers map[string]string `yaml:"headers" doc:"Sent with every request."`
	Streams []struct {
		Name   string            `yaml:"name" doc:"Its name." required:"true"`
		URL    string            `yaml:"url" doc:"Where." required:"true"`
		Method string            `yaml:"method" doc:"How." default:"GET" enum:"GET,POST"`
		Token  string            `yaml:"token" doc:"A token." secret:"true"`
		Every  time.Duration     `yaml:"every" doc:"How often." default:"1m"`
		Query  map[string]string `yaml:"query" doc:"Parameters."`
		Cursor struct {
			Field string `yaml:"field" doc:"Orders the records."`
		} `yaml:"cursor" doc:"Incremental reads."`
	} `yaml:"streams" doc:"The endpoints." required:"true" example:"[{name: orders, url: 'https://x/orders'}]"`
}

const goodHTTP = `
headers:
  Accept: application/json
  X-Retries: 3
  X-Empty:
streams:
  - name: orders
    url: https://api.example.com/orders
    token_file: /run/secrets/token
  - name: customers
    url: ${API}/customers
    method: POST
    every: 5m
    query: {page_size: 100, since: "${SINCE}"}
    cursor: {field: updated_at}
  - ${STREAM}
  - name: refunds
    url: https://api.example.com/refunds
    cursor:
`

func TestSectionOfAListOfSectionsValidatesEachItem(t *testing.T) {
	s, err := Section(&httpKeys{})
	if err != nil {
		t.Fatal(err)
	}
	v := compile(t, s)
	if ps := validateYAML(t, v, goodHTTP); len(ps) > 0 {
		t.Fatalf("a valid section is refused: %v", ps)
	}
	for _, c := range []struct{ old, new, want string }{
		{"    url: https://api.example.com/refunds\n", "    ulr: https://api.example.com/refunds\n", "streams[3].ulr: unknown key"},
		{"    url: https://api.example.com/refunds\n", "", "streams[3].url: required"},
		{"  - name: refunds\n", "  - nam: refunds\n", "streams[3].name: required"},
		{"method: POST", "method: PATCH", "streams[1].method: value must be one of 'GET', 'POST'"},
		{"every: 5m", "every: often", "streams[1].every: must be a duration"},
		{"    token_file: /run/secrets/token\n", "    token_file: /run/secrets/token\n    token: x\n", "streams[0]"},
		{"cursor: {field: updated_at}", "cursor: {feild: updated_at}", "streams[1].cursor.feild: unknown key"},
		{"X-Retries: 3", "X-Retries: [1, 2]", "headers.X-Retries: got array"},
		{"page_size: 100", "page_size: {max: 100}", "streams[1].query.page_size: got object"},
		{"  - ${STREAM}\n", "  -\n", "streams[2]: got null, want object"},
		{"  - ${STREAM}\n", "  - orders\n", "streams[2]: got string, want object"},
	} {
		text := strings.Replace(goodHTTP, c.old, c.new, 1)
		if text == goodHTTP {
			t.Fatalf("%q is not in the section", c.old)
		}
		var got []string
		for _, p := range validateYAML(t, v, text) {
			got = append(got, p.String())
		}
		if !strings.Contains(strings.Join(got, "\n"), c.want) {
			t.Errorf("%q -> %q: problems %q, want one containing %q", c.old, c.new, got, c.want)
		}
	}
	for _, text := range []string{"streams: ${STREAMS}\nheaders: ${HEADERS}\n", "streams:\nheaders:\n"} {
		if ps := validateYAML(t, v, text); len(ps) > 0 {
			t.Errorf("%q is refused: %v", text, ps)
		}
	}
}

func TestListOfSectionsSchemaCarriesTheItemsKeys(t *testing.T) {
	s, err := Section(&httpKeys{})
	if err != nil {
		t.Fatal(err)
	}
	streams := s["properties"].(Schema)["streams"].(Schema)
	if ex, _ := json.Marshal(streams["examples"]); string(ex) != `[[{"name":"orders","url":"https://x/orders"}]]` {
		t.Errorf("streams examples %s", ex)
	}
	list := streams["anyOf"].([]any)[0].(Schema)
	item := list["items"].(Schema)["anyOf"].([]any)[0].(Schema)
	props := item["properties"].(Schema)
	if d := props["method"].(Schema)["default"]; d != "GET" {
		t.Errorf("method default %v", d)
	}
	if _, ok := props["token_file"]; !ok {
		t.Errorf("no token_file beside the secret token: %v", props)
	}
	if r, _ := json.Marshal(item["required"]); string(r) != `["name","url"]` || item["additionalProperties"] != false {
		t.Errorf("item required %s, additionalProperties %v", r, item["additionalProperties"])
	}
}
