package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/connectd/connectd/status"
)

// How often progress is shown: bars are redrawn from the registry every
// barsEvery; without a terminal a log line per table comes every logEvery.
const (
	barsEvery = 500 * time.Millisecond
	logEvery  = 30 * time.Second
)

// showProgress shows the snapshots' progress until ctx ends: on a terminal a bar per
// table being read (with the logs printed above the bars while they show), otherwise
// a log line per table every logEvery. The figures are the status API's.
func showProgress(ctx context.Context, terminal bool, out io.Writer, logs *switchWriter, reg *status.Registry, log *slog.Logger) {
	every := logEvery
	var bars *progressBars
	if terminal {
		every = barsEvery
		bars = &progressBars{out: out, logs: logs, bars: map[string]*tableBar{}}
		defer bars.close()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	logged := map[string]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if bars != nil {
				bars.update(ctx, reg.Views())
			} else {
				logProgress(log, reg.Views(), logged)
			}
		}
	}
}

// logProgress logs each table of a snapshot in progress that read rows since the
// last call (logged holds the rows then).
func logProgress(log *slog.Logger, views []status.View, logged map[string]int64) {
	for _, v := range views {
		if v.Phase != status.PhaseSnapshot {
			continue
		}
		for _, t := range v.Snapshot {
			key := v.Name + "\x00" + t.Table
			if prev, ok := logged[key]; ok && prev == t.Rows {
				continue
			}
			logged[key] = t.Rows
			attrs := []any{"connector", v.Name, "table", t.Table, "rows", t.Rows, "estimate", t.Total,
				"percent", t.Percent, "rows_per_s", t.RowsPerSecond}
			if t.ETASeconds != nil {
				attrs = append(attrs, "eta", (time.Duration(*t.ETASeconds) * time.Second).String())
			}
			log.Info("snapshot progress", attrs...)
		}
	}
}

// progressBars keeps a bar per (connector, table) being snapshotted. The container
// lives while some bar does, and the logs go through it meanwhile, so that a log
// line prints above the bars instead of through them.
type progressBars struct {
	out    io.Writer
	logs   *switchWriter
	p      *mpb.Progress
	ctx    context.Context // the container's
	redraw chan any        // the container draws when it receives
	bars   map[string]*tableBar
}

type tableBar struct {
	bar *mpb.Bar
	mu  sync.Mutex // guards last, which the bar's decorator reads while drawing
	// last is the table's latest figures; still counts the polls that left it as is.
	last  status.TableProgress
	still int
}

func (pb *progressBars) update(ctx context.Context, views []status.View) {
	seen := map[string]bool{}
	for _, v := range views {
		if v.Phase != status.PhaseSnapshot {
			continue
		}
		for _, t := range v.Snapshot {
			key := v.Name + " " + t.Table
			tb := pb.bars[key]
			if tb == nil {
				if t.Total > 0 && t.Rows >= t.Total {
					continue // done before it was first shown
				}
				tb = pb.add(ctx, key)
			}
			tb.mu.Lock()
			if t.Rows == tb.last.Rows {
				tb.still++
			} else {
				tb.still = 0
			}
			tb.last = t
			tb.mu.Unlock()
			// A table is done when it reached its estimate and stopped moving (the
			// estimate is raised to the rows read when they pass it).
			if t.Total > 0 && t.Rows >= t.Total && tb.still > 0 {
				continue
			}
			seen[key] = true
			tb.bar.SetTotal(max(t.Total, t.Rows, 1), false)
			tb.bar.SetCurrent(t.Rows)
		}
	}
	for key, tb := range pb.bars {
		if !seen[key] {
			tb.bar.SetTotal(-1, true) // complete at the rows read
			delete(pb.bars, key)
		}
	}
	if len(pb.bars) == 0 {
		pb.close()
	} else if pb.p != nil {
		pb.refresh()
	}
}

func (pb *progressBars) add(ctx context.Context, key string) *tableBar {
	if pb.p == nil {
		pb.ctx, pb.redraw = ctx, make(chan any)
		pb.p = mpb.NewWithContext(ctx, mpb.WithOutput(pb.out), mpb.WithWidth(40), mpb.WithManualRefresh(pb.redraw))
		pb.logs.set(pb.p)
	}
	tb := &tableBar{}
	tb.bar = pb.p.New(1, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name(key, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			tb.mu.Lock()
			defer tb.mu.Unlock()
			return figures(tb.last)
		})))
	pb.bars[key] = tb
	return tb
}

// close completes the bars left and gives the logs back to the terminal.
func (pb *progressBars) close() {
	if pb.p == nil {
		return
	}
	for key, tb := range pb.bars {
		tb.bar.Abort(false)
		delete(pb.bars, key)
	}
	pb.logs.set(nil)
	pb.refresh() // the logs written through the container since its last drawing
	pb.p.Wait()
	pb.p = nil
}

// refresh draws the bars and prints the logs written through the container since
// the last time. The container's listener hands the request on before it can see
// the container end, so what was written before refresh is drawn before Wait ends.
func (pb *progressBars) refresh() {
	select {
	case pb.redraw <- struct{}{}:
	case <-pb.ctx.Done(): // the container ends with it
	}
}

// figures is what a bar shows after it: "1.2M/5.0M rows 310k rows/s 12s left".
func figures(t status.TableProgress) string {
	s := status.Human(t.Rows)
	if t.Total > 0 {
		s += "/" + status.Human(t.Total)
	}
	s += " rows"
	if t.RowsPerSecond > 0 {
		s += fmt.Sprintf(" %s rows/s", status.Human(int64(t.RowsPerSecond)))
	}
	if t.ETASeconds != nil {
		s += " " + (time.Duration(*t.ETASeconds) * time.Second).String() + " left"
	}
	return s
}

// switchWriter is the logs' writer: the terminal (w), or the progress bars'
// container while it shows bars (via). A write holds the lock, so that once set
// returns no write is still on its way to the container being replaced; one the
// container refuses (it ended with its context) goes to w.
type switchWriter struct {
	mu  sync.Mutex
	w   io.Writer
	via io.Writer
}

func (s *switchWriter) set(via io.Writer) {
	s.mu.Lock()
	s.via = via
	s.mu.Unlock()
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.via != nil {
		if n, err := s.via.Write(p); err == nil {
			return n, nil
		}
	}
	return s.w.Write(p)
}
