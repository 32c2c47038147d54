package verify

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// A spill file holds entries of one range: each a 64-bit hash (of the key, or of the
// position) that chose the range, then a length-prefixed payload. The hash goes with
// the entry so a range too large to load can be split on the hash's next bits without
// decoding anything.
type spill struct {
	path string
	n    int64 // entries
	agg  aggregate
	f    *os.File
	w    *bufio.Writer
	hdr  [8 + binary.MaxVarintLen64]byte
}

// aggregate is an order-independent digest of a range: how many entries and the sum of
// their payloads' hashes, mod 2^64.
type aggregate struct {
	n   int64
	sum uint64
}

func (a *aggregate) add(payload []byte) {
	a.n++
	a.sum += xxhash.Sum64(payload)
}

func (s *spill) add(h uint64, payload []byte) error {
	hdr := s.hdr[:]
	binary.LittleEndian.PutUint64(hdr[:8], h)
	n := binary.PutUvarint(hdr[8:], uint64(len(payload)))
	if _, err := s.w.Write(hdr[:8+n]); err != nil {
		return fmt.Errorf("verify: write %s: %w", s.path, err)
	}
	if _, err := s.w.Write(payload); err != nil {
		return fmt.Errorf("verify: write %s: %w", s.path, err)
	}
	s.n++
	return nil
}

// finish flushes and closes the file; the entries stay on disk for reading.
func (s *spill) finish() error {
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f, s.w = nil, nil
	if err != nil {
		return fmt.Errorf("verify: write %s: %w", s.path, err)
	}
	return nil
}

func (s *spill) remove() {
	if s == nil {
		return
	}
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
	_ = os.Remove(s.path)
}

// load reads the whole file (a range, bounded by the split) and calls fn for each
// entry; payload points into one buffer that stays valid after load returns.
func (s *spill) load(fn func(h uint64, payload []byte)) error {
	if s == nil || s.n == 0 {
		return nil
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("verify: read %s: %w", s.path, err)
	}
	for len(data) > 0 {
		if len(data) < 9 {
			return fmt.Errorf("verify: read %s: truncated entry", s.path)
		}
		h := binary.LittleEndian.Uint64(data)
		l, k := binary.Uvarint(data[8:])
		if k <= 0 || uint64(len(data)-8-k) < l {
			return fmt.Errorf("verify: read %s: truncated entry", s.path)
		}
		p := data[8+k : 8+k+int(l)]
		fn(h, p[:len(p):len(p)])
		data = data[8+k+int(l):]
	}
	return nil
}

// stream reads the file entry by entry without loading it; payload is reused.
func (s *spill) stream(fn func(h uint64, payload []byte) error) error {
	if s == nil || s.n == 0 {
		return nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("verify: read %s: %w", s.path, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var hb [8]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hb[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("verify: read %s: %w", s.path, err)
		}
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("verify: read %s: %w", s.path, err)
		}
		if uint64(cap(buf)) < l {
			buf = make([]byte, l)
		}
		buf = buf[:l]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("verify: read %s: %w", s.path, err)
		}
		if err := fn(binary.LittleEndian.Uint64(hb[:]), buf); err != nil {
			return err
		}
	}
}

// spillSet is the ranges of one side at one level: entry i goes to the file chosen by
// the `bits` bits of its hash after the `used` bits that chose the parent range.
type spillSet struct {
	dir, name  string
	used, bits int
	files      []*spill
}

func newSpillSet(dir, name string, used, bits int) *spillSet {
	return &spillSet{dir: dir, name: name, used: used, bits: bits, files: make([]*spill, 1<<bits)}
}

func rangeOf(h uint64, used, bits int) int {
	return int((h << used) >> (64 - bits))
}

func (ss *spillSet) add(h uint64, payload []byte) (*spill, error) {
	i := rangeOf(h, ss.used, ss.bits)
	s := ss.files[i]
	if s == nil {
		path := filepath.Join(ss.dir, ss.name+"-"+strconv.Itoa(i))
		f, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("verify: create range file: %w", err)
		}
		s = &spill{path: path, f: f, w: bufio.NewWriterSize(f, 32<<10)}
		ss.files[i] = s
	}
	return s, s.add(h, payload)
}

func (ss *spillSet) finish() error {
	for _, s := range ss.files {
		if err := s.finishNil(); err != nil {
			return err
		}
	}
	return nil
}

func (ss *spillSet) remove() {
	for _, s := range ss.files {
		s.remove()
	}
}

func (s *spill) finishNil() error {
	if s == nil {
		return nil
	}
	return s.finish()
}

// split spreads s over 2^bits new files by the next bits of each entry's hash and
// removes s. When withAgg, each new file's aggregate is computed from its payloads.
func (s *spill) split(name string, used, bits int, withAgg bool) (*spillSet, error) {
	ss := newSpillSet(filepath.Dir(s.path), name, used, bits)
	err := s.stream(func(h uint64, p []byte) error {
		c, err := ss.add(h, p)
		if err == nil && withAgg {
			c.agg.add(p)
		}
		return err
	})
	if err == nil {
		err = ss.finish()
	}
	s.remove()
	if err != nil {
		ss.remove()
		return nil, err
	}
	return ss, nil
}
