package reference

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/config/jsonschema"
)

type s3Example struct {
	Endpoint string `yaml:"endpoint" doc:"An S3-compatible server." defaultdoc:"AWS" example:"http://127.0.0.1:9000"`
	Secret   string `yaml:"secret_access_key" doc:"A static key" secret:"true"`
}

type sectionExample struct {
	URL         string        `yaml:"url" doc:"Where files go | a URL." required:"true" example:"s3://b/p"`
	S3          s3Example     `yaml:"s3" doc:"S3 settings."`
	Compression string        `yaml:"compression" doc:"The codec." default:"zstd" enum:"zstd,none"`
	Every       time.Duration `yaml:"every" doc:"How often." default:"30s"`
}

func fields(t *testing.T, v any) []config.Field {
	t.Helper()
	fs, err := config.FieldsOf(v)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestTableHasOneRowPerKeyWithNestedPathsEnumsAndSecretFiles(t *testing.T) {
	got := Table(fields(t, &sectionExample{}))
	want := "| key | type | default | required | description | example |\n" +
		"|---|---|---|---|---|---|\n" +
		"| `url` | string |  | yes | Where files go \\| a URL. | `s3://b/p` |\n" +
		"| `s3.endpoint` | string | AWS |  | An S3-compatible server. | `http://127.0.0.1:9000` |\n" +
		"| `s3.secret_access_key` | string |  |  | A static key. `s3.secret_access_key_file` instead reads the value from a file. |  |\n" +
		"| `compression` | string | `zstd` |  | The codec. One of `zstd`, `none`. |  |\n" +
		"| `every` | duration | `30s` |  | How often. |  |\n"
	if got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestRewriteReplacesOnlyTheMarkedPartsAndKeepsProse(t *testing.T) {
	doc := "# Title\n\nProse stays.\n\n" + Begin("source a") + "\nold table\n" + endMarker + "\n\nMore prose.\n" +
		Begin("b") + "\n" + endMarker + "\ntail\n"
	got, err := Rewrite([]byte(doc), map[string]string{"source a": "new A\n", "b": "new B"})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nProse stays.\n\n" + Begin("source a") + "\nnew A\n" + endMarker + "\n\nMore prose.\n" +
		Begin("b") + "\nnew B\n" + endMarker + "\ntail\n"
	if string(got) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	again, err := Rewrite(got, map[string]string{"source a": "new A\n", "b": "new B"})
	if err != nil || string(again) != want {
		t.Fatalf("a second rewrite changed the document (%v):\n%s", err, again)
	}
}

func TestRewriteNamesMissingStrayAndUnclosedParts(t *testing.T) {
	part := Begin("a") + "\nx\n" + endMarker + "\n"
	for name, c := range map[string]struct {
		doc   string
		parts map[string]string
		want  string
	}{
		"kind without a place": {part, map[string]string{"a": "", "source new": ""}, `no place for source new: add <!-- BEGIN GENERATED: source new -->`},
		"place without a kind": {part, map[string]string{}, `part "a" that nothing generates`},
		"unclosed":             {Begin("a") + "\nx\n" + Begin("b") + "\n" + endMarker + "\n", map[string]string{"a": "", "b": ""}, `part "a" has no <!-- END GENERATED -->`},
		"twice":                {part + part, map[string]string{"a": ""}, `part "a" appears twice`},
		"malformed":            {"<!-- BEGIN GENERATED: a\n", map[string]string{"a": ""}, "malformed marker"},
	} {
		_, err := Rewrite([]byte(c.doc), c.parts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, c.want)
		}
	}
}

type pluginExample struct {
	Name string `yaml:"name" doc:"Which."`
}

type flushExample struct {
	Flush struct {
		Rows int `yaml:"rows" doc:"Rows." default:"10"`
	} `yaml:"flush" doc:"When."`
}

func TestPartsNameEachKindAndShowASharedTypeOnce(t *testing.T) {
	d := jsonschema.Document{
		Top:         &s3Example{},
		Destination: &flushExample{},
		Sources: []config.Spec{
			{Type: "postgres", New: func() any { return &sectionExample{} }},
			{Type: "plugin", New: func() any { return &pluginExample{} }},
		},
		Destinations: []config.Spec{
			{Type: "parquet", New: func() any { return &sectionExample{} }},
			{Type: "plugin", New: func() any { return &pluginExample{} }},
		},
	}
	parts, err := Parts(d)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range parts {
		names = append(names, n)
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "destination,destination parquet,plugin,source postgres,top" {
		t.Fatalf("parts %s", got)
	}
	if !strings.Contains(parts["destination"], "| `flush.rows` | integer | `10` |") {
		t.Errorf("destination part:\n%s", parts["destination"])
	}
	d.Destinations[1].New = func() any { return &s3Example{} }
	if parts, err = Parts(d); err != nil || parts["source plugin"] == "" || parts["destination plugin"] == "" {
		t.Errorf("a type whose sides differ: %v, %v", err, parts)
	}
}

type streamExample struct {
	Name   string            `yaml:"name" doc:"Its name." required:"true"`
	Method string            `yaml:"method" doc:"How." default:"GET" enum:"GET,POST"`
	Token  string            `yaml:"token" doc:"A token" secret:"true"`
	Query  map[string]string `yaml:"query" doc:"Parameters."`
	Cursor struct {
		Field string `yaml:"field" doc:"Orders the records."`
	} `yaml:"cursor" doc:"Incremental reads."`
}

type listExample struct {
	Headers map[string]string `yaml:"headers" doc:"Sent with every request." example:"{Accept: application/json}"`
	Streams []streamExample   `yaml:"streams" doc:"The endpoints." required:"true"`
	Every   time.Duration     `yaml:"every" doc:"How often." default:"1m"`
}

func TestTableListsTheKeysOfEachItemAfterTheList(t *testing.T) {
	got := Table(fields(t, &listExample{}))
	want := "| key | type | default | required | description | example |\n" +
		"|---|---|---|---|---|---|\n" +
		"| `headers` | mapping of strings |  |  | Sent with every request. | `{Accept: application/json}` |\n" +
		"| `streams` | list of sections |  | yes | The endpoints. |  |\n" +
		"| `streams[].name` | string |  | yes | Its name. |  |\n" +
		"| `streams[].method` | string | `GET` |  | How. One of `GET`, `POST`. |  |\n" +
		"| `streams[].token` | string |  |  | A token. `streams[].token_file` instead reads the value from a file. |  |\n" +
		"| `streams[].query` | mapping of strings |  |  | Parameters. |  |\n" +
		"| `streams[].cursor.field` | string |  |  | Orders the records. |  |\n" +
		"| `every` | duration | `1m` |  | How often. |  |\n"
	if got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}
