package verify

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// fakeSnap is a source snapshot held in memory.
type fakeSnap struct {
	schema   *record.Schema
	rows     [][]record.Value
	estimate int64
	boundary record.Position
	// gen, when set, produces rows instead of rows (forever, until ctx ends).
	gen func(i int, row []record.Value)
}

func (s *fakeSnap) Boundary() record.Position   { return s.boundary }
func (s *fakeSnap) DescribeBoundary() string    { return s.boundary.String() }
func (s *fakeSnap) Tables() []*record.Schema    { return []*record.Schema{s.schema} }
func (s *fakeSnap) Close(context.Context) error { return nil }
func (s *fakeSnap) EstimateRows(context.Context, *record.Schema) (int64, error) {
	return s.estimate, nil
}

func (s *fakeSnap) Scan(ctx context.Context, _ *record.Schema, fn func(row []record.Value) error) error {
	row := make([]record.Value, len(s.schema.Columns))
	if s.gen != nil {
		for i := 0; ; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.gen(i, row)
			if err := fn(row); err != nil {
				return err
			}
		}
	}
	for _, r := range s.rows {
		copy(row, r)
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// fakeLake is a destination's stored records held in memory.
type fakeLake struct {
	changes []connector.StoredChange
}

func (l *fakeLake) Describe(s *record.Schema) string { return "mem://" + s.QualifiedName() }
func (l *fakeLake) Close(context.Context) error      { return nil }

func (l *fakeLake) Changes(ctx context.Context, _ *record.Schema, fn func(c *connector.StoredChange) error) error {
	var c connector.StoredChange
	for i := range l.changes {
		c = l.changes[i]
		c.Row = append([]record.Value(nil), c.Row...)
		if err := fn(&c); err != nil {
			return err
		}
	}
	return nil
}

func (l *fakeLake) add(op record.Op, pos uint64, row []record.Value, unchanged ...int) {
	l.changes = append(l.changes, connector.StoredChange{Op: op, Pos: posOf(pos), Row: row, Unchanged: unchanged, Where: "file-" + string(rune('a'+pos%3))})
}

func posOf(n uint64) record.Position {
	return binary.BigEndian.AppendUint64([]byte{0x02}, n)
}

// digestSnap is a fakeSnap whose "server" digests its rows with hexForm, as a
// database would with SQL.
type digestSnap struct {
	*fakeSnap
	digests, scans int
	// skew makes the server render column 1 unlike the form verify is given.
	skew bool
}

// hexForm renders a value's canonical form in hex: an alphabet without ','.
type hexForm struct{ s *record.Schema }

func (f hexForm) AppendValue(dst []byte, i int, v record.Value) []byte {
	return hex.AppendEncode(dst, AppendCanonical(nil, f.s.Columns[i].Type, v))
}

func (s *digestSnap) DigestForm(*record.Schema) (connector.DigestForm, error) {
	return hexForm{s.schema}, nil
}

func (s *digestSnap) Digest(ctx context.Context, t *record.Schema, q connector.DigestQuery, fn func(connector.DigestBucket) error) error {
	s.digests++
	buckets := map[uint32]*connector.DigestBucket{}
	var f connector.DigestForm = hexForm{t}
	if s.skew {
		f = skewForm{hexForm{t}}
	}
	var text []byte
	err := s.fakeSnap.Scan(ctx, t, func(row []record.Value) error {
		text = connector.AppendDigestRow(text[:0], f, t, row, true)
		h := connector.DigestKey(text)
		if !q.Sampled(h) {
			return nil
		}
		b := buckets[q.BucketOf(h)]
		if b == nil {
			b = &connector.DigestBucket{Bucket: q.BucketOf(h)}
			buckets[b.Bucket] = b
		}
		text = connector.AppendDigestRow(text[:0], f, t, row, false)
		d := connector.DigestRow(text)
		b.Rows++
		b.Sum += d
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range buckets {
		if err := fn(*b); err != nil {
			return err
		}
	}
	return nil
}

func (s *digestSnap) ScanBuckets(ctx context.Context, t *record.Schema, q connector.DigestQuery, fn func(row []record.Value) error) error {
	s.scans++
	f := hexForm{t}
	var text []byte
	return s.fakeSnap.Scan(ctx, t, func(row []record.Value) error {
		text = connector.AppendDigestRow(text[:0], f, t, row, true)
		h := connector.DigestKey(text)
		if q.Sampled(h) && slices.Contains(q.Buckets, q.BucketOf(h)) {
			return fn(row)
		}
		return nil
	})
}

type skewForm struct{ hexForm }

func (f skewForm) AppendValue(dst []byte, i int, v record.Value) []byte {
	dst = f.hexForm.AppendValue(dst, i, v)
	if i == 1 {
		dst = append(dst, "00"...)
	}
	return dst
}
