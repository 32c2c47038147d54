package offsets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/record"
)

// leaseContract checks what every store's leases promise, on the store at url.
// stealFrom makes lease a lose its hold without releasing it, as a process that
// hangs or loses its network would (nil: the store has no such state: a file:// lock
// lives exactly as long as its process).
func leaseContract(t *testing.T, url string, stealFrom func(t *testing.T, a Lease)) {
	ctx := context.Background()
	open := func(t *testing.T) Store {
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	s1, s2 := open(t), open(t)
	holder := func(who string) Holder {
		return Holder{Host: "host-" + who, PID: 1000 + len(who), Since: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), Config: "/etc/" + who + ".yaml"}
	}

	t.Run("a second acquire fails naming the holder", func(t *testing.T) {
		a, err := s1.Acquire(ctx, "held", holder("a"))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		_, err = s2.Acquire(ctx, "held", holder("b"))
		var held *HeldError
		if !errors.As(err, &held) {
			t.Fatalf("second Acquire: err = %v, want a *HeldError", err)
		}
		want := "connector held is held by host host-a pid 1001 since 2026-12-05T09:00:00Z (/etc/a.yaml)"
		if !strings.HasPrefix(err.Error(), want) || held.Holder.PID != 1001 {
			t.Errorf("second Acquire: %q, want it to start %q", err, want)
		}
		// The same store in the same process is no exception.
		if _, err := s1.Acquire(ctx, "held", holder("a")); !IsHeld(err) {
			t.Errorf("Acquire by the holder's own store: err = %v, want held", err)
		}
		// Other connectors are not held.
		o, err := s2.Acquire(ctx, "held-other", holder("b"))
		if err != nil {
			t.Fatalf("Acquire of another connector: %v", err)
		}
		o.Release(ctx)
	})

	t.Run("an offset never moves backwards", func(t *testing.T) {
		a, err := s1.Acquire(ctx, "forward", holder("a"))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		for _, p := range []record.Position{{1, 5}, {1, 5}, {2}} {
			if err := a.Commit(ctx, "forward", p); err != nil {
				t.Fatalf("Commit %s: %v", p, err)
			}
		}
		for _, p := range []record.Position{{1, 9}, {1}, {0xff}} {
			err := a.Commit(ctx, "forward", p)
			if p[0] == 0xff {
				if err != nil {
					t.Fatalf("Commit %s (an epoch above): %v", p, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), "never moves backwards") {
				t.Errorf("Commit of %s after 02: err = %v, want refused", p, err)
			}
		}
		if pos, err := s2.Load(ctx, "forward"); err != nil || !reflect.DeepEqual(pos, record.Position{0xff}) {
			t.Errorf("Load = %x, %v; want ff", pos, err)
		}
		// The store's own (unfenced) Commit refuses it too.
		if err := s2.Commit(ctx, "forward", record.Position{3}); err == nil || !strings.Contains(err.Error(), "never moves backwards") {
			t.Errorf("Store.Commit backwards: err = %v", err)
		}
		if err := a.Commit(ctx, "other", record.Position{9}); err == nil {
			t.Error("a lease committed another connector's offset")
		}
	})

	t.Run("a released lease is taken at once and fences its old owner", func(t *testing.T) {
		a, err := s1.Acquire(ctx, "handover", holder("a"))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(ctx, "handover", record.Position{1}); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		b, err := s2.Acquire(ctx, "handover", holder("b"))
		if err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		defer b.Release(ctx)
		if b.Generation() <= a.Generation() {
			t.Errorf("generations: %d then %d, want increasing", a.Generation(), b.Generation())
		}
		if pos, err := b.Load(ctx, "handover"); err != nil || !reflect.DeepEqual(pos, record.Position{1}) {
			t.Fatalf("new owner loads %x, %v; want 01", pos, err)
		}
		if err := a.Commit(ctx, "handover", record.Position{2}); !IsLost(err) {
			t.Errorf("Commit after Release: err = %v, want lost", err)
		}
		if err := b.Commit(ctx, "handover", record.Position{3}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-a.Lost():
		default:
			t.Error("a released lease's Lost is open")
		}
	})

	if stealFrom != nil {
		t.Run("a taken-over lease fences its old owner", func(t *testing.T) {
			a, err := s1.Acquire(ctx, "takeover", holder("a"))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Release(ctx)
			if err := a.Commit(ctx, "takeover", record.Position{1}); err != nil {
				t.Fatal(err)
			}
			stealFrom(t, a)
			var b Lease
			deadline := time.Now().Add(30 * time.Second)
			for {
				b, err = s2.Acquire(ctx, "takeover", holder("b"))
				if err == nil {
					break
				}
				if !IsHeld(err) || time.Now().After(deadline) {
					t.Fatalf("takeover: %v", err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			defer b.Release(ctx)
			err = a.Commit(ctx, "takeover", record.Position{5})
			if !IsLost(err) {
				t.Fatalf("old owner's Commit after the takeover: err = %v, want lost", err)
			}
			if !strings.Contains(err.Error(), "lost the lease on connector takeover") {
				t.Errorf("old owner's Commit: %q", err)
			}
			if pos, err := s2.Load(ctx, "takeover"); err != nil || !reflect.DeepEqual(pos, record.Position{1}) {
				t.Errorf("position after the fenced commit = %x, %v; want 01 kept", pos, err)
			}
			select {
			case <-a.Lost():
			case <-time.After(10 * time.Second):
				t.Error("the old owner's Lost stayed open")
			}
			if err := b.Commit(ctx, "takeover", record.Position{2}); err != nil {
				t.Errorf("new owner's Commit: %v", err)
			}
		})
	}

	t.Run("the lease ends with its process", func(t *testing.T) {
		child := exec.Command(os.Args[0], "-test.run=^TestLeaseHelperProcess$")
		child.Env = append(os.Environ(), "LEASE_HELPER_URL="+url)
		out, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		child.Stderr = os.Stderr
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "held") {
			t.Fatalf("helper: %q, %v", line, err)
		}
		_, err = s1.Acquire(ctx, "death", holder("a"))
		var held *HeldError
		if !errors.As(err, &held) || held.Holder.PID != child.Process.Pid {
			t.Fatalf("Acquire while the helper holds it: err = %v, want held by pid %d", err, child.Process.Pid)
		}
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for {
			l, err := s1.Acquire(ctx, "death", holder("a"))
			if err == nil {
				l.Release(ctx)
				break
			}
			if !IsHeld(err) || time.Now().After(deadline) {
				t.Fatalf("Acquire after the holder was killed: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestLeaseHelperProcess is the child of "the lease ends with its process": it takes
// the lease and holds it until it is killed.
func TestLeaseHelperProcess(t *testing.T) {
	url := os.Getenv("LEASE_HELPER_URL")
	if url == "" {
		t.Skip("a helper process of leaseContract")
	}
	ctx := context.Background()
	s, err := Open(ctx, url)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	if _, err := s.Acquire(ctx, "death", ThisProcess("test", "helper")); err != nil {
		fmt.Println("acquire:", err)
		os.Exit(1)
	}
	fmt.Println("held")
	time.Sleep(10 * time.Minute)
	os.Exit(0)
}
