package config

import "testing"

func TestCommentStart(t *testing.T) {
	cases := map[string]int{
		"a: b # c":             5,
		"# x":                  0,
		"  # x":                2,
		"a: b#c":               -1,
		`a: "b # c"`:           -1,
		`a: 'b # c' # d`:       11,
		`a: 'it''s # x'`:       -1,
		"a: it's # x":          8,
		`a: "q\" # x" # y`:     13,
		"tables: ['a.b', # c]": 16,
	}
	for line, want := range cases {
		if got := commentStart(line); got != want {
			t.Errorf("commentStart(%q) = %d, want %d", line, got, want)
		}
	}
}
