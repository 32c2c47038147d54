package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
)

// The top level is documented from the same tags as the connectors' sections, and the
// flush defaults are written only in Flush's tags.
func TestTopLevelStructsAreDocumentedAndFlushDefaultsComeFromTags(t *testing.T) {
	var keys []string
	for _, v := range []any{&config.Config{}, &config.Server{}, &config.Plugins{}, &config.Flush{}} {
		fs, err := config.FieldsOf(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			keys = append(keys, f.Key)
		}
	}
	if got, want := strings.Join(keys, " "), "offsets server plugins connectors listen dir rows bytes interval"; got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
	f := config.Flush{Rows: 5}
	if err := config.ApplyDefaults(&f); err != nil {
		t.Fatal(err)
	}
	if f != (config.Flush{Rows: 5, Bytes: 128 << 20, Interval: 60 * time.Second}) {
		t.Errorf("flush with defaults = %+v", f)
	}
}
