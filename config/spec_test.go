package config

import (
	"strings"
	"testing"
	"time"
)

type specEnv []string

func (specEnv) ConfigType() string { return "list of NAME or NAME: value" }

type specExample struct {
	DSN    string         `yaml:"dsn" doc:"Where to connect." required:"true" secret:"true" example:"postgres://h/db"`
	Slot   string         `yaml:"slot" doc:"The slot." defaultdoc:"connectd_<connector name>"`
	Every  time.Duration  `yaml:"every" doc:"How often." default:"30s"`
	Bytes  Size           `yaml:"bytes" doc:"How much." default:"128MiB"`
	Mode   string         `yaml:"mode" doc:"Which mode." enum:"a,b"`
	Tables []string       `yaml:"tables" doc:"Which tables."`
	Free   map[string]any `yaml:"config" doc:"Anything."`
	Env    specEnv        `yaml:"env" doc:"Environment."`
	Nested struct {
		On bool `yaml:"on" doc:"Switch." default:"false"`
	} `yaml:"nested" doc:"A section."`
	Line     int `yaml:"-"`
	internal int //nolint:unused // FieldsOf must skip an unexported field
}

func TestFieldsOfReadsEveryTag(t *testing.T) {
	fs, err := FieldsOf(&specExample{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Key+":"+f.Type)
	}
	want := "dsn:string slot:string every:duration bytes:size mode:string tables:list of strings config:mapping env:list of NAME or NAME: value nested:section"
	if strings.Join(got, " ") != want {
		t.Fatalf("fields:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	dsn := fs[0]
	if !dsn.Required || !dsn.Secret || dsn.Example != "postgres://h/db" || dsn.Description != "Where to connect." {
		t.Errorf("dsn: %+v", dsn)
	}
	if fs[1].DefaultDoc != "connectd_<connector name>" || fs[2].Default != "30s" {
		t.Errorf("defaults: %+v %+v", fs[1], fs[2])
	}
	if strings.Join(fs[4].Enum, ",") != "a,b" {
		t.Errorf("enum: %v", fs[4].Enum)
	}
	if n := fs[8]; len(n.Fields) != 1 || n.Fields[0].Key != "on" || n.Index != 8 {
		t.Errorf("nested: %+v", n)
	}
}

// specTree holds a list of itself, which no documentation could describe.
type specTree struct {
	Children []specTree `yaml:"children" doc:"Subtrees."`
}

func TestFieldsOfRefusesUndocumentedOrUndecodableFields(t *testing.T) {
	for name, v := range map[string]any{
		"no doc": &struct {
			A string `yaml:"a"`
		}{},
		"no key": &struct {
			A string `doc:"x"`
		}{},
		"bad type": &struct {
			A chan int `yaml:"a" doc:"x"`
		}{},
		"secret int": &struct {
			A int `yaml:"a" doc:"x" secret:"true"`
		}{},
		"nested no doc": &struct {
			A struct {
				B int `yaml:"b"`
			} `yaml:"a" doc:"x"`
		}{},
		"item no doc": &struct {
			A []struct {
				B int `yaml:"b"`
			} `yaml:"a" doc:"x"`
		}{},
		"list of pointers": &struct {
			A []*struct {
				B int `yaml:"b" doc:"y"`
			} `yaml:"a" doc:"x"`
		}{},
		"map of ints": &struct {
			A map[string]int `yaml:"a" doc:"x"`
		}{},
		"list of itself": &specTree{},
		"not a struct":   "text",
	} {
		if _, err := FieldsOf(v); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
