package config

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want Size
		bad  bool
	}{
		{in: "128MiB", want: 128 << 20},
		{in: "64KB", want: 64000},
		{in: "1GiB", want: 1 << 30},
		{in: "1048576", want: 1048576},
		{in: "10MB", want: 10_000_000},
		{in: "10 mb", want: 10_000_000},
		{in: "1.5KiB", want: 1536},
		{in: "2TB", want: 2e12},
		{in: "3TiB", want: 3 << 40},
		{in: "0", want: 0},
		{in: "7B", want: 7},
		{in: "8191PiB", bad: true},
		{in: "0.5B", bad: true},
		{in: "1.2.3MB", bad: true},
		{in: "-1MB", bad: true},
		{in: "MB", bad: true},
		{in: "", bad: true},
		{in: "1e3", bad: true},
		{in: "12 XB", bad: true},
		{in: "9223372036854775807", want: 9223372036854775807},
		{in: "9223372036854775808", bad: true},
		{in: "9000000000TB", bad: true},
		{in: "8388608TiB", bad: true},
		{in: "8388607.999TiB", bad: true},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestSizeStringRoundTrips(t *testing.T) {
	for _, s := range []Size{0, 1, 999, 1000, 1024, 1536, 128 << 20, 10_000_000, 1 << 40, 1<<40 + 1, 9223372036854775807} {
		str := s.String()
		back, err := ParseSize(str)
		if err != nil || back != s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", str, back, err, s)
		}
	}
	if got := Size(128 << 20).String(); got != "128MiB" {
		t.Errorf("String = %q", got)
	}
	if got := Size(10_000_000).String(); got != "10MB" {
		t.Errorf("String = %q", got)
	}
}

// The loader walks the YAML tree itself, but code that decodes these structs with
// go-yaml or encoding/json directly gets the same forms.
func TestSizeAndDurationWithPlainDecoders(t *testing.T) {
	var f Flush
	if err := yaml.Unmarshal([]byte("rows: 5\nbytes: 64KiB\ninterval: 30s\n"), &f); err != nil {
		t.Fatal(err)
	}
	if f != (Flush{Rows: 5, Bytes: 64 << 10, Interval: 30 * time.Second}) {
		t.Fatalf("yaml: %+v", f)
	}
	if err := yaml.Unmarshal([]byte("bytes: 1048576\n"), &f); err != nil || f.Bytes != 1048576 {
		t.Fatalf("yaml integer size: %+v, %v", f, err)
	}
	if err := yaml.Unmarshal([]byte("bytes: lots\n"), &f); err == nil {
		t.Fatal("yaml accepted a bad size")
	}
	out, err := yaml.Marshal(Flush{Bytes: 128 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var back Flush
	if err := yaml.Unmarshal(out, &back); err != nil || back.Bytes != 128<<20 {
		t.Fatalf("yaml round trip of %s: %+v, %v", out, back, err)
	}
	var s Size
	if err := json.Unmarshal([]byte(`"10MB"`), &s); err != nil || s != 10_000_000 {
		t.Fatalf("json: %d, %v", s, err)
	}
}
