package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/connectd/connectd/connector"
)

// stateKey is the source's entry in the offsets store's state.
const stateKey = "http"

// state is what the source keeps beside its position: for each round that may not be
// committed yet, every stream's cursor state at the round's start and, once its pass
// ended, at its end. A restart inside a round re-reads its stream from the start state
// (positions make the records it already delivered fall at or below the committed
// position); a restart after a round's end starts the next from the end states.
type state struct {
	Rounds map[uint64]*roundState `json:"rounds"`
}

type roundState struct {
	// Started is the round's commit time for streams without a time cursor, so a
	// replayed record lands in the same date partition.
	Started time.Time               `json:"started"`
	Start   map[string]*streamState `json:"start"`
	Ends    map[string]*streamState `json:"ends,omitempty"`
}

// streamState is a stream's cursor between two passes.
type streamState struct {
	Passes int `json:"passes"` // passes completed: the first one reads records as r
	// Cursor is the highest cursor value delivered, as the API wrote it.
	Cursor string `json:"cursor,omitempty"`
	// Seen are the records delivered whose cursor is the highest (or, with a
	// lookback, within it of the highest): the next pass asks from their cursor
	// again and drops them by key and content.
	Seen   []seenRecord    `json:"seen,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

type seenRecord struct {
	Key    string `json:"k"`
	Hash   uint64 `json:"h"`
	Cursor string `json:"c"`
}

func loadState(ctx context.Context, store connector.StateStore) (*state, error) {
	data, err := store.Load(ctx, stateKey)
	if err != nil {
		return nil, fmt.Errorf("http: load state: %w", err)
	}
	st := &state{Rounds: map[uint64]*roundState{}}
	if len(data) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, connector.Permanent(fmt.Errorf("http: the saved state does not parse (%v); `connectd offsets reset` reads every stream again", err))
	}
	if st.Rounds == nil {
		st.Rounds = map[uint64]*roundState{}
	}
	return st, nil
}

func (s *Source) saveState(ctx context.Context) error {
	s.mu.Lock()
	data, err := json.Marshal(s.state)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("http: encode state: %w", err)
	}
	if err := s.store.Save(ctx, stateKey, data); err != nil {
		return fmt.Errorf("http: save state: %w", err)
	}
	return nil
}

// window decides, during a pass, which records are new, and gathers the next pass's
// start: the highest cursor and the records at it (or within the lookback of it).
type window struct {
	str  *stream
	from *cursorValue // records below it were delivered by earlier passes
	seen map[string]seenRecord
	// order holds what seen holds, in the order delivered, which is ascending
	// cursor order: what falls out of the window is at its front.
	order    []seenEntry
	max      *cursorValue
	lookback time.Duration
}

type seenEntry struct {
	rec    seenRecord
	cursor cursorValue
}

func newWindow(str *stream, start *streamState) (*window, error) {
	w := &window{str: str, seen: map[string]seenRecord{}}
	if str.cursor == nil {
		return w, nil
	}
	if str.cursor.Type == "time" || str.cursor.Type == "" {
		w.lookback = str.cursor.Lookback
	}
	text := start.Cursor
	if text == "" {
		text = str.cursor.Start
	}
	if text != "" {
		cv, err := parseCursor(str.cursor.Type, text)
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("http: stream %s: saved cursor: %w", str.cfg.Name, err))
		}
		w.max = &cv
		if start.Cursor != "" {
			from := cv
			if w.lookback > 0 {
				from = w.back(cv)
			}
			w.from = &from
		}
	}
	for _, r := range start.Seen {
		cv, err := parseCursor(str.cursor.Type, r.Cursor)
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("http: stream %s: saved cursor: %w", str.cfg.Name, err))
		}
		w.seen[r.Key] = r
		w.order = append(w.order, seenEntry{rec: r, cursor: cv})
	}
	return w, nil
}

// back is cv moved back by the lookback (time cursors only).
func (w *window) back(cv cursorValue) cursorValue {
	t := time.UnixMicro(cv.num).Add(-w.lookback).UTC()
	b, _ := parseCursor("time", t.Format(time.RFC3339Nano))
	return b
}

// windows are the pass's requests' variables: one request sequence from the cursor,
// or, with cursor.window, one per window from the cursor to now, each holding
// {{ window.start }} and {{ window.end }} (RFC 3339, UTC).
func (w *window) windows(now time.Time) ([]Vars, error) {
	cur := w.requestCursor()
	if w.str.cursor == nil || w.str.cursor.Window <= 0 {
		return []Vars{{Cursor: cur}}, nil
	}
	from := time.Time{}
	if cur != "" {
		cv, err := parseCursor("time", cur)
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("http: stream %s: %w", w.str.cfg.Name, err))
		}
		from = time.UnixMicro(cv.num).UTC()
	}
	if from.IsZero() {
		return nil, connector.Permanent(fmt.Errorf("http: stream %s: windows need a cursor.start to begin from", w.str.cfg.Name))
	}
	var out []Vars
	for ws := from; ws.Before(now); ws = ws.Add(w.str.cursor.Window) {
		we := ws.Add(w.str.cursor.Window)
		if we.After(now) {
			we = now
		}
		out = append(out, Vars{Cursor: cur, WindowStart: ws.Format(time.RFC3339Nano), WindowEnd: we.Format(time.RFC3339Nano)})
	}
	if len(out) == 0 {
		out = append(out, Vars{Cursor: cur, WindowStart: from.Format(time.RFC3339Nano), WindowEnd: from.Format(time.RFC3339Nano)})
	}
	return out, nil
}

// requestCursor is the {{ cursor }} of the pass's requests.
func (w *window) requestCursor() string {
	switch {
	case w.from != nil:
		return w.from.text
	case w.max != nil:
		return w.max.text
	}
	return ""
}

// wanted reports whether a record is new: not below what earlier passes covered
// (an API that ignores the cursor parameter), and not one of the records they
// delivered at the boundary.
func (w *window) wanted(key []byte, hash uint64, cv cursorValue) bool {
	if w.from != nil && cv.less(*w.from) {
		return false
	}
	if r, ok := w.seen[string(key)]; ok && r.Hash == hash {
		return false
	}
	return true
}

// delivered records a record of the pass for the next pass's boundary: its cursor
// moves the highest, and when emitted it is one the next pass drops.
func (w *window) delivered(key []byte, hash uint64, cv cursorValue, emitted bool) {
	if w.max == nil || w.max.less(cv) {
		w.max = &cv
		w.prune()
	}
	if !emitted {
		return
	}
	r := seenRecord{Key: string(key), Hash: hash, Cursor: cv.text}
	w.seen[r.Key] = r
	w.order = append(w.order, seenEntry{rec: r, cursor: cv})
}

// prune drops what fell out of the window below the highest cursor, so that a pass
// holds the records of its window only, not every record it read.
func (w *window) prune() {
	floor := *w.max
	if w.lookback > 0 {
		floor = w.back(*w.max)
	}
	i := 0
	for i < len(w.order) && w.order[i].cursor.less(floor) {
		e := w.order[i]
		if cur, ok := w.seen[e.rec.Key]; ok && cur == e.rec {
			delete(w.seen, e.rec.Key)
		}
		i++
	}
	w.order = w.order[i:]
	if i > len(w.order) {
		w.order = append([]seenEntry(nil), w.order...) // let the dropped front go
	}
}

// end is the state the next pass starts from: the highest cursor, and the records
// delivered at it or within the lookback below it.
func (w *window) end() *streamState {
	st := &streamState{}
	if w.max == nil {
		return st
	}
	st.Cursor = w.max.text
	w.prune()
	for _, e := range w.order {
		if cur, ok := w.seen[e.rec.Key]; ok && cur == e.rec {
			st.Seen = append(st.Seen, e.rec)
		}
	}
	return st
}
