package main

import (
	"os"
	"testing"
)

func TestParseStatTakesFieldsAfterTheLastParenthesis(t *testing.T) {
	// A command name with spaces and a ')' of its own, as a process can be named.
	line := "4242 (postgres: a) b) S 17 4242 4242 0 -1 4194560 100 0 0 0 123 45 67 89 20 0 1 0 1000 1000 100\n"
	st, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := stat{ppid: 17, utime: 123, stime: 45, cutime: 67, cstime: 89}
	if st != want {
		t.Fatalf("parseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"4242 no name", "4242 (x) S 17 4242", "4242 (x) S p 1 2 3 4 5 6 7 8 9 10 11 12 13 14"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestProcStatOfThisProcessNamesItsParent(t *testing.T) {
	st, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() {
		t.Fatalf("ppid %d, want %d", st.ppid, os.Getppid())
	}
}
