package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"os"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Options tune one table's comparison.
type Options struct {
	RangeRows   int     // target rows per key range (bucket); 0 means 50000
	Sample      float64 // percent of keys compared, (0,100]; 0 means 100
	TempDir     string  // where range files are spilled; "" means os.TempDir()
	MaxExamples int     // differing keys listed per table; 0 means 20
	Logger      *slog.Logger
	// ReadLimit, when > 0, caps source rows read per second (the daemon's background
	// runs); the source's rows then move, since a server digest cannot be paced.
	ReadLimit float64
	// Method is MethodRows ("" too) or MethodDigest: the source's server digests key
	// ranges where it can (docs/design.md, "Verify": which costs the server more CPU
	// than sending its rows, and the network nothing).
	Method string
}

const (
	defaultRangeRows   = 50000
	defaultMaxExamples = 20
	// A range is split when either side holds more than this many times RangeRows
	// entries: what bounds memory when the estimate was low or a key has many records.
	splitFactor = 4
	splitBits   = 4 // a split makes 16 ranges
	minBits     = 4 // at least 16 ranges
	maxBits     = 8 // at most 256 files open at once while spilling
	maxColDiffs = 5
)

// Table compares one table: the destination's state rebuilt from its stored records
// whose position is below boundary (a runtime position: the epoch prefix, if any, then
// the source's Boundary) with the source snapshot's rows (docs/design.md, "Verify").
func Table(ctx context.Context, snap connector.Snapshot, dst connector.Reader, schema *record.Schema, boundary record.Position, opt Options) (*TableReport, error) {
	start := time.Now()
	if opt.RangeRows <= 0 {
		opt.RangeRows = defaultRangeRows
	}
	if opt.Sample <= 0 || opt.Sample > 100 {
		opt.Sample = 100
	}
	if opt.MaxExamples <= 0 {
		opt.MaxExamples = defaultMaxExamples
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	name := schema.QualifiedName()
	dir, err := os.MkdirTemp(opt.TempDir, "connectd-verify-*")
	if err != nil {
		return nil, fmt.Errorf("verify %s: temp dir: %w", name, err)
	}
	defer os.RemoveAll(dir)

	est, err := snap.EstimateRows(ctx, schema)
	if err != nil {
		opt.Logger.Warn("verify: no row estimate, ranges are split as they fill", "table", name, "err", err)
		est = 0
	}
	t := &tableRun{
		opt:      opt,
		schema:   schema,
		enc:      newEncoder(schema),
		dir:      dir,
		limit:    int64(opt.RangeRows) * splitFactor,
		boundary: boundary,
		rep:      &TableReport{Table: name, Where: dst.Describe(schema), Sample: opt.Sample, Examples: []KeyDiff{}},
	}
	if opt.Sample < 100 {
		t.sampleBelow = uint32(math.Min(opt.Sample/100*(1<<32), math.MaxUint32))
	}
	nb := (max(est, 1) + int64(opt.RangeRows) - 1) / int64(opt.RangeRows)
	t.bits = min(max(bits.Len64(uint64(nb-1)), minBits), maxBits)

	t.scan = func(ctx context.Context, fn func(row []record.Value) error) error { return snap.Scan(ctx, schema, fn) }
	if dg, form, why := digestForm(snap, schema, t.enc, opt); dg != nil {
		t.rep.Method = MethodDigest
		err = t.runDigest(ctx, dg, form, dst, est)
	} else {
		t.rep.Method, t.rep.MethodNote = MethodRows, why
		opt.Logger.Debug("verify: moving the source's rows", "table", name, "why", why)
		err = t.run(ctx, dst)
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", name, err)
	}
	t.rep.Elapsed = time.Since(start)
	t.rep.ElapsedSeconds = t.rep.Elapsed.Seconds()
	opt.Logger.Debug("verify: table compared", "table", name, "source_rows", t.rep.SourceRows,
		"destination_rows", t.rep.DestRows, "ranges", t.rep.Ranges, "equal", t.rep.Equal())
	return t.rep, nil
}

type tableRun struct {
	opt         Options
	schema      *record.Schema
	enc         *encoder
	dir         string
	bits        int
	limit       int64
	sampleBelow uint32 // 0: every key
	boundary    record.Position
	cut         record.Position // the latest truncate below the boundary
	wheres      []string
	whereIDs    map[string]uint64
	rep         *TableReport
	scratch     []byte
	splits      int
	worker      int // names a parallel worker's split files apart (ranges.go)
	// scan reads the source's rows (the snapshot's Scan, or ScanBuckets in the
	// digest pass's second step); keep, when set, drops the destination's records
	// outside that step's buckets (ScanBuckets drops the source's); noPositions skips
	// checkPositions there (the first step counted them).
	scan        func(ctx context.Context, fn func(row []record.Value) error) error
	keep        func(row []record.Value) bool
	noPositions bool
}

func (t *tableRun) sampled(h uint64) bool {
	return t.sampleBelow == 0 || uint32(h) < t.sampleBelow
}

// keySampled is sampled before the row is encoded: false only for a keyed table's row
// whose key is outside the sample.
func (t *tableRun) keySampled(enc *encoder, row []record.Value) bool {
	if t.sampleBelow == 0 {
		return true
	}
	h, ok := enc.rowKeyHash(row)
	return !ok || t.sampled(h)
}

func (t *tableRun) run(ctx context.Context, dst connector.Reader) error {
	src := newSpillSet(t.dir, "s", 0, t.bits)
	defer src.remove()
	dstSet := newSpillSet(t.dir, "d", 0, t.bits)
	defer dstSet.remove()
	posSet := newSpillSet(t.dir, "p", 0, t.bits)
	defer posSet.remove()
	// Both sides are read at once, each with an encoder of its own: decoding the
	// source's rows and the lake's files are the two largest costs.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return t.readSource(gctx, src) })
	g.Go(func() error { return t.readDestination(gctx, dst, newEncoder(t.schema), dstSet, posSet) })
	if err := g.Wait(); err != nil {
		return err
	}
	err := t.eachRange(ctx, len(src.files), func(w *tableRun, i int) error {
		s, d := src.files[i], dstSet.files[i]
		src.files[i], dstSet.files[i] = nil, nil
		return w.compareRange(ctx, s, d, t.bits, true)
	})
	if err != nil {
		return err
	}
	for i := range posSet.files {
		if t.noPositions {
			break
		}
		if err := t.checkPositions(ctx, posSet.files[i], t.bits); err != nil {
			return err
		}
		posSet.files[i] = nil
	}
	return nil
}

func (t *tableRun) readSource(ctx context.Context, src *spillSet) error {
	var lim *rate.Limiter
	const limitEvery = 100
	if t.opt.ReadLimit > 0 {
		lim = rate.NewLimiter(rate.Limit(t.opt.ReadLimit), max(limitEvery, int(t.opt.ReadLimit)))
	}
	var n int
	var buf []byte
	err := t.scan(ctx, func(row []record.Value) error {
		n++
		if n%limitEvery == 0 {
			if lim != nil {
				if err := lim.WaitN(ctx, limitEvery); err != nil {
					return err
				}
			} else if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !t.keySampled(t.enc, row) {
			return nil
		}
		buf = t.enc.appendPayload(buf[:0], row, nil)
		h := t.enc.keyHash(buf)
		if !t.sampled(h) {
			return nil
		}
		s, err := src.add(h, buf)
		if err != nil {
			return err
		}
		s.agg.add(buf)
		t.rep.SourceRows++
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan source: %w", err)
	}
	return src.finish()
}

func (t *tableRun) whereID(w string) uint64 {
	if id, ok := t.whereIDs[w]; ok {
		return id
	}
	if t.whereIDs == nil {
		t.whereIDs = map[string]uint64{}
	}
	id := uint64(len(t.wheres))
	t.wheres = append(t.wheres, w)
	t.whereIDs[w] = id
	return id
}

// A destination entry's payload: the source form's payload (key, row with unchanged
// columns marked unknown), then the position, the op and where it is stored. A
// position entry's payload: position, key, where.
func (t *tableRun) readDestination(ctx context.Context, dst connector.Reader, enc *encoder, dstSet, posSet *spillSet) error {
	var buf []byte
	return t.storedChanges(ctx, dst, dstSet, posSet, func(c *connector.StoredChange, where uint64) ([]byte, bool, error) {
		if t.keep != nil && !t.keep(c.Row) || !t.keySampled(enc, c.Row) {
			return nil, false, nil
		}
		buf = enc.appendPayload(buf[:0], c.Row, c.Unchanged)
		h := enc.keyHash(buf)
		if !t.sampled(h) {
			return nil, false, nil
		}
		key := payloadKey(buf)
		return key, true, spillChange(dstSet, h, buf, c, where)
	})
}

// storedChanges walks the table's stored records below the boundary: a truncate moves
// the cut, any other record goes to row, which spills it (or leaves it out of the
// sample) and returns its canonical key; every record kept is also filed by position
// for checkPositions. Both sets are finished on return.
func (t *tableRun) storedChanges(ctx context.Context, dst connector.Reader, dstSet, posSet *spillSet, row func(c *connector.StoredChange, where uint64) (key []byte, keep bool, err error)) error {
	var pbuf []byte
	var n int
	err := dst.Changes(ctx, t.schema, func(c *connector.StoredChange) error {
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if c.Op == record.OpCheckpoint || bytes.Compare(c.Pos, t.boundary) >= 0 {
			return nil
		}
		where := t.whereID(c.Where)
		var key []byte
		if c.Op == record.OpTruncate {
			if bytes.Compare(c.Pos, t.cut) > 0 {
				t.cut = append(t.cut[:0], c.Pos...)
			}
		} else {
			k, keep, err := row(c, where)
			if err != nil || !keep {
				return err
			}
			key = k
		}
		pbuf = binary.AppendUvarint(pbuf[:0], uint64(len(c.Pos)))
		pbuf = append(pbuf, c.Pos...)
		pbuf = binary.AppendUvarint(pbuf, uint64(len(key)))
		pbuf = append(pbuf, key...)
		pbuf = binary.AppendUvarint(pbuf, where)
		_, err := posSet.add(xxhash.Sum64(c.Pos), pbuf)
		return err
	})
	if err != nil {
		return fmt.Errorf("read destination: %w", err)
	}
	if err := dstSet.finish(); err != nil {
		return err
	}
	return posSet.finish()
}

// spillChange appends a destination entry's tail (position, op, where) to payload
// and spills it under h.
func spillChange(set *spillSet, h uint64, payload []byte, c *connector.StoredChange, where uint64) error {
	payload = binary.AppendUvarint(payload, uint64(len(c.Pos)))
	payload = append(payload, c.Pos...)
	payload = append(payload, byte(c.Op))
	payload = binary.AppendUvarint(payload, where)
	_, err := set.add(h, payload)
	return err
}

// payloadKey returns the key of a payload (uvarint length, key, ...).
func payloadKey(p []byte) []byte {
	l, k := binary.Uvarint(p)
	return p[k : k+int(l)]
}

// dentry is one destination record of a range, its slices pointing into the loaded file.
type dentry struct {
	key, row, pos []byte
	op            record.Op
	where         uint64
}

func (e *encoder) parseDentry(p []byte) dentry {
	var d dentry
	kl, k := binary.Uvarint(p)
	d.key = p[k : k+int(kl)]
	rest := p[k+int(kl):]
	rl := e.rowLen(rest)
	d.row = rest[:rl]
	rest = rest[rl:]
	pl, k := binary.Uvarint(rest)
	d.pos = rest[k : k+int(pl)]
	rest = rest[k+int(pl):]
	d.op = record.Op(rest[0])
	d.where, _ = binary.Uvarint(rest[1:])
	return d
}

// state is a key's row in the rebuilt destination; copies counts a keyless table's
// identical rows.
type state struct {
	key, row   []byte
	where      uint64
	copies     int64
	unresolved bool
}

func (t *tableRun) compareRange(ctx context.Context, src, dst *spill, used int, maySplit bool) error {
	defer src.remove()
	defer dst.remove()
	if err := ctx.Err(); err != nil {
		return err
	}
	srcN, dstN := count(src), count(dst)
	if maySplit && (srcN > t.limit || dstN > t.limit) && used+splitBits <= 64 {
		var ss, ds *spillSet
		var err error
		if src != nil && src.n > 0 {
			if ss, err = src.split(t.spillName("s"), used, splitBits, true); err != nil {
				return err
			}
			defer ss.remove()
		}
		if dst != nil && dst.n > 0 {
			if ds, err = dst.split(t.spillName("d"), used, splitBits, false); err != nil {
				return err
			}
			defer ds.remove()
		}
		for i := range 1 << splitBits {
			var s, d *spill
			if ss != nil {
				s, ss.files[i] = ss.files[i], nil
			}
			if ds != nil {
				d, ds.files[i] = ds.files[i], nil
			}
			// A split that left one side whole (one key with many records) cannot
			// shrink it by splitting again.
			again := srcN > t.limit && count(s) < srcN || dstN > t.limit && count(d) < dstN
			if err := t.compareRange(ctx, s, d, used+splitBits, again); err != nil {
				return err
			}
		}
		return nil
	}
	t.rep.Ranges++
	states, err := t.fold(dst)
	if err != nil {
		return err
	}
	var agg aggregate
	for i := range states {
		st := &states[i]
		t.scratch = t.enc.joinPayload(t.scratch[:0], st.key, st.row)
		for range st.copies {
			agg.add(t.scratch)
		}
		t.rep.DestRows += st.copies
	}
	var want aggregate
	if src != nil {
		want = src.agg
	}
	if agg == want {
		return nil
	}
	t.rep.RangesDiffering++
	return t.compareKeys(src, states)
}

func count(s *spill) int64 {
	if s == nil {
		return 0
	}
	return s.n
}

// fold rebuilds the range's state from its destination records: sorted by key and
// position, records before the last truncate ignored, a delete removes the key, an
// insert, update or snapshot read sets its row, an unchanged column keeps the key's
// earlier value or stays unknown.
func (t *tableRun) fold(dst *spill) ([]state, error) {
	ents := make([]dentry, 0, count(dst))
	if err := dst.load(func(_ uint64, p []byte) { ents = append(ents, t.enc.parseDentry(p)) }); err != nil {
		return nil, err
	}
	slices.SortStableFunc(ents, func(a, b dentry) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return bytes.Compare(a.pos, b.pos)
	})
	var out []state
	keyless := t.enc.keyless
	for i := 0; i < len(ents); {
		j := i
		for j < len(ents) && bytes.Equal(ents[j].key, ents[i].key) {
			j++
		}
		var cur []byte
		live := false
		var where uint64
		var copies int64
		var last []byte
		for k := i; k < j; k++ {
			e := &ents[k]
			if bytes.Compare(e.pos, t.cut) < 0 {
				continue
			}
			if last != nil && bytes.Equal(e.pos, last) {
				continue // a duplicate position: counted by checkPositions, one kept
			}
			last = e.pos
			switch e.op {
			case record.OpDelete:
				if keyless {
					copies = max(copies-1, 0)
				} else {
					live, cur = false, nil
				}
			case record.OpRead, record.OpCreate, record.OpUpdate:
				if keyless {
					copies++
				} else {
					cur = t.enc.resolve(e.row, cur)
					live = true
				}
				where = e.where
			}
		}
		if keyless && copies > 0 {
			live, cur = true, nil
		}
		if live {
			if !keyless {
				copies = 1
			}
			unresolved := hasUnknown(cur) || keyless && hasUnknown(ents[i].key)
			if unresolved {
				t.rep.Unresolved++
			}
			out = append(out, state{key: ents[i].key, row: cur, where: where, copies: copies, unresolved: unresolved})
		}
		i = j
	}
	return out, nil
}

// compareKeys compares a range key by key, when its aggregates differ.
func (t *tableRun) compareKeys(src *spill, states []state) error {
	srcRows := map[string][]byte{}
	srcCopies := map[string]int64{}
	if err := src.load(func(_ uint64, p []byte) {
		kl, k := binary.Uvarint(p)
		key := string(p[k : k+int(kl)])
		srcRows[key] = p[k+int(kl):]
		srcCopies[key]++
	}); err != nil {
		return err
	}
	for i := range states {
		st := &states[i]
		n := srcCopies[string(st.key)]
		if n == 0 {
			t.rep.Extra += st.copies
			t.example(KeyDiff{Kind: DiffExtra, Key: t.renderKey(st.key), Where: t.wheres[st.where]})
			continue
		}
		srow := srcRows[string(st.key)]
		delete(srcRows, string(st.key))
		delete(srcCopies, string(st.key))
		if t.enc.keyless {
			switch {
			case st.copies > n:
				t.rep.Extra += st.copies - n
				t.example(KeyDiff{Kind: DiffExtra, Key: t.renderKey(st.key), Where: t.wheres[st.where]})
			case st.copies < n:
				t.rep.Missing += n - st.copies
				t.example(KeyDiff{Kind: DiffMissing, Key: t.renderKey(st.key)})
			}
			if st.unresolved {
				t.example(KeyDiff{Kind: DiffUnresolved, Key: t.renderKey(st.key), Where: t.wheres[st.where]})
			}
			continue
		}
		if bytes.Equal(srow, st.row) {
			continue
		}
		differs, ndiff, unknown := t.enc.diffColumns(srow, st.row, t.columnName)
		if ndiff > 0 {
			t.rep.Differing++
			t.example(KeyDiff{Kind: DiffDiffers, Key: t.renderKey(st.key), Columns: differs, Where: t.wheres[st.where]})
		}
		if len(unknown) > 0 {
			t.example(KeyDiff{Kind: DiffUnresolved, Key: t.renderKey(st.key), Columns: unknown, Where: t.wheres[st.where]})
		}
	}
	missing := make([]string, 0, len(srcCopies))
	for k, n := range srcCopies {
		t.rep.Missing += n
		missing = append(missing, k)
	}
	if len(t.rep.Examples) < t.opt.MaxExamples {
		slices.Sort(missing)
		for _, k := range missing {
			t.example(KeyDiff{Kind: DiffMissing, Key: t.renderKey([]byte(k))})
		}
	}
	return nil
}

func (t *tableRun) example(d KeyDiff) {
	if len(t.rep.Examples) < t.opt.MaxExamples {
		t.rep.Examples = append(t.rep.Examples, d)
	}
}

func (t *tableRun) renderKey(key []byte) []ColumnValue {
	cols := t.enc.keyCols
	out := make([]ColumnValue, 0, len(cols))
	for _, i := range cols {
		var col []byte
		col, key = nextColumn(key)
		out = append(out, ColumnValue{Column: t.schema.Columns[i].Name, Value: renderColumn(t.schema.Columns[i].Type, col)})
	}
	return out
}

// checkPositions counts the stored records of a position range that share a position.
func (t *tableRun) checkPositions(ctx context.Context, s *spill, used int) error {
	defer s.remove()
	if err := ctx.Err(); err != nil {
		return err
	}
	if count(s) > t.limit && used+splitBits <= 64 {
		ss, err := s.split(t.spillName("p"), used, splitBits, false)
		if err != nil {
			return err
		}
		defer ss.remove()
		for i := range ss.files {
			c := ss.files[i]
			ss.files[i] = nil
			next := used + splitBits
			if count(c) == s.n {
				next = 64 // every record has one position hash: splitting again cannot help
			}
			if err := t.checkPositions(ctx, c, next); err != nil {
				return err
			}
		}
		return nil
	}
	type pent struct {
		pos, key []byte
		where    uint64
	}
	var ents []pent
	if err := s.load(func(_ uint64, p []byte) {
		pl, k := binary.Uvarint(p)
		e := pent{pos: p[k : k+int(pl)]}
		p = p[k+int(pl):]
		kl, k := binary.Uvarint(p)
		e.key = p[k : k+int(kl)]
		e.where, _ = binary.Uvarint(p[k+int(kl):])
		ents = append(ents, e)
	}); err != nil {
		return err
	}
	slices.SortFunc(ents, func(a, b pent) int { return bytes.Compare(a.pos, b.pos) })
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && bytes.Equal(ents[j].pos, ents[i].pos) {
			j++
		}
		if j-i > 1 {
			t.rep.DuplicatePositions += int64(j - i)
			for k := i; k < j; k++ {
				d := KeyDiff{Kind: DiffDuplicatePosition, Where: t.wheres[ents[k].where], Position: record.Position(ents[k].pos).String()}
				if len(ents[k].key) > 0 {
					d.Key = t.renderKey(ents[k].key)
				}
				t.example(d)
			}
		}
		i = j
	}
	return nil
}

// spillName names the files of one split, unique within the run.
func (t *tableRun) spillName(side string) string {
	t.splits++
	return fmt.Sprintf("%s.w%d.%d", side, t.worker, t.splits)
}

func (t *tableRun) columnName(i int) string { return t.schema.Columns[i].Name }
