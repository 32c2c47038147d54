package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/sources/postgres"
)

// FuzzParse feeds arbitrary bytes to the loader: it must return a config or errors
// that name the file, never panic or hang. Seeds are the example configs, the test
// configs and the corpus in testdata/fuzz/FuzzParse. Besides the built-in kinds the
// loader knows the test kind feed, whose lists of sections and string maps no
// built-in kind has yet.
func FuzzParse(f *testing.F) {
	for _, s := range []string{validPostgres, validMySQL, validFeed, "", "a: ${X", "x: &a [*a]", "<<: {a: 1}"} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("../configs/*.yaml")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	lookup := env("PG_DSN", "postgres://u@h/db", "X", "[a.b]", "EMPTY", "")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseFeed("f.yaml", data, lookup)
		if err != nil {
			var e *config.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not a config error: %v", err, err)
			}
			var es config.Errors
			if errors.As(err, &es) {
				for _, e := range es {
					if e.File != "f.yaml" || e.Msg == "" {
						t.Fatalf("error without file or message: %#v", e)
					}
				}
			} else if e.File != "f.yaml" || e.Msg == "" {
				t.Fatalf("error without file or message: %#v", e)
			}
			return
		}
		if cfg == nil || cfg.Offsets == "" || len(cfg.Order) == 0 || len(cfg.Order) != len(cfg.Connectors) {
			t.Fatalf("accepted an incomplete config: %+v", cfg)
		}
		for _, name := range cfg.Order {
			c := cfg.Connectors[name]
			s, d := c.Source, c.Destination
			typed := 0
			for _, ok := range []bool{pgOf(s) != nil, myOf(s) != nil, pluginOf(s.Config) != nil, feedOf(s) != nil} {
				if ok {
					typed++
				}
			}
			if typed != 1 || (parquetOf(d) == nil) == (pluginOf(d.Config) == nil) {
				t.Fatalf("connector %s accepted without exactly one typed source and destination: %+v", name, c)
			}
			if d.Flush.Rows <= 0 || d.Flush.Bytes <= 0 || d.Flush.Interval <= 0 {
				t.Fatalf("connector %s has no flush limits: %+v", name, d.Flush)
			}
			if p := pgOf(s); p != nil && (postgres.CheckIdent(p.Slot) != "" || postgres.CheckIdent(p.Publication) != "" || len(p.Tables) == 0) {
				t.Fatalf("connector %s accepted with invalid postgres settings: %+v", name, p)
			}
			if p := feedOf(s); p != nil {
				checkFeed(t, name, p)
			}
		}
	})
}

// checkFeed fails when an accepted feed config breaks what its tags and Validate
// methods promise of every item.
func checkFeed(t *testing.T, name string, c *feedConfig) {
	t.Helper()
	if c.BaseURL == "" || len(c.Streams) == 0 {
		t.Fatalf("connector %s accepted without a base_url or streams: %+v", name, c)
	}
	names := map[string]bool{}
	for i, s := range c.Streams {
		if s.Name == "" || s.URL == "" || (s.Method != "GET" && s.Method != "POST") || s.Every <= 0 ||
			s.Cursor.Start == "" || s.Table == "" || names[s.Name] {
			t.Fatalf("connector %s accepted with an invalid streams[%d]: %+v", name, i, s)
		}
		names[s.Name] = true
	}
}
