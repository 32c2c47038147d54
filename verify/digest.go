package verify

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"

	"golang.org/x/sync/errgroup"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// The digest pass (docs/design.md, "Verify"): when the source's database can hash its
// rows itself (connector.Digester), the source's rows do not move. The server sums
// its rows' digests per key bucket while the destination's records are folded into
// the same sums, with values rendered into the source's fields instead of canonical
// forms; only the buckets whose sums differ are then read from both sides and compared
// key by key in canonical form. A field form that renders a value unlike the server
// costs time (its bucket is read) and never a false report.

// Methods of a table's comparison.
const (
	MethodDigest = "digest" // the source's database digested its rows
	MethodRows   = "rows"   // the source's rows were read and hashed here
)

// digestForm returns the source's field form for the table, or why there is none.
func digestForm(snap connector.Snapshot, s *record.Schema, enc *encoder, opt Options) (connector.Digester, connector.DigestForm, string) {
	dg, ok := snap.(connector.Digester)
	switch {
	case opt.Method != MethodDigest:
		return nil, nil, "rows requested"
	case !ok:
		return nil, nil, "the source kind cannot digest rows on its server"
	case opt.ReadLimit > 0:
		// One digest query reads the whole table at the server's pace; a rate limit
		// can only pace rows that move.
		return nil, nil, "source reads are rate-limited"
	case enc.keyless:
		return nil, nil, "the table has no key"
	}
	form, err := dg.DigestForm(s)
	if err != nil {
		return nil, nil, err.Error()
	}
	return dg, form, ""
}

// runDigest compares the table by bucket digests, then key by key in the buckets that
// differ.
func (t *tableRun) runDigest(ctx context.Context, dg connector.Digester, form connector.DigestForm, dst connector.Reader, est int64) error {
	q := connector.DigestQuery{Bits: t.bits, SampleBelow: t.sampleBelow}
	fields := newEncoder(t.schema)
	fields.field = form.AppendValue
	src := make([]connector.DigestBucket, 1<<q.Bits)
	got := make([]connector.DigestBucket, 1<<q.Bits)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := dg.Digest(gctx, t.schema, q, func(b connector.DigestBucket) error {
			if int(b.Bucket) >= len(src) {
				return fmt.Errorf("source digest: bucket %d of %d", b.Bucket, len(src))
			}
			src[b.Bucket] = b
			return nil
		})
		if err != nil {
			return fmt.Errorf("source digest: %w", err)
		}
		return nil
	})
	g.Go(func() error { return t.digestDestination(gctx, dst, form, fields, q, got) })
	if err := g.Wait(); err != nil {
		return err
	}

	var differ []uint32
	for i := range src {
		s, d := src[i], got[i]
		t.rep.SourceRows += s.Rows
		t.rep.DestRows += d.Rows
		if s.Rows != d.Rows || s.Sum != d.Sum {
			differ = append(differ, uint32(i))
		}
	}
	t.rep.Ranges, t.rep.RangesDiffering = len(src), len(differ)
	if len(differ) == 0 {
		return nil
	}

	// Key by key over the differing buckets, with canonical forms, as the rows method
	// compares a whole table.
	in := make([]bool, len(src))
	for _, b := range differ {
		in[b] = true
	}
	bq := q
	bq.Buckets = differ
	part := &TableReport{Examples: []KeyDiff{}}
	x := &tableRun{
		opt: t.opt, schema: t.schema, enc: newEncoder(t.schema), dir: t.dir, limit: t.limit,
		boundary: t.boundary, rep: part, noPositions: true,
		scan: func(ctx context.Context, fn func(row []record.Value) error) error {
			return dg.ScanBuckets(ctx, t.schema, bq, fn)
		},
	}
	var kbuf []byte
	x.keep = func(row []record.Value) bool {
		kbuf = connector.AppendDigestRow(kbuf[:0], form, t.schema, row, true)
		h := connector.DigestKey(kbuf)
		return q.Sampled(h) && in[q.BucketOf(h)]
	}
	rows := max(est, 1) * int64(len(differ)) >> q.Bits
	nb := (max(rows, 1) + int64(t.opt.RangeRows) - 1) / int64(t.opt.RangeRows)
	x.bits = min(max(bits.Len64(uint64(nb-1)), 1), maxBits)
	if err := x.run(ctx, dst); err != nil {
		return err
	}
	t.rep.Missing, t.rep.Extra, t.rep.Differing, t.rep.Unresolved = part.Missing, part.Extra, part.Differing, part.Unresolved
	for _, e := range part.Examples {
		t.example(e)
	}
	return nil
}

// digestDestination folds the destination's records into per-bucket digest sums in
// got, with values rendered by fields (the source's form), and checks positions.
func (t *tableRun) digestDestination(ctx context.Context, dst connector.Reader, form connector.DigestForm, fields *encoder, q connector.DigestQuery, got []connector.DigestBucket) error {
	dstSet := newSpillSet(t.dir, "dd", 0, q.Bits)
	defer dstSet.remove()
	posSet := newSpillSet(t.dir, "dp", 0, t.bits)
	defer posSet.remove()
	var buf, kbuf, ckey []byte
	err := t.storedChanges(ctx, dst, dstSet, posSet, func(c *connector.StoredChange, where uint64) ([]byte, bool, error) {
		kbuf = connector.AppendDigestRow(kbuf[:0], form, t.schema, c.Row, true)
		h := connector.DigestKey(kbuf)
		if !q.Sampled(h) {
			return nil, false, nil
		}
		buf = fields.appendPayload(buf[:0], c.Row, c.Unchanged)
		// Positions are reported with the canonical key.
		ckey = t.enc.appendKey(ckey[:0], c.Row)
		return ckey, true, spillChange(dstSet, h, buf, c, where)
	})
	if err != nil {
		return err
	}
	d := &tableRun{opt: t.opt, schema: t.schema, enc: fields, limit: t.limit, cut: t.cut, rep: &TableReport{}, dir: t.dir}
	// Range i holds bucket i's keys (and its splits only them), so workers add to
	// different buckets of got.
	err = d.eachRange(ctx, len(dstSet.files), func(w *tableRun, i int) error {
		f := dstSet.files[i]
		dstSet.files[i] = nil
		return w.digestRange(ctx, f, q, q.Bits, true, got)
	})
	if err != nil {
		return err
	}
	for i := range posSet.files {
		if err := t.checkPositions(ctx, posSet.files[i], t.bits); err != nil {
			return err
		}
		posSet.files[i] = nil
	}
	return nil
}

// digestRange folds one range of destination records and adds each live key's row
// digest to its bucket, splitting the range first when it is too large to load.
func (t *tableRun) digestRange(ctx context.Context, f *spill, q connector.DigestQuery, used int, maySplit bool, got []connector.DigestBucket) error {
	defer f.remove()
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := count(f); maySplit && n > t.limit && used+splitBits <= 64 {
		ss, err := f.split(t.spillName("dd"), used, splitBits, false)
		if err != nil {
			return err
		}
		defer ss.remove()
		for i := range ss.files {
			c := ss.files[i]
			ss.files[i] = nil
			// One key with many records cannot shrink by splitting again.
			if err := t.digestRange(ctx, c, q, used+splitBits, count(c) < n, got); err != nil {
				return err
			}
		}
		return nil
	}
	states, err := t.fold(f)
	if err != nil {
		return err
	}
	for i := range states {
		st := &states[i]
		t.scratch = appendFieldText(t.scratch[:0], st.key)
		b := &got[q.BucketOf(connector.DigestKey(t.scratch))]
		t.scratch = appendFieldText(t.scratch[:0], st.row)
		d := connector.DigestRow(t.scratch)
		b.Rows++
		b.Sum += d
	}
	return nil
}

// appendFieldText turns a row form whose values are digest fields into digest text:
// fields joined by ',', NULL as "N", an unknown column as "?" (which no server
// renders, so an unresolved key's bucket always differs).
func appendFieldText(dst, row []byte) []byte {
	first := true
	for len(row) > 0 {
		var col []byte
		col, row = nextColumn(row)
		if !first {
			dst = append(dst, ',')
		}
		first = false
		switch col[0] {
		case markNull:
			dst = append(dst, 'N')
		case markUnknown:
			dst = append(dst, '?')
		default:
			l, k := binary.Uvarint(col[1:])
			dst = append(dst, col[1+k:1+k+int(l)]...)
		}
	}
	return dst
}
