package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/plugins/host"
)

func TestPluginTimeouts(t *testing.T) {
	src := `offsets: file:///s
connectors:
  p:
    source:
      type: plugin
      name: http
      timeouts: {start: 1m, call: 10s, idle: 2m}
    destination:
      type: plugin
      path: /opt/dst
      timeouts:
        flush: 15m
`
	cfg, err := parse("c.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors["p"]
	if got, want := pluginOf(c.Source.Config).Timeouts, (host.ConfigTimeouts{Start: time.Minute, Call: 10 * time.Second, Idle: 2 * time.Minute}); got != want {
		t.Fatalf("source timeouts = %+v, want %+v", got, want)
	}
	if got, want := pluginOf(c.Destination.Config).Timeouts, (host.ConfigTimeouts{Flush: 15 * time.Minute}); got != want {
		t.Fatalf("destination timeouts = %+v, want %+v", got, want)
	}
	cases := []struct {
		name, new string
		want      []string
	}{
		{"unknown key", "timeouts: {start: 1m, call: 10s, idel: 2m}",
			[]string{`c.yaml:7: connectors.p.source.timeouts.idel: unknown key (did you mean "idle"?)`}},
		{"not a duration", "timeouts: {start: 1m, call: ten, idle: 2m}",
			[]string{`c.yaml:7: connectors.p.source.timeouts.call: must be a duration such as 30s, 5m or 1h30m, got "ten"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := errLines(t, strings.Replace(src, "timeouts: {start: 1m, call: 10s, idle: 2m}", tc.new, 1), nil)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
