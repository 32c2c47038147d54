package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// keySet holds, per table (tableName.String()), the keys (keyString) of rows.
type keySet map[string]map[string]bool

func (k keySet) size() int {
	n := 0
	for _, m := range k {
		n += len(m)
	}
	return n
}

// keyString renders the key columns of a row image as one comparable string; the
// snapshot and the stream decode a value to the same record.Value.
func keyString(key []int, img []record.Value) string {
	var b strings.Builder
	for _, i := range key {
		if i < len(img) {
			fmt.Fprintf(&b, "%T:%v", img[i], img[i])
		}
		b.WriteByte(0)
	}
	return b.String()
}

// errScanUnusable says the binlog between a snapshot's point and now cannot be read
// with the snapshot's definitions; the snapshot is then taken again.
var errScanUnusable = errors.New("the binlog since the snapshot's point does not match its table definitions")

// changedSince reads the binlog from the interrupted snapshot's point to now (the
// resumed read's consistent snapshot) and returns the keys of rows it changed in the
// tables from ordinal first on. The resumed read leaves those rows out: the stream,
// which starts at the snapshot's point, delivers each of them as the change it was
// (an insert as 'c'), so none arrives twice, as 'r' and as 'c' (README, "Resuming an
// interrupted snapshot"). nil means the snapshot cannot be resumed.
func (s *Source) changedSince(ctx context.Context, st *snapState, first uint32, now coords) (keySet, error) {
	out := keySet{}
	want := map[tableName]bool{}
	for i := first; i < uint32(len(st.Tables)); i++ {
		want[st.table(i)] = true
	}
	collect := func(_ context.Context, recs []record.Record) error {
		for _, r := range recs {
			t := tableName{db: r.Schema.Namespace, name: r.Schema.Table}
			name := t.String()
			ts, ok := s.schemas[t]
			if !want[t] || !ok || len(ts.key) == 0 {
				// A table without a key is read again whole (with a warning).
				continue
			}
			m := out[name]
			if m == nil {
				m = map[string]bool{}
				out[name] = m
			}
			for _, img := range [][]record.Value{r.Before, r.After} {
				if img != nil {
					m[keyString(ts.key, img)] = true
				}
			}
		}
		return nil
	}
	err := s.readBinlog(ctx, st.start(), nil, &now, collect, want)
	if err != nil {
		if connector.IsPermanent(err) && ctx.Err() == nil {
			s.log.Warn("the interrupted snapshot cannot be resumed: "+errScanUnusable.Error(), "err", err)
			return nil, nil
		}
		return nil, err
	}
	return out, nil
}
