package verify

import (
	"context"
	"runtime"

	"golang.org/x/sync/errgroup"
)

// maxWorkers bounds how many ranges are compared at once: each worker holds one range
// in memory, so memory is bounded by the range size times this.
const maxWorkers = 4

// eachRange runs fn for ranges 0..n-1 on up to GOMAXPROCS workers (at most maxWorkers),
// each a copy of t with a report of its own per range; the reports are then added to
// t's in range order, so counts and examples come out as a sequential run gives them.
func (t *tableRun) eachRange(ctx context.Context, n int, fn func(w *tableRun, i int) error) error {
	reports := make([]*TableReport, n)
	workers := min(max(runtime.GOMAXPROCS(0), 1), maxWorkers, max(n, 1))
	next := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	for k := range workers {
		w := *t
		w.scratch, w.splits, w.worker = nil, 0, k
		g.Go(func() error {
			for i := range next {
				w.rep = &TableReport{Examples: []KeyDiff{}}
				reports[i] = w.rep
				if err := fn(&w, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range reports {
		if r != nil {
			t.add(r)
		}
	}
	return nil
}

// add adds a range's partial report to t's.
func (t *tableRun) add(r *TableReport) {
	t.rep.Ranges += r.Ranges
	t.rep.RangesDiffering += r.RangesDiffering
	t.rep.DestRows += r.DestRows
	t.rep.Missing += r.Missing
	t.rep.Extra += r.Extra
	t.rep.Differing += r.Differing
	t.rep.Unresolved += r.Unresolved
	t.rep.DuplicatePositions += r.DuplicatePositions
	for _, e := range r.Examples {
		t.example(e)
	}
}
