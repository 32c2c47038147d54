// Package proc reads the CPU time of processes on this machine from /proc, for the
// benchmarks' CPU-seconds per million rows.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stat holds the fields of /proc/<pid>/stat the benchmarks need; times in USER_HZ
// ticks (100 per second on Linux).
type Stat struct {
	PPID                         int
	UTime, STime, CUTime, CSTime int64
}

// Ticks converts USER_HZ ticks (100 per second on Linux) to a duration.
func Ticks(n int64) time.Duration { return time.Duration(n) * 10 * time.Millisecond }

// Read reads /proc/<pid>/stat.
func Read(pid int) (Stat, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	st, err := Parse(string(data))
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// Parse parses the text of /proc/<pid>/stat.
func Parse(s string) (Stat, error) {
	// The command name (field 2) may hold spaces and parentheses; the fields after
	// its last ')' are plain.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("no command name")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return Stat{}, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	var st Stat
	var err error
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("ppid: %w", err)
	}
	for j, p := range []*int64{&st.UTime, &st.STime, &st.CUTime, &st.CSTime} {
		if *p, err = strconv.ParseInt(f[11+j], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("field %d: %w", 14+j, err)
		}
	}
	return st, nil
}

// CPU is the user+system CPU time of a process on this machine (Read's
// fields 14 and 15, in USER_HZ ticks, 100 per second on Linux).
func CPU(pid int) (time.Duration, bool) {
	st, err := Read(pid)
	if err != nil {
		return 0, false
	}
	return Ticks(st.UTime + st.STime), true
}

// Self is this process's user+system CPU time.
func Self() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
