package gctune

import (
	"runtime/debug"
	"testing"
)

func TestSetRespectsTheUsersChoice(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if !Set(Plugin) {
		t.Fatal("Set with neither GOGC nor GOMEMLIMIT set did nothing")
	}
	if got := debug.SetGCPercent(100); got != Plugin {
		t.Fatalf("GC percent = %d, want %d", got, Plugin)
	}

	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(env, "150")
			if Set(Connectd) {
				t.Fatalf("Set overrode the user's %s", env)
			}
			if got := debug.SetGCPercent(100); got != 100 {
				t.Fatalf("GC percent = %d after Set with %s set, want it untouched (100)", got, env)
			}
		})
	}
}
