package sdk

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/config/jsonschema"
)

type item struct {
	Name string `json:"name"`
}

type items []item

func (items) ConfigType() string { return "list of items" }

type taggedConfig struct {
	Path  string         `yaml:"path" doc:"The file." required:"true"`
	Token string         `yaml:"token" doc:"A token." secret:"true"`
	Mode  string         `yaml:"mode" doc:"How." default:"fast" enum:"fast,safe"`
	Poll  time.Duration  `yaml:"poll" doc:"How often." default:"200ms"`
	Max   config.Size    `yaml:"max" doc:"How much." default:"1MiB"`
	Port  uint32         `yaml:"port" doc:"A port."`
	Count int            `yaml:"count" doc:"How many."`
	On    bool           `yaml:"on" doc:"Whether." default:"true"`
	Tags  []string       `yaml:"tags" doc:"Labels."`
	Extra map[string]any `yaml:"extra" doc:"Anything."`
	Items items          `yaml:"items" doc:"Items."`
	Inner struct {
		Depth int `yaml:"depth" doc:"Depth." default:"3"`
	} `yaml:"inner" doc:"A section."`
}

func TestTaggedConfigIsDecodedWithDefaultsAndTheLoadersScalarForms(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := `{"path": "/x", "token_file": "` + secret + `", "port": "8_080", "count": 7, "on": "no",
		"tags": ["a", 2], "extra": {"n": 1.5}, "items": [{"name": "i"}], "mode": "safe"}`
	cfg, err := decodeConfig[taggedConfig]([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != "/x" || cfg.Token != "s3cret" || cfg.Mode != "safe" || cfg.Poll != 200*time.Millisecond ||
		cfg.Max != 1<<20 || cfg.Port != 8080 || cfg.Count != 7 || cfg.On || strings.Join(cfg.Tags, ",") != "a,2" ||
		cfg.Extra["n"] != 1.5 || len(cfg.Items) != 1 || cfg.Items[0].Name != "i" || cfg.Inner.Depth != 3 {
		t.Fatalf("decoded %+v", cfg)
	}
}

func TestTaggedConfigErrorsNameEveryKey(t *testing.T) {
	raw := `{"pth": "/x", "mode": "slow", "port": 7000000000, "poll": "soon", "inner": {"dept": 1}, "items": [{"nme": 1}]}`
	_, err := decodeConfig[taggedConfig]([]byte(raw))
	if err == nil || !IsPermanent(err) {
		t.Fatalf("error %v, want a permanent one", err)
	}
	for _, want := range []string{"pth: unknown key", "path: required", "mode: slow is not one of fast, safe",
		"port: 7000000000 is out of range", "poll: must be a duration", "inner.dept: unknown key", `items: json: unknown field "nme"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestUntaggedConfigIsPlainJSONWithoutSchema(t *testing.T) {
	type plain struct {
		Dir string `json:"dir"`
	}
	cfg, err := decodeConfig[plain]([]byte(`{"dir": "/d"}`))
	if err != nil || cfg.Dir != "/d" {
		t.Fatalf("decoded %+v, %v", cfg, err)
	}
	if _, err := decodeConfig[plain]([]byte(`{"dri": "/d"}`)); err == nil {
		t.Error("an unknown key was accepted")
	}
	if s, err := ConfigSchema[plain](); s != "" || err != nil {
		t.Errorf("schema %q, %v for an untagged type", s, err)
	}
}

func TestConfigSchemaIsDerivedFromTheTagsAndSentInTheSpec(t *testing.T) {
	s, err := ConfigSchema[taggedConfig]()
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.Compile([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(`{"path": "/x", "mode": "slow", "extra": {}}`), &doc); err != nil {
		t.Fatal(err)
	}
	ps, err := v.Validate(doc)
	if err != nil || len(ps) != 1 || ps[0].Path != "mode" {
		t.Fatalf("problems %v, %v; want one, of mode", ps, err)
	}
	if got := spec(withSchema[taggedConfig](Info{Name: "p"}), "source").GetConfigSchema(); got != s {
		t.Errorf("the spec carries schema %q", got)
	}
	if got := withSchema[taggedConfig](Info{ConfigSchema: `{"type":"object"}`}).ConfigSchema; got != `{"type":"object"}` {
		t.Errorf("the author's own schema was replaced by %q", got)
	}
}
