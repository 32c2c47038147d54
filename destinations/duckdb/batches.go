package duckdb

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/destinations/warehouse"
	"github.com/connectd/connectd/record"
)

// batchRows is the rows of one Arrow record batch: DuckDB's row group, so that a batch
// is built while DuckDB stores the one before, and only one is held at a time.
const batchRows = 122_880

// batches is the rows of one load as an Arrow record reader, each batch built when
// DuckDB asks for it. A value that cannot be converted ends the stream with err,
// which Load returns instead of DuckDB's report of the failed scan.
type batches struct {
	refs   atomic.Int64
	schema *arrow.Schema
	cols   []column
	names  []string
	rows   [][]record.Value
	next   int // the first row of the next batch
	cur    arrow.RecordBatch
	err    error
}

var _ array.RecordReader = (*batches)(nil)

func newBatches(cols []warehouse.LoadColumn, rows [][]record.Value) (*batches, error) {
	b := &batches{rows: rows, cols: make([]column, len(cols)), names: make([]string, len(cols))}
	fields := make([]arrow.Field, len(cols))
	for i, col := range cols {
		c, err := columnOf(col.Type, 1)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col.Name, err)
		}
		// Positional names: the view's columns need not be valid or distinct as the
		// target's names are.
		b.cols[i], b.names[i] = c, col.Name
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i+1), Type: c.typ, Nullable: true}
	}
	b.schema = arrow.NewSchema(fields, nil)
	b.refs.Store(1)
	return b, nil
}

func (b *batches) Retain() { b.refs.Add(1) }

func (b *batches) Release() {
	if b.refs.Add(-1) == 0 && b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
}

func (b *batches) Schema() *arrow.Schema { return b.schema }

func (b *batches) Next() bool {
	if b.cur != nil {
		b.cur.Release()
		b.cur = nil
	}
	if b.err != nil || b.next >= len(b.rows) {
		return false
	}
	end := min(b.next+batchRows, len(b.rows))
	rb := array.NewRecordBuilder(memory.DefaultAllocator, b.schema)
	defer rb.Release()
	rb.Reserve(end - b.next)
	for i, c := range b.cols {
		f := rb.Field(i)
		for n := b.next; n < end; n++ {
			v := b.rows[n][i]
			if v == nil {
				f.AppendNull()
				continue
			}
			if err := c.add(f, v); err != nil {
				b.err = connector.Permanent(fmt.Errorf("row %d, column %s: %w", n+1, b.names[i], err))
				return false
			}
		}
	}
	b.cur = rb.NewRecordBatch()
	b.next = end
	return true
}

func (b *batches) RecordBatch() arrow.RecordBatch { return b.cur }

// Record is RecordBatch, under the name that array.RecordReader still requires.
func (b *batches) Record() arrow.RecordBatch { return b.cur }

func (b *batches) Err() error { return b.err }
