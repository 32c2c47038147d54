package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

func fastSupervisor() *Supervisor {
	s := NewSupervisor(nil)
	s.backoffMin, s.backoffMax = time.Millisecond, 4*time.Millisecond
	return s
}

func TestSupervisorRestartsFromCommittedOffset(t *testing.T) {
	ev := &events{}
	st := newStore(ev)
	obs := &fakeObserver{}
	var mu sync.Mutex
	var sources []*fakeSource
	var dests []*fakeDest
	open := func(context.Context) (connector.Source, connector.Destination, error) {
		mu.Lock()
		defer mu.Unlock()
		src := &fakeSource{ev: ev, recs: recs(10), batch: 5}
		if len(sources) == 0 {
			// The first run emits 1..5, waits until they are committed and acked, then
			// fails as a lost connection would; later runs complete.
			acks := make(chan record.Position, 1)
			src.ackCh = acks
			src.recs = recs(5)
			src.afterAll = func(ctx context.Context) error {
				select {
				case <-acks:
				case <-ctx.Done():
				}
				return errors.New("connection reset")
			}
		}
		dst := &fakeDest{ev: ev}
		sources = append(sources, src)
		dests = append(dests, dst)
		return src, dst, nil
	}
	spec := Spec{Name: "orders", Open: open, Store: st, Flush: config.Flush{Rows: 5, Interval: time.Hour}, Observer: obs}
	if err := fastSupervisor().Run(context.Background(), []Spec{spec}, true); err != nil {
		t.Fatal(err)
	}
	if len(sources) != 2 {
		t.Fatalf("opened %d times, want 2", len(sources))
	}
	if got := posInt(sources[1].starts[0]); got != 5 {
		t.Errorf("restart read from %d, want the committed 5", got)
	}
	var durable []int
	for _, d := range dests {
		durable = append(durable, d.durablePositions()...)
	}
	if !slices.Equal(durable, seq(1, 10)) {
		t.Errorf("durable across runs %v, want 1..10 once each", durable)
	}
	if st.committed("orders") != 10 {
		t.Errorf("committed %d, want 10", st.committed("orders"))
	}
	checkOrder(t, ev.all())
	if !obs.hasState(StateRetrying) || obs.lastState() != StateDone {
		t.Errorf("states %v, want retrying then done", obs.states)
	}
	if sources[0].closed != 1 || dests[0].closed != 1 {
		t.Error("the failed run's source and destination were not closed")
	}
}

// streamSpec is a connector that emits n records, then streams nothing until stopped.
func streamSpec(name string, ev *events, st *fakeStore, obs *fakeObserver, n int) Spec {
	return Spec{
		Name: name,
		Open: func(context.Context) (connector.Source, connector.Destination, error) {
			return &fakeSource{ev: ev, recs: recs(n), batch: 1, stream: true}, &fakeDest{ev: &events{}}, nil
		},
		Store:    st,
		Flush:    config.Flush{Rows: 1},
		Observer: obs,
	}
}

func failingSpec(name string, err error, obs *fakeObserver, opens *int) Spec {
	return Spec{
		Name: name,
		Open: func(context.Context) (connector.Source, connector.Destination, error) {
			*opens++
			return nil, nil, err
		},
		Store:    newStore(&events{}),
		Observer: obs,
	}
}

func TestPermanentFailureStopsOnlyThatConnector(t *testing.T) {
	ev := &events{}
	st := newStore(ev)
	st.commits = make(chan record.Position, 10)
	good := &fakeObserver{}
	bad := &fakeObserver{stateCh: make(chan string, 10)}
	opens := 0
	specs := []Spec{
		streamSpec("good", ev, st, good, 3),
		failingSpec("bad", connector.Permanent(errors.New("table public.nope does not exist")), bad, &opens),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fastSupervisor().Run(ctx, specs, false) }()

	waitFor(t, bad.stateCh, "bad to fail", func(s string) bool { return s == StateFailed })
	waitFor(t, st.commits, "good to commit 3", func(p record.Position) bool { return posInt(p) == 3 })
	if s := good.lastState(); s != StateRunning {
		t.Errorf("good is %q after bad failed, want running", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run mode with one connector left running returned %v, want nil", err)
	}
	if opens != 1 {
		t.Errorf("a permanent failure was retried: opened %d times", opens)
	}
	if good.lastState() != StateStopped {
		t.Errorf("good ended %q, want stopped", good.lastState())
	}
}

func TestAllFailedPermanentlyIsAnError(t *testing.T) {
	var a, b int
	specs := []Spec{
		failingSpec("a", connector.Permanent(errors.New("bad dsn")), &fakeObserver{}, &a),
		failingSpec("b", connector.Permanent(errors.New("no such bucket")), &fakeObserver{}, &b),
	}
	err := fastSupervisor().Run(context.Background(), specs, false)
	var fe *FailedError
	if !errors.As(err, &fe) || !slices.Equal(fe.Names, []string{"a", "b"}) {
		t.Fatalf("err = %v, want both connectors named", err)
	}
	if !strings.Contains(err.Error(), "bad dsn") || !strings.Contains(err.Error(), "no such bucket") {
		t.Errorf("error does not carry the causes: %v", err)
	}
}

func TestSyncNamesFailedConnectors(t *testing.T) {
	ev := &events{}
	st := newStore(ev)
	var opens int
	syncSpec := Spec{
		Name: "done",
		Open: func(context.Context) (connector.Source, connector.Destination, error) {
			return &fakeSource{ev: ev, recs: recs(4), batch: 2}, &fakeDest{ev: ev}, nil
		},
		Store: st,
	}
	specs := []Spec{syncSpec, failingSpec("broken", connector.Permanent(errors.New("wal_level is replica")), &fakeObserver{}, &opens)}
	err := fastSupervisor().Run(context.Background(), specs, true)
	var fe *FailedError
	if !errors.As(err, &fe) || !slices.Equal(fe.Names, []string{"broken"}) {
		t.Fatalf("err = %v, want only broken named", err)
	}
	if st.committed("done") != 4 {
		t.Errorf("done committed %d, want 4", st.committed("done"))
	}
}

func TestTransientOpenErrorsAreRetried(t *testing.T) {
	ev := &events{}
	st := newStore(ev)
	obs := &fakeObserver{}
	opens := 0
	spec := Spec{
		Name: "flaky",
		Open: func(context.Context) (connector.Source, connector.Destination, error) {
			opens++
			if opens < 4 {
				return nil, nil, fmt.Errorf("dial: connection refused (%d)", opens)
			}
			return &fakeSource{ev: ev, recs: recs(2), batch: 2}, &fakeDest{ev: ev}, nil
		},
		Store:    st,
		Observer: obs,
	}
	if err := fastSupervisor().Run(context.Background(), []Spec{spec}, true); err != nil {
		t.Fatal(err)
	}
	if opens != 4 || st.committed("flaky") != 2 {
		t.Errorf("opens %d committed %d, want 4 and 2", opens, st.committed("flaky"))
	}
}

func TestSyncInterruptedIsNotSuccess(t *testing.T) {
	ev := &events{}
	st := newStore(ev)
	st.commits = make(chan record.Position, 10)
	spec := streamSpec("slow", ev, st, &fakeObserver{}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fastSupervisor().Run(ctx, []Spec{spec}, true) }()
	waitFor(t, st.commits, "commit of 2", func(p record.Position) bool { return posInt(p) == 2 })
	cancel()
	err := <-done
	if !errors.Is(err, errInterrupted) {
		t.Fatalf("err = %v, want interrupted", err)
	}
}

func TestBackoffIsCappedAndGrows(t *testing.T) {
	s := NewSupervisor(nil)
	for attempt := range 20 {
		d := s.backoff(attempt)
		want := min(time.Second<<min(attempt, 10), time.Minute)
		if d < want/2 || d > want {
			t.Errorf("attempt %d: backoff %v outside [%v, %v]", attempt, d, want/2, want)
		}
	}
}

func TestDuplicateNamesRejected(t *testing.T) {
	var n int
	specs := []Spec{failingSpec("x", errBoom, &fakeObserver{}, &n), failingSpec("x", errBoom, &fakeObserver{}, &n)}
	if err := fastSupervisor().Run(context.Background(), specs, true); err == nil || n != 0 {
		t.Fatalf("err = %v, opens %d; want an error before opening anything", err, n)
	}
}
