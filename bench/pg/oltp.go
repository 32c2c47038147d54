package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// The OLTP-shaped workload's statements. Each changes one row, by key.
const (
	oltpInsert = "INSERT INTO bench.oltp SELECT " + rowExpr + " FROM (SELECT $1::int8 AS i) AS s"
	oltpUpdate = `UPDATE bench.oltp SET amount = amount + 1.25, active = NOT active,
		note = 'upd ' || substr(md5(id::text || $2::int8::text), 1, 16 + (id % 20)::int),
		attrs = attrs || jsonb_build_object('v', $2::int8)
		WHERE id = $1`
	oltpDelete = "DELETE FROM bench.oltp WHERE id = $1"
)

// oltpPhase streams an OLTP-shaped workload: most transactions change one row, they
// come from several clients at once, and they interleave in the WAL. It is drained
// the same way as the stream phase; what it adds is a cost per transaction (a
// Begin/Commit pair per one or two rows) that large transactions hide.
func (b *bench) oltpPhase(ctx context.Context) error {
	r := &streamResult{}
	b.oltp = r
	preload := b.o.preload
	logf("oltp: preloading bench.oltp with %d rows", preload)
	if _, err := b.exec(ctx, "CREATE SCHEMA IF NOT EXISTS bench"); err != nil {
		return err
	}
	if _, err := b.exec(ctx, fmt.Sprintf(tableDDL, "bench.oltp")); err != nil {
		return err
	}
	if err := b.loadRows(ctx, "bench.oltp", 1, preload); err != nil {
		return err
	}
	if _, err := b.exec(ctx, "VACUUM ANALYZE bench.oltp"); err != nil {
		return err
	}
	if err := b.createSlots(ctx, "oltp", "bench.oltp", "bench_recvlogical_oltp"); err != nil {
		return err
	}
	startLSN, err := b.walLSN(ctx)
	if err != nil {
		return err
	}
	logf("oltp: %d changes from %d clients", b.o.changes, b.o.clients)
	t0 := time.Now()
	if err := b.oltpWorkload(ctx, r, preload); err != nil {
		return err
	}
	r.workload = time.Since(t0)
	endLSN, err := b.walSince(ctx, r, startLSN)
	if err != nil {
		return err
	}
	logf("  %d changes (%d inserts, %d updates, %d deletes) in %d transactions (%d of one row), %s, %.0f MiB of WAL, end LSN %s",
		r.changes, r.inserts, r.upd, r.del, r.txns, r.singleTxns, r.workload.Round(time.Millisecond), float64(r.walBytes)/(1<<20), endLSN)
	if err := b.drain(ctx, "oltp", r, connectorConfig{name: "oltp", table: "bench.oltp", snapshot: "never"}, "bench_recvlogical_oltp", endLSN); err != nil {
		return err
	}
	_, err = b.exec(ctx, "DROP TABLE bench.oltp")
	return err
}

// oltpClient is one client's share of the workload. Clients own disjoint keys (id
// = k*clients + w + 1), so they never wait on each other's row locks; its live keys
// are the index range [lo, hi): inserts extend it, deletes take its oldest.
type oltpClient struct {
	w, clients    int64
	lo, hi        int64
	rng           *rand.Rand
	changes       int64
	ins, upd, del int64
	txns, singles int64
}

func (c *oltpClient) id(k int64) int64 { return k*c.clients + c.w + 1 }

// next picks one row change: about 45% inserts, 40% updates, 15% deletes (inserts
// only while few rows are live).
func (c *oltpClient) next(seq int64) (sql string, args []any, op *int64) {
	live := c.hi - c.lo
	p := c.rng.IntN(100)
	switch {
	case p < 40 && live > 2:
		k := c.lo + c.rng.Int64N(live)
		return oltpUpdate, []any{c.id(k), seq}, &c.upd
	case p < 55 && live > 100:
		k := c.lo
		c.lo++
		return oltpDelete, []any{c.id(k)}, &c.del
	default:
		k := c.hi
		c.hi++
		return oltpInsert, []any{c.id(k)}, &c.ins
	}
}

// oltpWorkload makes b.o.changes row changes from b.o.clients connections: 90% of
// the transactions change one row (one autocommitted statement), the rest 2-5 rows
// (one pipelined batch, which the server runs as one transaction).
func (b *bench) oltpWorkload(ctx context.Context, r *streamResult, preload int64) error {
	n := int64(b.o.clients)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range n {
		c := &oltpClient{w: w, clients: n, hi: preload / n, rng: rand.New(rand.NewPCG(42, uint64(w)))}
		share := b.o.changes / n
		if w == n-1 {
			share = b.o.changes - share*(n-1)
		}
		wg.Go(func() {
			if err := c.run(gctx, b.pg.DSN, share); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("client %d: %w", w, err))
				mu.Unlock()
				cancel()
				return
			}
			mu.Lock()
			r.inserts, r.upd, r.del = r.inserts+c.ins, r.upd+c.upd, r.del+c.del
			r.txns, r.singleTxns = r.txns+c.txns, r.singleTxns+c.singles
			r.changes += c.changes
			mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run makes share row changes on a connection of its own.
func (c *oltpClient) run(ctx context.Context, dsn string, share int64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	for c.changes < share {
		size := int64(1)
		if c.rng.IntN(10) == 0 {
			size = 2 + c.rng.Int64N(4)
		}
		size = min(size, share-c.changes)
		if err := c.txn(ctx, conn, size); err != nil {
			return fmt.Errorf("transaction %d: %w", c.txns, err)
		}
	}
	return nil
}

// txn runs one transaction of size row changes and checks each changed one row.
func (c *oltpClient) txn(ctx context.Context, conn *pgx.Conn, size int64) error {
	if size == 1 {
		sql, args, op := c.next(c.txns)
		tag, err := conn.Exec(ctx, sql, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s changed %d rows, want 1", firstLine(sql), tag.RowsAffected())
		}
		*op++
		c.changes++
		c.txns++
		c.singles++
		return nil
	}
	var batch pgx.Batch
	ops := make([]*int64, 0, size)
	for range size {
		sql, args, op := c.next(c.txns)
		batch.Queue(sql, args...)
		ops = append(ops, op)
	}
	res := conn.SendBatch(ctx, &batch)
	var errs []error
	for range ops {
		tag, err := res.Exec()
		if err == nil && tag.RowsAffected() != 1 {
			err = fmt.Errorf("a statement changed %d rows, want 1", tag.RowsAffected())
		}
		errs = append(errs, err)
	}
	errs = append(errs, res.Close())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, op := range ops {
		*op++
	}
	c.changes += size
	c.txns++
	return nil
}
