package config_test

import (
	"slices"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
)

func TestVerifyKeyDecodesWithDefaults(t *testing.T) {
	cases := []struct {
		name string
		add  string
		want config.Verify
	}{
		{"absent is off with the defaults", "", config.Verify{Sample: 5, Rate: 10000}},
		{"every alone", "    verify: {every: 24h}\n", config.Verify{Every: 24 * time.Hour, Sample: 5, Rate: 10000}},
		{"all keys", "    verify: {every: 2s, sample: 100%, rate: 5000}\n", config.Verify{Every: 2 * time.Second, Sample: 100, Rate: 5000}},
		{"a fraction without %", "    verify: {every: 1h, sample: 0.5}\n", config.Verify{Every: time.Hour, Sample: 0.5, Rate: 10000}},
		{"rate 0 is unlimited", "    verify: {every: 1h, rate: 0}\n", config.Verify{Every: time.Hour, Sample: 5, Rate: 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse("c.yaml", []byte(validPostgres+c.add), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Connectors["orders"].Verify; got != c.want {
				t.Errorf("verify = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestVerifyKeyErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, add string
		want      []string
	}{
		{"sample above 100", "    verify: {every: 1h, sample: 150%}\n",
			[]string{`c.yaml:11: connectors.orders.verify.sample: must be above 0% and at most 100%; got 150%`}},
		{"sample 0", "    verify:\n      every: 1h\n      sample: 0\n",
			[]string{`c.yaml:13: connectors.orders.verify.sample: must be above 0% and at most 100%; got 0%`}},
		{"sample not a number", "    verify:\n      sample: lots\n",
			[]string{`c.yaml:12: connectors.orders.verify.sample: invalid percentage "lots": want a number with an optional %, e.g. 5%`}},
		{"negative every", "    verify:\n      every: -1h\n",
			[]string{`c.yaml:12: connectors.orders.verify.every: must not be negative`}},
		{"negative rate", "    verify:\n      rate: -1\n",
			[]string{`c.yaml:12: connectors.orders.verify.rate: must be 0 (unlimited) or more rows per second`}},
		{"misspelt key", "    verify:\n      evry: 1h\n",
			[]string{`c.yaml:12: connectors.orders.verify.evry: unknown key (did you mean "every"?)`}},
		{"misspelt section", "    verfy: {every: 1h}\n",
			[]string{`c.yaml:11: connectors.orders.verfy: unknown key (did you mean "verify"?)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := errLines(t, validPostgres+c.add, nil)
			if !slices.Equal(got, c.want) {
				t.Errorf("errors:\n%q\nwant:\n%q", got, c.want)
			}
		})
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]config.Percent{"5%": 5, "5": 5, " 0.5 % ": 0.5, "100%": 100, ".5%": 0.5} {
		if got, err := config.ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "%", "five", "1e2", "NaN", "Inf%", "0x10"} {
		if got, err := config.ParsePercent(in); err == nil {
			t.Errorf("ParsePercent(%q) = %v, want an error", in, got)
		}
	}
}

func TestVerifyEmptySectionIsOffWithTheDefaults(t *testing.T) {
	cfg, err := parse("c.yaml", []byte(validPostgres+"    verify:\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Connectors["orders"].Verify, (config.Verify{Sample: 5, Rate: 10000}); got != want {
		t.Errorf("verify = %+v, want %+v", got, want)
	}
}
