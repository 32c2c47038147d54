package proc

import (
	"os"
	"testing"
)

func TestParseStatTakesFieldsAfterTheLastParenthesis(t *testing.T) {
	// A command name with spaces and a ')' of its own, as a process can be named.
	line := "4242 (postgres: a) b) S 17 4242 4242 0 -1 4194560 100 0 0 0 123 45 67 89 20 0 1 0 1000 1000 100\n"
	st, err := Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PPID: 17, UTime: 123, STime: 45, CUTime: 67, CSTime: 89}
	if st != want {
		t.Fatalf("Parse = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"4242 no name", "4242 (x) S 17 4242", "4242 (x) S p 1 2 3 4 5 6 7 8 9 10 11 12 13 14"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

func TestReadOfThisProcessNamesItsParent(t *testing.T) {
	st, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Fatalf("ppid %d, want %d", st.PPID, os.Getppid())
	}
}
