package pipeline

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// fakeLease is a fakeStore held under a lease that the test can take away.
type fakeLease struct {
	*fakeStore
	once sync.Once
	ch   chan struct{}
	err  error
}

func (l *fakeLease) Lost() <-chan struct{} { return l.ch }
func (l *fakeLease) Err() error {
	select {
	case <-l.ch:
		return l.err
	default:
		return nil
	}
}
func (l *fakeLease) lose(err error)                { l.once.Do(func() { l.err = err; close(l.ch) }) }
func (l *fakeLease) Release(context.Context) error { return nil }

func TestLostLeaseStopsAtOnceWithoutFlushingOrCommitting(t *testing.T) {
	h := newHarness(5, 1)
	h.src.stream = true
	h.dst.block = make(chan struct{})
	h.dst.entered = make(chan struct{}, 1)
	lease := &fakeLease{fakeStore: h.st, ch: make(chan struct{})}
	o := h.options(config.Flush{Rows: 1, Interval: time.Hour})
	o.Store = lease
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), o) }()

	<-h.dst.entered // batch 1 is in Write
	lease.lose(errors.New("lost the lease on connector orders to host b pid 2 since T"))
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its lease was lost")
	}
	if !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "to host b pid 2") {
		t.Fatalf("Run = %v, want the lost lease", err)
	}
	for _, e := range h.ev.all() {
		if strings.HasPrefix(e, "flush") || strings.HasPrefix(e, "commit") {
			t.Errorf("after the lease was lost: %s", e)
		}
	}
	if got := h.dst.durablePositions(); len(got) != 0 {
		t.Errorf("durable %v, want nothing", got)
	}
	if got := h.st.committed("orders"); got != 0 {
		t.Errorf("committed %d, want nothing", got)
	}
}

func TestLeaseLostBetweenBatchesIsAnErrorEvenWithNothingPending(t *testing.T) {
	h := newHarness(3, 1)
	h.src.stream = true
	lease := &fakeLease{fakeStore: h.st, ch: make(chan struct{})}
	h.st.commits = make(chan record.Position, 10)
	o := h.options(config.Flush{Rows: 3, Interval: time.Hour})
	o.Store = lease
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), o) }()
	waitFor(t, h.st.commits, "the commit of 3", func(p record.Position) bool { return posInt(p) == 3 })
	lease.lose(errors.New("could not renew the lease"))
	if err := <-done; !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Run = %v, want the lost lease", err)
	}
}

// The supervisor takes the lease before it opens the connector, runs on it and
// releases it; a sync whose lease is lost fails instead of restarting.
func TestSupervisorAcquiresBeforeOpenAndASyncThatLosesItsLeaseFails(t *testing.T) {
	ev := &events{}
	st := newStore(ev)
	var leases []*fakeLease
	acquire := func(context.Context) (Lease, error) {
		ev.add("acquire")
		l := &fakeLease{fakeStore: st, ch: make(chan struct{})}
		leases = append(leases, l)
		return l, nil
	}
	opens := 0
	open := func(context.Context) (connector.Source, connector.Destination, error) {
		ev.add("open")
		opens++
		src := &fakeSource{ev: ev, recs: recs(3), batch: 1, stream: true}
		l := leases[len(leases)-1]
		src.afterAll = func(ctx context.Context) error {
			l.lose(errors.New("lost the lease on connector orders to host b pid 2 since T"))
			<-ctx.Done()
			return ctx.Err()
		}
		return src, &fakeDest{ev: ev}, nil
	}
	spec := Spec{Name: "orders", Acquire: acquire, Open: open, Flush: config.Flush{Rows: 1, Interval: time.Hour}}
	err := fastSupervisor().Run(context.Background(), []Spec{spec}, true)
	if !errors.Is(err, ErrLeaseLost) || !strings.Contains(err.Error(), "to host b pid 2") {
		t.Fatalf("Run = %v, want the lost lease", err)
	}
	if opens != 1 {
		t.Errorf("opened %d times, want once (a sync does not retry a lost lease)", opens)
	}
	if all := ev.all(); len(all) < 2 || all[0] != "acquire" || all[1] != "open" {
		t.Errorf("events %v, want acquire before open", all)
	}
}
