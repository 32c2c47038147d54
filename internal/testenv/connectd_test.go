package testenv

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// sh stands in for connectd: the runner only needs an executable.
var sh = Connectd{Bin: "/bin/sh"}

func TestRunCapturesOutputAndExitCode(t *testing.T) {
	r, err := sh.Run(time.Minute, "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" || r.TimedOut {
		t.Fatalf("got %+v, want exit 3, stdout out, stderr err", r)
	}
	c, err := sh.RunCombined(time.Minute, "-c", "echo a; echo b >&2; echo c")
	if err != nil {
		t.Fatal(err)
	}
	if c.Code != 0 || c.Stdout != "a\nb\nc\n" || c.Stderr != "" {
		t.Fatalf("combined: got %+v, want exit 0 and a b c interleaved in Stdout", c)
	}
}

func TestRunKillsWhatOutlivesTheTimeout(t *testing.T) {
	r, err := sh.Run(100*time.Millisecond, "-c", "echo started; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Code != -1 {
		t.Fatalf("got %+v, want timed out and killed (-1)", r)
	}
}

func TestRunOfAMissingBinaryFails(t *testing.T) {
	if _, err := (Connectd{Bin: "/nonexistent/connectd"}).Run(time.Minute, "version"); err == nil {
		t.Fatal("want an error starting a missing binary")
	}
}

func TestStartSignalWait(t *testing.T) {
	var out Buffer
	p, err := sh.Start(&out, &out, "-c", `trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	for out.String() == "" {
		if p.Wait(10 * time.Millisecond) {
			t.Fatalf("exited early: %v: %s", p.Err(), out.String())
		}
	}
	if !p.Running() || p.Pid() <= 0 {
		t.Fatalf("running %v, pid %d; want a running process", p.Running(), p.Pid())
	}
	p.Signal(syscall.SIGTERM)
	if !p.Wait(time.Minute) {
		t.Fatal("still running a minute after SIGTERM")
	}
	if p.Running() || p.ExitCode() != 7 || out.String() != "ready\nterm\n" {
		t.Fatalf("running %v, exit %d, output %q; want exit 7 after the trap", p.Running(), p.ExitCode(), out.String())
	}
	if u := p.Usage(); u.MaxRSS <= 0 {
		t.Errorf("usage %+v: want a peak RSS", u)
	}
	p.Signal(syscall.SIGTERM) // after exit: nothing to signal, no panic
	p.Kill()
}

func TestKillEndsAProcessWithExitCodeMinusOne(t *testing.T) {
	p, err := sh.Start(nil, nil, "-c", "exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if p.Running() || p.ExitCode() != -1 {
		t.Fatalf("running %v, exit %d; want killed (-1)", p.Running(), p.ExitCode())
	}
}

func TestBuildConnectdHonoursTheBinaryNamedInTheEnvironment(t *testing.T) {
	for _, tc := range []struct {
		env   string
		build func(context.Context, string) (string, func(), error)
	}{
		{"CONNECTD_BIN", BuildConnectd},
		{"CONNECTD_DUCKDB_BIN", BuildConnectdDuckDB},
	} {
		t.Run(tc.env, func(t *testing.T) {
			want := "/some/prebuilt/" + tc.env
			t.Setenv(tc.env, want)
			path, cleanup, err := tc.build(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			cleanup()
			if path != want {
				t.Fatalf("path %q, want the %s binary %q", path, tc.env, want)
			}
		})
	}
}

func TestBuildReportsCompileErrors(t *testing.T) {
	err := Build(context.Background(), "", "./internal/testenv/no-such-package", t.TempDir()+"/x")
	if err == nil {
		t.Fatal("want an error building a package that does not exist")
	}
}

func TestFreeAddrIsListenable(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}
