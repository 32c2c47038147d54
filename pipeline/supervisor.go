package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/connectd/connectd/config"
	"github.com/connectd/connectd/connector"
)

// Spec is one connector as the supervisor runs it.
type Spec struct {
	Name string
	// Open connects the source (opened in the mode the command wants) and the
	// destination. It is called again for every restart. On error it closes whatever
	// it opened; an error marked connector.Permanent is not retried.
	Open func(ctx context.Context) (connector.Source, connector.Destination, error)
	// Acquire, when set, takes the connector's lease before each Open; the run
	// commits through it and it is released after the run. An error marked
	// connector.Permanent is not retried. Without it, the run commits to Store.
	Acquire  func(ctx context.Context) (Lease, error)
	Store    Store
	Flush    config.Flush
	Logger   *slog.Logger // with the connector's name attached; nil: the supervisor's
	Observer Observer     // nil: NopObserver
}

// Supervisor runs connectors side by side and restarts those that fail transiently,
// each from its committed offset.
type Supervisor struct {
	log *slog.Logger
	// Restart backoff: backoffMin doubling up to backoffMax, with jitter; reset once a
	// run lasted healthyAfter. Fields so that tests can shorten them.
	backoffMin, backoffMax time.Duration
	healthyAfter           time.Duration
	stopTimeout            time.Duration // Options.StopTimeout of each run; 0: default
}

// NewSupervisor returns a supervisor that logs restarts and failures to log.
func NewSupervisor(log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{log: log, backoffMin: time.Second, backoffMax: time.Minute, healthyAfter: 2 * time.Minute}
}

// FailedError names the connectors that ended with an error.
type FailedError struct {
	Names []string         // sorted
	Errs  map[string]error // by connector name
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d connector(s) failed: %s", len(e.Names), strings.Join(e.Names, ", "))
	for _, n := range e.Names {
		fmt.Fprintf(&b, "\n  %s: %v", n, e.Errs[n])
	}
	return b.String()
}

// Unwrap returns each connector's error.
func (e *FailedError) Unwrap() []error {
	out := make([]error, 0, len(e.Names))
	for _, n := range e.Names {
		out = append(out, e.Errs[n])
	}
	return out
}

// errInterrupted is a sync connector that was stopped before it caught up.
var errInterrupted = errors.New("interrupted before it caught up")

// outcome is how one connector's goroutine ended.
type outcome struct {
	name      string
	err       error
	permanent bool // failed with a permanent error (as opposed to failing while stopping)
}

// Run runs every spec in its own goroutine until all have ended.
//
// A transient error restarts the connector after a backoff; a permanent one stops it
// (state "failed") while the others keep running.
//
// With untilDone false (connectd run) connectors run until ctx ends; Run then returns
// nil if every connector stopped cleanly, or an error when all connectors failed
// permanently or a stop could not flush and commit.
//
// With untilDone true (connectd sync) Run returns once each connector has caught up
// (Run returned nil) or failed permanently, with an error naming the failed ones, and
// those interrupted by ctx before they caught up; nil when all are done.
func (s *Supervisor) Run(ctx context.Context, specs []Spec, untilDone bool) error {
	seen := map[string]bool{}
	for _, sp := range specs {
		if seen[sp.Name] {
			return fmt.Errorf("supervisor: connector %q given twice", sp.Name)
		}
		seen[sp.Name] = true
	}
	results := make(chan outcome, len(specs))
	var wg sync.WaitGroup
	for _, sp := range specs {
		wg.Go(func() { results <- s.runOne(ctx, sp, untilDone) })
	}
	wg.Wait()
	close(results)

	var all []outcome
	for o := range results {
		all = append(all, o)
	}
	allPermanent := len(all) > 0
	for _, o := range all {
		allPermanent = allPermanent && o.permanent
	}
	failed := &FailedError{Errs: map[string]error{}}
	for _, o := range all {
		// In run mode a permanent failure of some connectors is shown by the status
		// API and logs while the others keep running; it fails the command only when
		// none is left. A stop that could not flush and commit always fails it.
		if o.err != nil && (untilDone || !o.permanent || allPermanent) {
			failed.Errs[o.name] = o.err
		}
	}
	if len(failed.Errs) == 0 {
		return nil
	}
	for n := range failed.Errs {
		failed.Names = append(failed.Names, n)
	}
	sort.Strings(failed.Names)
	return failed
}

// runOne runs one connector, restarting it after transient errors.
func (s *Supervisor) runOne(ctx context.Context, sp Spec, untilDone bool) outcome {
	log := sp.Logger
	if log == nil {
		log = s.log.With("connector", sp.Name)
	}
	obs := &stateTracker{Observer: sp.Observer}
	if obs.Observer == nil {
		obs.Observer = NopObserver{}
	}
	attempt := 0
	for {
		obs.SetState(StateStarting, nil)
		began := time.Now()
		opened, err := s.attempt(ctx, sp, log, obs)
		switch {
		case err == nil && untilDone && obs.last != StateDone:
			obs.SetState(StateStopped, errInterrupted)
			return outcome{name: sp.Name, err: errInterrupted}
		case err == nil:
			return outcome{name: sp.Name}
		case !opened && ctx.Err() != nil:
			// Cancelled while opening: nothing was read, nothing lost.
			obs.SetState(StateStopped, nil)
			if untilDone {
				return outcome{name: sp.Name, err: errInterrupted}
			}
			return outcome{name: sp.Name}
		case connector.IsPermanent(err) || (untilDone && errors.Is(err, ErrLeaseLost)):
			// A sync that lost its lease stops: another process is running the connector.
			log.Error("connector failed permanently; not restarting it", "err", err)
			obs.SetState(StateFailed, err)
			return outcome{name: sp.Name, err: err, permanent: true}
		case ctx.Err() != nil:
			log.Error("connector could not stop cleanly", "err", err)
			obs.SetState(StateFailed, err)
			return outcome{name: sp.Name, err: err}
		}
		if time.Since(began) >= s.healthyAfter {
			attempt = 0
		}
		d := s.backoff(attempt)
		attempt++
		log.Warn("connector failed; restarting from its committed offset", "err", err, "attempt", attempt, "in", d.Round(time.Millisecond))
		obs.SetState(StateRetrying, err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			obs.SetState(StateStopped, nil)
			if untilDone {
				return outcome{name: sp.Name, err: fmt.Errorf("%w (last error: %v)", errInterrupted, err)}
			}
			return outcome{name: sp.Name}
		case <-t.C:
		}
	}
}

// attempt opens the connector and runs it once; opened says whether Open succeeded.
func (s *Supervisor) attempt(ctx context.Context, sp Spec, log *slog.Logger, obs Observer) (opened bool, err error) {
	store := sp.Store
	if sp.Acquire != nil {
		// The lease comes first: opening a destination may clean up after an earlier
		// run (the S3 store's staging folder), which only the owner may do.
		l, err := sp.Acquire(ctx)
		if err != nil {
			return false, fmt.Errorf("connector %s: %w", sp.Name, err)
		}
		defer func() {
			if err := l.Release(context.WithoutCancel(ctx)); err != nil {
				log.Warn("releasing the lease", "err", err)
			}
		}()
		store = l
	}
	src, dst, err := sp.Open(ctx)
	if err != nil {
		return false, fmt.Errorf("connector %s: open: %w", sp.Name, err)
	}
	return true, Run(ctx, Options{
		Name:        sp.Name,
		Source:      src,
		Destination: dst,
		Store:       store,
		Flush:       sp.Flush,
		StopTimeout: s.stopTimeout,
		Logger:      log,
		Observer:    obs,
	})
}

// backoff is the wait before restart number attempt+1: doubling from backoffMin up
// to backoffMax, then randomised over its upper half so that connectors failing
// together do not retry in lockstep.
func (s *Supervisor) backoff(attempt int) time.Duration {
	d := s.backoffMin
	for i := 0; i < attempt && d < s.backoffMax; i++ {
		d *= 2
	}
	d = min(d, s.backoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// stateTracker remembers the last state set, so the supervisor can tell a run that
// caught up ("done") from one that was stopped.
type stateTracker struct {
	Observer
	last string
}

func (t *stateTracker) SetState(state string, err error) {
	t.last = state
	t.Observer.SetState(state, err)
}
