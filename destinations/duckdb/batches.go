package duckdb

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// batchRows is the rows of one Arrow record batch: DuckDB's row group. Smaller
// batches, which would let building and storing overlap sooner, made DuckDB's side
// of a load cost more CPU in bench/warehouse.
const batchRows = 122_880

// batches is the rows of one load as an Arrow record reader. A goroutine builds the
// batches one ahead of DuckDB's reading, so that Go converts while DuckDB stores. A
// value that cannot be converted ends the stream with an error, which Load returns
// instead of DuckDB's report of the failed scan.
type batches struct {
	refs   atomic.Int64
	schema *arrow.Schema
	cols   []column
	names  []string
	rows   [][]record.Value

	start sync.Once
	built chan built
	stop  chan struct{}
	cur   arrow.RecordBatch

	mu  sync.Mutex // err is set on DuckDB's thread, read on the caller's
	err error
}

type built struct {
	rec arrow.RecordBatch
	err error
}

var _ array.RecordReader = (*batches)(nil)

func newBatches(cols []warehouse.LoadColumn, rows [][]record.Value) (*batches, error) {
	b := &batches{rows: rows, cols: make([]column, len(cols)), names: make([]string, len(cols)),
		built: make(chan built, 1), stop: make(chan struct{})}
	fields := make([]arrow.Field, len(cols))
	for i, col := range cols {
		c, err := columnOf(col.Type, 1)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		b.cols[i], b.names[i] = c, col.Name
		// Positional names: the target's need not be distinct as DuckDB compares them.
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i+1), Type: c.typ, Nullable: true}
	}
	b.schema = arrow.NewSchema(fields, nil)
	b.refs.Store(1)
	return b, nil
}

// produce builds the batches in order until the rows end, a value fails, or Release
// stops it.
func (b *batches) produce() {
	defer close(b.built)
	for from := 0; from < len(b.rows); from += batchRows {
		rec, err := b.build(from, min(from+batchRows, len(b.rows)))
		select {
		case b.built <- built{rec, err}:
		case <-b.stop:
			if rec != nil {
				rec.Release()
			}
			return
		}
		if err != nil {
			return
		}
	}
}

// build converts rows [from, to) into a record batch, column by column.
func (b *batches) build(from, to int) (arrow.RecordBatch, error) {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, b.schema)
	defer rb.Release()
	rb.Reserve(to - from)
	for i, c := range b.cols {
		f := rb.Field(i)
		if c.text {
			size := 0
			for n := from; n < to; n++ {
				if v := b.rows[n][i]; v != nil {
					size += textSize(v)
				}
			}
			f.(interface{ ReserveData(int) }).ReserveData(size)
		}
		for n := from; n < to; n++ {
			v := b.rows[n][i]
			if v == nil {
				f.AppendNull()
				continue
			}
			if err := c.add(f, v); err != nil {
				return nil, connector.Permanent(fmt.Errorf("row %d, column %s: %w", n+1, b.names[i], err))
			}
		}
	}
	return rb.NewRecordBatch(), nil
}

func (b *batches) Retain() { b.refs.Add(1) }

// Release stops the building and frees what was built once the last reference goes.
func (b *batches) Release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	close(b.stop)
	b.start.Do(func() { close(b.built) })
	for r := range b.built {
		if r.rec != nil {
			r.rec.Release()
		}
	}
	if b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
}

func (b *batches) Schema() *arrow.Schema { return b.schema }

func (b *batches) Next() bool {
	b.start.Do(func() { go b.produce() })
	if b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
	r, ok := <-b.built
	if !ok {
		return false
	}
	if r.err != nil {
		b.mu.Lock()
		b.err = r.err
		b.mu.Unlock()
		return false
	}
	b.cur = r.rec
	return true
}

func (b *batches) RecordBatch() arrow.RecordBatch { return b.cur }

// Record is RecordBatch, under the name that array.RecordReader still requires.
func (b *batches) Record() arrow.RecordBatch { return b.cur }

func (b *batches) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
