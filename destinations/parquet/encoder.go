package parquet

import (
	"sync/atomic"

	"github.com/parquet-go/parquet-go"
)

// encoder runs one open file's parquet writer on its own goroutine: it takes the
// batches Write assembled, encodes and compresses them into pages and writes row
// groups to the staging file. Building rows (on the caller's goroutine) and
// encoding (here) then overlap, and with several files open, so do the files.
//
// Memory stays bounded: at most encQueue batches wait, and a batch returns to the
// file's free list once written. Only the encoder touches the parquet writer and the
// staging file's counting writer until it has answered a barrier (sync), after
// which the caller may (the channel hand-off orders the two).
type encoder struct {
	w    *parquet.Writer
	out  *countingWriter
	jobs chan encJob
	free chan *rowBatch
	done chan struct{} // closed when the goroutine returns

	// Published after every job, read by the caller's goroutine at any time.
	mem     atomic.Int64 // what the writer holds in memory (w.Size() minus what it wrote)
	written atomic.Int64 // bytes written to the staging file
	failed  atomic.Bool  // err is set; it may be read after a barrier
	abandon atomic.Bool  // Close: skip the work still queued

	err     error // first error; owned by the goroutine until a barrier
	rgRows  int   // rows in the current row group
	rgBytes int64 // their values' bytes before encoding (rowBatch.bytes)
}

// encQueue is how many batches may wait for one file's encoder.
const encQueue = 4

type encJob struct {
	batch *rowBatch     // rows to write, or nil
	flush bool          // write the row group out afterwards
	close bool          // write the footer (after which the writer is done)
	ack   chan struct{} // closed once the job is done: a barrier
}

func newEncoder(w *parquet.Writer, out *countingWriter) *encoder {
	e := &encoder{
		w:    w,
		out:  out,
		jobs: make(chan encJob, encQueue),
		free: make(chan *rowBatch, encQueue+1),
		done: make(chan struct{}),
	}
	go e.run()
	return e
}

func (e *encoder) run() {
	defer close(e.done)
	for j := range e.jobs {
		if e.err == nil && !e.abandon.Load() {
			e.err = e.do(j)
			if e.err != nil {
				e.failed.Store(true)
			}
		}
		if j.batch != nil {
			j.batch.reset()
			select {
			case e.free <- j.batch:
			default:
			}
		}
		e.mem.Store(max(e.w.Size()-e.out.n, e.rgBytes, 0))
		e.written.Store(e.out.n)
		if j.ack != nil {
			close(j.ack)
		}
	}
}

func (e *encoder) do(j encJob) error {
	if b := j.batch; b != nil && b.rows > 0 {
		for i, cw := range e.w.ColumnWriters() {
			if vals := b.cols[i]; len(vals) > 0 {
				if _, err := cw.WriteRowValues(vals); err != nil {
					return err
				}
			}
		}
		e.rgRows += b.rows
		e.rgBytes += b.bytes
		// A row group ends at rowGroupRows rows or rowGroupBytes in memory, counted
		// before compression too: the writer holds the values of a row group's open
		// pages as they came, and large values that compress well would otherwise
		// keep a row group open far past the budget.
		if e.rgRows >= rowGroupRows || e.w.Size()-e.out.n >= rowGroupBytes || e.rgBytes >= rowGroupBytes {
			j.flush = true
		}
	}
	if j.close {
		e.rgRows, e.rgBytes = 0, 0
		return e.w.Close()
	}
	if j.flush && e.rgRows > 0 {
		e.rgRows, e.rgBytes = 0, 0
		return e.w.Flush()
	}
	return nil
}

// batch returns an empty batch for the caller to fill: a recycled one, or a new one
// while fewer than encQueue+2 exist (the queue, the one being written, the one
// being filled); beyond that it waits for the encoder to return one.
func (e *encoder) batch(made *int, leaves int, warn warnFunc) *rowBatch {
	select {
	case b := <-e.free:
		return b
	default:
	}
	if *made < encQueue+2 {
		*made++
		return newRowBatch(leaves, warn)
	}
	return <-e.free
}

// send queues a job; it blocks while encQueue jobs wait.
func (e *encoder) send(j encJob) { e.jobs <- j }

// sync waits until every job sent so far is done and returns the first error.
func (e *encoder) sync() error {
	ack := make(chan struct{})
	e.jobs <- encJob{ack: ack}
	<-ack
	return e.err
}

// stop ends the goroutine after the queued jobs (skipped when abandon is set) and
// waits for it.
func (e *encoder) stop() {
	close(e.jobs)
	<-e.done
}
