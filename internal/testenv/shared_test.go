package testenv

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
)

// fakeT records how Get ended a test: Skip and Fatal stop the calling goroutine, as
// the testing package's do.
type fakeT struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeT) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

// get runs s.Get under a fakeT in its own goroutine, so Skip and Fatal end only it.
func get[T any](s *Shared[T]) (v T, f *fakeT) {
	f = &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		v = s.Get(f)
	}()
	<-done
	return v, f
}

func TestSharedStartsOnceOnFirstUseAndStopsOnce(t *testing.T) {
	starts, stops := 0, 0
	s := &Shared[int]{Start: func(ctx context.Context) (int, func() error, error) {
		starts++
		return 42, func() error { stops++; return nil }, nil
	}}
	if starts != 0 {
		t.Fatal("started before first use")
	}
	for range 3 {
		v, f := get(s)
		if testing.Short() {
			if !f.skipped || starts != 0 {
				t.Fatalf("-short: skipped %v, starts %d; want a skip and no start", f.skipped, starts)
			}
			continue
		}
		if f.skipped || f.failed || v != 42 {
			t.Fatalf("Get = %d (skipped %v, failed %v: %s), want 42", v, f.skipped, f.failed, f.msg)
		}
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	want := 1
	if testing.Short() {
		want = 0
	}
	if starts != want || stops != want {
		t.Errorf("starts %d, stops %d; want %d each", starts, stops, want)
	}
}

func TestSharedFailsEveryTestWhenStartFails(t *testing.T) {
	if testing.Short() {
		t.Skip("Get skips before starting in -short mode (the test above checks that)")
	}
	starts := 0
	s := &Shared[int]{Start: func(ctx context.Context) (int, func() error, error) {
		starts++
		return 0, nil, errors.New("no server binary")
	}}
	for range 2 {
		_, f := get(s)
		if !f.failed || f.msg != "no server binary" {
			t.Fatalf("Get: failed %v (%q); want the start error", f.failed, f.msg)
		}
	}
	if starts != 1 {
		t.Errorf("%d starts, want 1", starts)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop after a failed start: %v", err)
	}
}

func TestSharedStopWithoutUseStartsNothing(t *testing.T) {
	started := false
	s := &Shared[int]{Start: func(ctx context.Context) (int, func() error, error) {
		started = true
		return 1, nil, nil
	}}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if started {
		t.Fatal("Stop started the server")
	}
}
