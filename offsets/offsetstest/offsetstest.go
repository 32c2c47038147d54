// Package offsetstest is the contract every offsets.Store keeps, as a test any store
// runs against itself (docs/design.md, "Offsets stores and leases"): commits that are
// atomic, durable across a new instance and never move backwards, source state kept
// beside the position, resets, listing, concurrent commits, and leases that exclude a
// second holder and fence an old one.
//
// A store's test gives an Opener that makes a new instance of the store on one place
// (a directory, a bucket prefix, a database) each time it is called, as a restarted
// process would:
//
//	func TestMyStore(t *testing.T) {
//		open := func(tb testing.TB) offsets.Store { ... }
//		offsetstest.TestStore(t, open)
//		offsetstest.TestLease(t, open, offsetstest.LeaseOptions{...})
//	}
//
// Each check is also a value (StoreChecks, LeaseChecks) that returns an error instead
// of failing a test, so this package's own tests can show that a broken store fails
// it. The package starts no server: the caller brings its own.
package offsetstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/record"
)

// Opener returns a new instance of the store under test, on the same place every
// time. It registers the instance's Close with tb.Cleanup and fails tb when the
// store cannot be opened.
type Opener func(tb testing.TB) offsets.Store

// LeaseOptions are the parts of the lease contract that need the store's help.
type LeaseOptions struct {
	// Steal makes lease a lose its hold without releasing it, as a process that hangs
	// or loses its network would (an s3:// lease stops renewing; a postgres:// lease's
	// session ends). Nil skips the check: a store whose lease lives exactly as long as
	// its process (file://) has no such state.
	Steal func(tb testing.TB, a offsets.Lease)
	// Holder returns a command, not yet started, for another process that takes the
	// lease of connector through a store on the same place, then writes a line
	// starting "held" to its standard output and waits to be killed; HoldLease is
	// what that process runs. Nil skips the check that a lease ends with its process.
	Holder func(tb testing.TB, connector string) *exec.Cmd
}

// Check is one clause of the contract.
type Check struct {
	Name string
	Run  func(ctx context.Context, tb testing.TB, open Opener, opts LeaseOptions) error
}

// ErrNotApplicable is returned by a check that needs a LeaseOptions field the caller
// left nil.
var ErrNotApplicable = errors.New("offsetstest: the store gave no way to run this check")

// Bound is how long a check waits for something that must happen (a lease freed by
// its holder's death or expiry). It is a liveness bound, not a performance figure.
const Bound = 30 * time.Second

// TestStore runs StoreChecks against the store open makes, each as a subtest.
func TestStore(t *testing.T, open Opener) {
	run(t, StoreChecks, open, LeaseOptions{})
}

// TestLease runs LeaseChecks against the store open makes, each as a subtest; a check
// that needs an opts field left nil is skipped.
func TestLease(t *testing.T, open Opener, opts LeaseOptions) {
	run(t, LeaseChecks, open, opts)
}

func run(t *testing.T, checks []Check, open Opener, opts LeaseOptions) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			err := c.Run(ctx, t, open, opts)
			if errors.Is(err, ErrNotApplicable) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// StoreChecks is what every Store promises about positions and state.
var StoreChecks = []Check{
	{"positions survive a new instance", checkPositions},
	{"an offset never moves backwards", checkForward},
	{"state is kept beside the position", checkState},
	{"list and reset", checkListAndReset},
	{"reset to a position", checkResetTo},
	{"concurrent commits", checkConcurrent},
}

// LeaseChecks is what every Store promises about the leases it hands out.
var LeaseChecks = []Check{
	{"a second acquire fails naming the holder", checkSecondAcquire},
	{"a lease commits forward only and its own connector only", checkLeaseForward},
	{"a released lease is taken at once and fences its old owner", checkHandover},
	{"a taken-over lease fences its old owner", checkTakeover},
	{"the lease ends with its process", checkProcessDeath},
}

// failures collects the violations of one check.
type failures []error

func (f *failures) add(format string, args ...any) { *f = append(*f, fmt.Errorf(format, args...)) }

func (f failures) err() error { return errors.Join(f...) }

func checkPositions(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s := open(tb)
	if pos, err := s.Load(ctx, "orders"); err != nil || pos != nil {
		return fmt.Errorf("Load of a connector that never committed = %s, %v; want nil, nil", pos, err)
	}
	for _, p := range []record.Position{{1, 2, 3}, {1, 2, 4}, {0xff}} {
		if err := s.Commit(ctx, "orders", p); err != nil {
			return fmt.Errorf("Commit %s: %w", p, err)
		}
	}
	var f failures
	if pos, err := s.Load(ctx, "orders"); err != nil || !reflect.DeepEqual(pos, record.Position{0xff}) {
		f.add("Load = %s, %v; want ff, the last commit", pos, err)
	}
	again := open(tb)
	if pos, err := again.Load(ctx, "orders"); err != nil || !reflect.DeepEqual(pos, record.Position{0xff}) {
		f.add("Load from a new instance = %s, %v; want ff, the last commit", pos, err)
	}
	if err := s.Commit(ctx, "orders", nil); err == nil {
		f.add("Commit of an empty position succeeded")
	}
	if err := s.Commit(ctx, "", record.Position{1}); err == nil {
		f.add("Commit without a connector name succeeded")
	}
	return f.err()
}

func checkForward(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s := open(tb)
	for _, p := range []record.Position{{1, 5}, {1, 5}, {2}} {
		if err := s.Commit(ctx, "backwards", p); err != nil {
			return fmt.Errorf("Commit %s (forward or equal): %w", p, err)
		}
	}
	var f failures
	for _, p := range []record.Position{{1, 9}, {1}} {
		if err := s.Commit(ctx, "backwards", p); err == nil {
			f.add("Commit of %s after 02 succeeded; an offset never moves backwards", p)
		}
	}
	if pos, err := open(tb).Load(ctx, "backwards"); err != nil || !reflect.DeepEqual(pos, record.Position{2}) {
		f.add("Load after refused backward commits = %s, %v; want 02 kept", pos, err)
	}
	// A reset epoch's prefix sorts above everything before it: a forward move.
	if err := s.Commit(ctx, "backwards", record.Position{0xff, 0, 0, 0, 1}); err != nil {
		f.add("Commit of the next epoch's start: %v", err)
	}
	return f.err()
}

func checkState(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s := open(tb)
	if data, err := s.State("st").Load(ctx, "schema"); err != nil || data != nil {
		return fmt.Errorf("state never saved = %q, %v; want nil, nil", data, err)
	}
	// Names chosen so that a store joining connector and key with a dot mixes them up.
	saves := []struct{ conn, key, data string }{{"st", "schema", "one"}, {"st.b", "schema", "two"}, {"st", "b.schema", "three"}, {"st", "empty", ""}}
	for _, c := range saves {
		if err := s.State(c.conn).Save(ctx, c.key, []byte(c.data)); err != nil {
			return fmt.Errorf("Save %s/%s: %w", c.conn, c.key, err)
		}
	}
	var f failures
	again := open(tb)
	for _, c := range saves {
		got, err := again.State(c.conn).Load(ctx, c.key)
		if err != nil || got == nil || string(got) != c.data {
			f.add("state %s/%s from a new instance = %q (nil: %v), %v; want %q", c.conn, c.key, got, got == nil, err, c.data)
		}
	}
	if err := s.State("st").Save(ctx, "", []byte("x")); err == nil {
		f.add("Save under an empty key succeeded")
	}
	if names, err := s.List(ctx); err != nil || contains(names, "st") || contains(names, "st.b") {
		f.add("List = %q, %v: it counts state as offsets", names, err)
	}
	return f.err()
}

func checkListAndReset(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s := open(tb)
	names := []string{"Zeta", "a.b", "a/b", "ünï code", "zeta"}
	for _, n := range names {
		if err := s.Commit(ctx, n, record.Position{1}); err != nil {
			return fmt.Errorf("Commit %q: %w", n, err)
		}
		if err := s.State(n).Save(ctx, "snapshot", []byte("progress")); err != nil {
			return fmt.Errorf("Save state of %q: %w", n, err)
		}
	}
	var f failures
	got, err := s.List(ctx)
	if err != nil {
		return fmt.Errorf("List: %w", err)
	}
	for _, n := range names {
		if !contains(got, n) {
			f.add("List = %q, missing %q", got, n)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			f.add("List is not sorted: %q", got)
			break
		}
	}
	if err := s.Reset(ctx, "a.b", nil); err != nil {
		return fmt.Errorf("Reset a.b: %w", err)
	}
	if err := s.Reset(ctx, "never-committed", nil); err != nil {
		f.add("Reset of a connector without a position: %v", err)
	}
	again := open(tb)
	if pos, err := again.Load(ctx, "a.b"); err != nil || pos != nil {
		f.add("position after Reset = %s, %v; want nil", pos, err)
	}
	if data, err := again.State("a.b").Load(ctx, "snapshot"); err != nil || data != nil {
		f.add("state after Reset = %q, %v; want none", data, err)
	}
	for _, other := range []string{"a/b", "Zeta"} {
		if pos, err := again.Load(ctx, other); err != nil || pos == nil {
			f.add("%s's position after resetting a.b = %s, %v; want it kept", other, pos, err)
		}
		if data, err := again.State(other).Load(ctx, "snapshot"); err != nil || string(data) != "progress" {
			f.add("%s's state after resetting a.b = %q, %v; want it kept", other, data, err)
		}
	}
	return f.err()
}

func checkResetTo(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s := open(tb)
	for _, n := range []string{"ep", "ep.b"} {
		if err := s.Commit(ctx, n, record.Position{2, 7}); err != nil {
			return fmt.Errorf("Commit %s: %w", n, err)
		}
		if err := s.State(n).Save(ctx, "snapshot", []byte("progress")); err != nil {
			return fmt.Errorf("Save state of %s: %w", n, err)
		}
	}
	marker := record.Position{0xff, 0, 0, 0, 1}
	if err := s.Reset(ctx, "ep", marker); err != nil {
		return fmt.Errorf("Reset to %s: %w", marker, err)
	}
	var f failures
	again := open(tb)
	if pos, err := again.Load(ctx, "ep"); err != nil || !reflect.DeepEqual(pos, marker) {
		f.add("position after Reset to %s = %s, %v", marker, pos, err)
	}
	if data, err := again.State("ep").Load(ctx, "snapshot"); err != nil || data != nil {
		f.add("state after Reset = %q, %v; want none", data, err)
	}
	if names, err := again.List(ctx); err != nil || !contains(names, "ep") {
		f.add("List = %q, %v; want the reset connector listed", names, err)
	}
	if pos, err := again.Load(ctx, "ep.b"); err != nil || !reflect.DeepEqual(pos, record.Position{2, 7}) {
		f.add("another connector's position = %s, %v; want it kept", pos, err)
	}
	if data, err := again.State("ep.b").Load(ctx, "snapshot"); err != nil || string(data) != "progress" {
		f.add("another connector's state = %q, %v; want it kept", data, err)
	}
	if err := s.Reset(ctx, "ep", record.Position{}); err == nil {
		f.add("Reset to an empty position succeeded")
	}
	return f.err()
}

func checkConcurrent(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s := open(tb)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("worker-%d", w)
			for i := 1; i <= 20; i++ {
				if err := s.Commit(ctx, name, record.Position{byte(w), byte(i)}); err != nil {
					errs[w] = fmt.Errorf("%s: Commit: %w", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var f failures
	for w := range 4 {
		pos, err := s.Load(ctx, fmt.Sprintf("worker-%d", w))
		if err != nil || !reflect.DeepEqual(pos, record.Position{byte(w), 20}) {
			f.add("worker-%d = %s, %v; want its last commit %s", w, pos, err, record.Position{byte(w), 20})
		}
	}
	return f.err()
}

// holder is a recognisable lease holder.
func holder(who string) offsets.Holder {
	return offsets.Holder{Host: "host-" + who, PID: 1000 + len(who), Since: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC), Config: "/etc/" + who + ".yaml"}
}

func release(ctx context.Context, l offsets.Lease) { _ = l.Release(ctx) }

func checkSecondAcquire(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s1, s2 := open(tb), open(tb)
	a, err := s1.Acquire(ctx, "held", holder("a"))
	if err != nil {
		return fmt.Errorf("Acquire: %w", err)
	}
	defer release(ctx, a)
	var f failures
	_, err = s2.Acquire(ctx, "held", holder("b"))
	var held *offsets.HeldError
	if !errors.As(err, &held) {
		return fmt.Errorf("second Acquire: err = %v, want an *offsets.HeldError", err)
	}
	want := "connector held is held by host host-a pid 1001 since 2026-12-05T09:00:00Z (/etc/a.yaml)"
	if !strings.HasPrefix(err.Error(), want) || held.Holder.PID != 1001 {
		f.add("second Acquire: %q, want it to start %q", err, want)
	}
	if _, err := s1.Acquire(ctx, "held", holder("a")); !offsets.IsHeld(err) {
		f.add("Acquire through the holder's own instance: err = %v, want held", err)
	}
	o, err := s2.Acquire(ctx, "held-other", holder("b"))
	if err != nil {
		f.add("Acquire of another connector: %v", err)
	} else {
		release(ctx, o)
	}
	return f.err()
}

func checkLeaseForward(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s1, s2 := open(tb), open(tb)
	a, err := s1.Acquire(ctx, "forward", holder("a"))
	if err != nil {
		return fmt.Errorf("Acquire: %w", err)
	}
	defer release(ctx, a)
	for _, p := range []record.Position{{1, 5}, {1, 5}, {2}} {
		if err := a.Commit(ctx, "forward", p); err != nil {
			return fmt.Errorf("lease Commit %s: %w", p, err)
		}
	}
	var f failures
	for _, p := range []record.Position{{1, 9}, {1}} {
		if err := a.Commit(ctx, "forward", p); err == nil {
			f.add("lease Commit of %s after 02 succeeded; an offset never moves backwards", p)
		}
	}
	if err := a.Commit(ctx, "forward", record.Position{0xff}); err != nil {
		f.add("lease Commit of ff (an epoch above): %v", err)
	}
	if pos, err := s2.Load(ctx, "forward"); err != nil || !reflect.DeepEqual(pos, record.Position{0xff}) {
		f.add("Load through another instance = %s, %v; want ff", pos, err)
	}
	if pos, err := a.Load(ctx, "forward"); err != nil || !reflect.DeepEqual(pos, record.Position{0xff}) {
		f.add("Load through the lease = %s, %v; want ff", pos, err)
	}
	if err := a.Commit(ctx, "forward-other", record.Position{9}); err == nil {
		f.add("a lease on connector forward committed connector forward-other's offset")
	}
	return f.err()
}

func checkHandover(ctx context.Context, tb testing.TB, open Opener, _ LeaseOptions) error {
	s1, s2 := open(tb), open(tb)
	a, err := s1.Acquire(ctx, "handover", holder("a"))
	if err != nil {
		return fmt.Errorf("Acquire: %w", err)
	}
	if err := a.Commit(ctx, "handover", record.Position{1}); err != nil {
		return fmt.Errorf("Commit: %w", err)
	}
	if err := a.Release(ctx); err != nil {
		return fmt.Errorf("Release: %w", err)
	}
	b, err := s2.Acquire(ctx, "handover", holder("b"))
	if err != nil {
		return fmt.Errorf("Acquire after Release: %w", err)
	}
	defer release(ctx, b)
	var f failures
	if b.Generation() <= a.Generation() {
		f.add("generations: %d then %d, want increasing", a.Generation(), b.Generation())
	}
	if pos, err := b.Load(ctx, "handover"); err != nil || !reflect.DeepEqual(pos, record.Position{1}) {
		f.add("new owner loads %s, %v; want 01", pos, err)
	}
	if err := a.Commit(ctx, "handover", record.Position{2}); !offsets.IsLost(err) {
		f.add("old owner's Commit after its Release: err = %v, want an *offsets.LostError", err)
	}
	if err := b.Commit(ctx, "handover", record.Position{3}); err != nil {
		f.add("new owner's Commit: %v", err)
	}
	select {
	case <-a.Lost():
	default:
		f.add("a released lease's Lost channel is open")
	}
	return f.err()
}

func checkTakeover(ctx context.Context, tb testing.TB, open Opener, opts LeaseOptions) error {
	if opts.Steal == nil {
		return ErrNotApplicable
	}
	s1, s2 := open(tb), open(tb)
	a, err := s1.Acquire(ctx, "takeover", holder("a"))
	if err != nil {
		return fmt.Errorf("Acquire: %w", err)
	}
	defer release(ctx, a)
	if err := a.Commit(ctx, "takeover", record.Position{1}); err != nil {
		return fmt.Errorf("Commit: %w", err)
	}
	opts.Steal(tb, a)
	b, err := acquireWithin(ctx, s2, "takeover", holder("b"))
	if err != nil {
		return fmt.Errorf("takeover: %w", err)
	}
	defer release(ctx, b)
	var f failures
	err = a.Commit(ctx, "takeover", record.Position{5})
	if !offsets.IsLost(err) {
		f.add("old owner's Commit after the takeover: err = %v, want an *offsets.LostError", err)
	}
	if pos, err := s2.Load(ctx, "takeover"); err != nil || !reflect.DeepEqual(pos, record.Position{1}) {
		f.add("position after the fenced commit = %s, %v; want 01 kept", pos, err)
	}
	select {
	case <-a.Lost():
	case <-time.After(Bound):
		f.add("the old owner's Lost channel stayed open for %s after the takeover", Bound)
	}
	if err := b.Commit(ctx, "takeover", record.Position{2}); err != nil {
		f.add("new owner's Commit: %v", err)
	}
	return f.err()
}

func checkProcessDeath(ctx context.Context, tb testing.TB, open Opener, opts LeaseOptions) error {
	if opts.Holder == nil {
		return ErrNotApplicable
	}
	s := open(tb)
	child := opts.Holder(tb, "death")
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start the holder process: %w", err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "held") {
		return fmt.Errorf("holder process said %q, %v; want a line starting \"held\"", line, err)
	}
	_, err = s.Acquire(ctx, "death", holder("a"))
	var held *offsets.HeldError
	if !errors.As(err, &held) || held.Holder.PID != child.Process.Pid {
		return fmt.Errorf("Acquire while the holder process has it: err = %v, want held by pid %d", err, child.Process.Pid)
	}
	if err := child.Process.Kill(); err != nil {
		return err
	}
	_ = child.Wait()
	l, err := acquireWithin(ctx, s, "death", holder("a"))
	if err != nil {
		return fmt.Errorf("Acquire after the holder process was killed: %w", err)
	}
	return l.Release(ctx)
}

// acquireWithin asks for the lease until it is free, for at most Bound.
func acquireWithin(ctx context.Context, s offsets.Store, connector string, h offsets.Holder) (offsets.Lease, error) {
	deadline := time.Now().Add(Bound)
	for {
		l, err := s.Acquire(ctx, connector, h)
		if err == nil {
			return l, nil
		}
		if !offsets.IsHeld(err) || time.Now().After(deadline) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// HoldLease is the body of the process LeaseOptions.Holder starts: it takes the lease
// of connector as this process, writes "held" and a newline to w, and holds the lease
// until ctx ends.
func HoldLease(ctx context.Context, s offsets.Store, connector string, w io.Writer) error {
	l, err := s.Acquire(ctx, connector, offsets.ThisProcess("offsetstest", "holder process"))
	if err != nil {
		return fmt.Errorf("acquire %s: %w", connector, err)
	}
	if _, err := fmt.Fprintln(w, "held"); err != nil {
		return err
	}
	<-ctx.Done()
	return l.Release(context.WithoutCancel(ctx))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
