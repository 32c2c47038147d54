package builtin_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/connector/builtin"
	"github.com/connectd/connectd/record"
)

func TestEveryKindDeclaresItsConfig(t *testing.T) {
	r := builtin.Registry("")
	if got := r.SourceTypes(); !reflect.DeepEqual(got, []string{"postgres", "mysql", "http", "plugin"}) {
		t.Errorf("source types %v", got)
	}
	// duckdb in every build: without DuckDB linked in, a stand-in that refuses to open.
	if got := r.DestinationTypes(); !reflect.DeepEqual(got, []string{"parquet", "postgres", "duckdb", "plugin"}) {
		t.Errorf("destination types %v", got)
	}
	check := func(role, typ string, spec config.Spec, ok bool) {
		if !ok || spec.Type != typ || spec.Summary == "" || spec.New == nil {
			t.Fatalf("%s %s: spec %+v", role, typ, spec)
		}
		a, b := spec.New(), spec.New()
		if reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() {
			t.Errorf("%s %s: New returns one shared struct", role, typ)
		}
		fs, err := config.FieldsOf(a)
		if err != nil {
			t.Fatalf("%s %s: %v", role, typ, err)
		}
		if err := config.ApplyDefaults(a); err != nil {
			t.Fatalf("%s %s: %v", role, typ, err)
		}
		var walk func(prefix string, fs []config.Field)
		walk = func(prefix string, fs []config.Field) {
			for _, f := range fs {
				if f.Default != "" && len(f.Enum) > 0 && !slices.Contains(f.Enum, f.Default) {
					t.Errorf("%s %s: %s%s: default %q is not one of %v", role, typ, prefix, f.Key, f.Default, f.Enum)
				}
				if f.Default != "" && f.DefaultDoc != "" {
					t.Errorf("%s %s: %s%s: both default and defaultdoc", role, typ, prefix, f.Key)
				}
				walk(prefix+f.Key+".", f.Fields)
			}
		}
		walk("", fs)
	}
	for _, typ := range r.SourceTypes() {
		spec, ok := r.SourceSpec(typ)
		check("source", typ, spec, ok)
	}
	for _, typ := range r.DestinationTypes() {
		spec, ok := r.DestinationSpec(typ)
		check("destination", typ, spec, ok)
	}
	if _, ok := r.SourceSpec("parquet"); ok {
		t.Error("parquet is not a source")
	}
}

// echoConfig is the config of a connector kind that exists only in this test: adding a
// kind is its struct and one registration, and the loader does the rest.
type echoConfig struct {
	Greeting string `yaml:"greeting" required:"what to say" enum:"hello,bye" doc:"What to say."`
	Count    int    `yaml:"count" default:"3" doc:"How often."`
}

func (c *echoConfig) Validate(v *config.Validation) {
	if v.Set("count") && (c.Count < 1 || c.Count > 10) {
		v.Errorf("count", "must be between 1 and 10")
	}
}

type echoKind struct{}

func (echoKind) ConfigSpec() config.Spec {
	return config.Spec{Type: "echo", Summary: "Says something.", New: func() any { return &echoConfig{} }}
}

func (echoKind) Open(context.Context, connector.SourceParams) (connector.Source, error) {
	return nil, errors.New("echo: not a real source")
}

func (echoKind) Check(context.Context, connector.SourceParams) []connector.CheckResult { return nil }

func (echoKind) Discover(context.Context, connector.SourceParams) ([]*record.Schema, error) {
	return nil, nil
}

func TestAKindRegisteredInATestIsLoadedWithFileLineErrors(t *testing.T) {
	r := builtin.Registry("")
	r.AddSource("echo", echoKind{})
	const src = `offsets: file:///s
connectors:
  e:
    source:
      type: echo
      greeting: hello
    destination: {type: parquet, url: "file:///lake"}
`
	cfg, err := config.Parse("c.yaml", []byte(src), nil, r)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Connectors["e"].Source
	if c, ok := s.Config.(*echoConfig); !ok || *c != (echoConfig{Greeting: "hello", Count: 3}) {
		t.Fatalf("source = %+v (%T)", s, s.Config)
	}
	got, err := connector.SourceConfig[echoConfig](connector.SourceParams{Config: config.Source{Type: "echo", Config: &echoConfig{Greeting: "bye"}}})
	if err != nil || got.Count != 3 {
		t.Fatalf("SourceConfig = %+v, %v; want the default count applied", got, err)
	}
	if _, err := connector.SourceConfig[echoConfig](connector.SourceParams{Config: config.Source{Type: "echo"}}); err == nil {
		t.Fatal("SourceConfig of a missing config: no error")
	}

	for _, c := range []struct{ name, old, new, want string }{
		{"required", "      greeting: hello\n", "", `c.yaml:4: connectors.e.source.greeting: required: what to say`},
		{"enum", "greeting: hello", "greeting: hi", `c.yaml:6: connectors.e.source.greeting: must be one of hello, bye; got "hi"`},
		{"type", "greeting: hello", "greeting: hello\n      count: many", `c.yaml:7: connectors.e.source.count: must be a whole number, got "many"`},
		{"validate", "greeting: hello", "greeting: hello\n      count: 11", `c.yaml:7: connectors.e.source.count: must be between 1 and 10`},
		{"did you mean", "greeting: hello", "greeting: hello\n      cuont: 2", `c.yaml:7: connectors.e.source.cuont: unknown key (did you mean "count"?)`},
		{"foreign key", "greeting: hello", "greeting: hello\n      slot: x", `c.yaml:7: connectors.e.source.slot: unknown key for type echo (it belongs to type postgres)`},
		{"its key elsewhere", "      type: echo\n      greeting: hello\n", "      type: postgres\n      dsn: postgres://h/db\n      tables: [a.b]\n      greeting: hello\n",
			`c.yaml:8: connectors.e.source.greeting: unknown key for type postgres (it belongs to type echo)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(strings.Replace(src, c.old, c.new, 1)), nil, r)
			if err == nil || err.Error() != c.want {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}
