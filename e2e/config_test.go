package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadConfigExits2WithFileLine: every config-reading command refuses a config with
// an unknown key or a bad value with exit status 2, naming file, line and key path.
func TestBadConfigExits2WithFileLine(t *testing.T) {
	cases := []struct {
		file    string
		line    string // the "file:line:" prefix's line
		keyPath string
		say     string // a word of the explanation
	}{
		{"bad-unknown-key.yaml", "8", "connectors.orders.source.tabels", "unknown"},
		{"bad-slot.yaml", "9", "connectors.orders.source.slot", "[a-z0-9_]+"},
		{"bad-interval.yaml", "14", "connectors.orders.destination.flush.interval", "duration"},
	}
	for _, c := range cases {
		path, err := filepath.Abs(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"check", "sync", "run", "discover"} {
			r := connectd(t, 30*time.Second, cmd, "-c", path)
			if r.code != 2 {
				t.Errorf("connectd %s -c %s: want exit 2, got %s", cmd, c.file, r)
				continue
			}
			var hit string
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.Contains(l, path+":"+c.line+": ") && strings.Contains(l, c.keyPath) {
					hit = l
				}
			}
			switch {
			case hit == "":
				t.Errorf("connectd %s -c %s: stderr has no line with %q and %q:\n%s", cmd, c.file, path+":"+c.line+":", c.keyPath, r.stderr)
			case !strings.Contains(hit, c.say):
				t.Errorf("connectd %s -c %s: %q does not say what is wrong (want %q)", cmd, c.file, hit, c.say)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("connectd %s -c %s: a config error must not be a stack trace:\n%s", cmd, c.file, r.stderr)
			}
		}
	}
}
