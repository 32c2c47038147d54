// Package httpapi is the `http` source: it polls JSON APIs, one table per stream, with
// a cursor so that each round asks only for what is new, and positions that make a
// restart deliver each record once (README).
package httpapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Kind is the `http` source kind.
type Kind struct{}

// Source polls the streams of one connector.
type Source struct {
	cfg     *Config
	mode    connector.Mode
	log     *slog.Logger
	status  connector.Status
	store   connector.StateStore
	streams []*stream
	// transport is the source's own, so that Close can end its idle connections.
	transport *http.Transport
	now       func() time.Time

	mu    sync.Mutex
	state *state // rounds not yet known to be committed
}

// stream is one configured stream with its client.
type stream struct {
	idx    int
	cfg    *Stream
	client *Client
	cursor *Cursor // nil: the stream is re-read whole every round
	hash   contentHasher
}

var (
	_ connector.Source       = (*Source)(nil)
	_ connector.Describer    = (*Source)(nil)
	_ connector.ReplayVaries = (*Source)(nil)
)

// ReplayVaries is true: an API's records may change between a crash and the restart,
// so the destination clears what the interrupted flush wrote (connector.Resumer).
func (s *Source) ReplayVaries() bool { return true }

// Open builds the clients; it makes no request.
func (Kind) Open(_ context.Context, p connector.SourceParams) (connector.Source, error) {
	cfg, err := connector.SourceConfig[Config](p)
	if err != nil {
		return nil, err
	}
	if p.State == nil {
		return nil, connector.Permanent(errors.New("http: the source keeps its cursors in the offsets store's state, and this offsets store offers none"))
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	status := p.Status
	if status == nil {
		status = connector.NopStatus{}
	}
	s := &Source{cfg: cfg, mode: p.Mode, log: log.With("source", "http"), status: status, store: p.State, now: time.Now,
		transport: http.DefaultTransport.(*http.Transport).Clone()}
	s.streams, err = openStreams(cfg, &http.Client{Transport: s.transport}, s.log)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openStreams(cfg *Config, hc *http.Client, log *slog.Logger) ([]*stream, error) {
	var out []*stream
	for i := range cfg.Streams {
		sc := &cfg.Streams[i]
		c, err := NewClient(cfg.BaseURL, &cfg.Auth, withHeaders(sc.request(), cfg.Headers), ClientOptions{
			Timeout: cfg.Timeout, Rate: float64(cfg.Rate), Burst: max(1, cfg.Rate), MaxAttempts: cfg.MaxAttempts,
			UserAgent: cfg.UserAgent, Stream: sc.Name, HTTPClient: hc,
		}, log.With("stream", sc.Name))
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("http: stream %s: %w", sc.Name, err))
		}
		st := &stream{idx: i, cfg: sc, client: c}
		if sc.Cursor.Field != "" {
			st.cursor = &sc.Cursor
		}
		out = append(out, st)
	}
	return out, nil
}

// withHeaders gives a stream's request the source's headers it does not set itself.
func withHeaders(r *Request, common map[string]string) *Request {
	if len(common) == 0 {
		return r
	}
	h := make(map[string]string, len(common)+len(r.Headers))
	for k, v := range common {
		h[k] = v
	}
	for k, v := range r.Headers {
		h[k] = v
	}
	r.Headers = h
	return r
}

// Read runs rounds: one in ModeSync, until ctx ends in ModeStream. A restart resumes
// the round of start, re-reading its stream from the round's saved start and
// skipping what is at or before start (README: "Exactly once").
func (s *Source) Read(ctx context.Context, start record.Position, emit connector.EmitFunc) error {
	st, round, after, err := s.resume(ctx, start)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	for {
		if err := s.runRound(ctx, round, after, emit); err != nil {
			return err
		}
		if err := emit(ctx, []record.Record{{Op: record.OpCheckpoint, Pos: roundEnd(round), CommitTS: s.now().UTC()}}); err != nil {
			return err
		}
		// A resumed round leaves to the next one what it read at or below the committed
		// position without knowing whether it was delivered (passRun.flush), so a sync
		// that resumed one runs the next round too.
		if s.mode == connector.ModeSync && after == nil {
			return nil
		}
		s.status.SetPhase("streaming")
		if after == nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.cfg.Interval):
			}
		}
		s.mu.Lock()
		prev := s.state.Rounds[round]
		round++
		s.state.Rounds[round] = &roundState{Started: s.now().UTC(), Start: prev.Ends}
		s.mu.Unlock()
		after = nil
	}
}

// resume loads the state and finds where to start: a new connector starts round 1;
// a committed round end starts the next round from the round's end state; any other
// committed position resumes its round after it.
func (s *Source) resume(ctx context.Context, start record.Position) (*state, uint64, record.Position, error) {
	if start == nil {
		st := &state{Rounds: map[uint64]*roundState{1: {Started: s.now().UTC(), Start: map[string]*streamState{}}}}
		s.status.SetPhase("snapshot")
		return st, 1, nil, nil
	}
	p, err := parsePosition(start)
	if err != nil {
		return nil, 0, nil, connector.Permanent(err)
	}
	st, err := loadState(ctx, s.store)
	if err != nil {
		return nil, 0, nil, err
	}
	rs := st.Rounds[p.round]
	lost := func(what string) error {
		return connector.Permanent(fmt.Errorf("http: the committed position is in round %d, but the state store holds %s: it was lost or belongs to another run; `connectd offsets reset` reads every stream again", p.round, what))
	}
	if rs == nil {
		return nil, 0, nil, lost("no such round")
	}
	// Rounds after the committed one were started but never committed: forget them.
	for r := range st.Rounds {
		if r != p.round {
			delete(st.Rounds, r)
		}
	}
	s.status.SetPhase("streaming")
	if p.stream == roundEndTag {
		if len(rs.Ends) != len(s.streams) {
			return nil, 0, nil, lost("no end state for it")
		}
		st.Rounds[p.round+1] = &roundState{Started: s.now().UTC(), Start: rs.Ends}
		return st, p.round + 1, nil, nil
	}
	if p.stream >= len(s.streams) {
		return nil, 0, nil, connector.Permanent(fmt.Errorf("http: the committed position is in stream %d, but the config has %d streams: streams may be added at the end only", p.stream, len(s.streams)))
	}
	return st, p.round, start, nil
}

// runRound polls every stream once, from the stream of after (a committed position
// inside the round) on; the streams before it ended their pass before it and kept
// their end state.
func (s *Source) runRound(ctx context.Context, round uint64, after record.Position, emit connector.EmitFunc) error {
	first := 0
	if after != nil {
		p, _ := parsePosition(after)
		first = p.stream
	}
	s.mu.Lock()
	rs := s.state.Rounds[round]
	if rs.Ends == nil {
		rs.Ends = map[string]*streamState{}
	}
	for _, str := range s.streams[:first] {
		if rs.Ends[str.cfg.Name] == nil {
			s.mu.Unlock()
			return connector.Permanent(fmt.Errorf("http: stream %s ended its pass in round %d, but the state store has no end state for it; `connectd offsets reset` reads every stream again", str.cfg.Name, round))
		}
	}
	s.mu.Unlock()
	if err := s.saveState(ctx); err != nil {
		return err
	}
	for _, str := range s.streams[first:] {
		s.mu.Lock()
		start := rs.Start[str.cfg.Name]
		s.mu.Unlock()
		var skip record.Position
		if after != nil {
			if p, _ := parsePosition(after); p.stream == str.idx {
				skip = after
			}
		}
		end, err := s.pass(ctx, round, rs.Started, str, start, skip, emit)
		if err != nil {
			return err
		}
		s.mu.Lock()
		rs.Ends[str.cfg.Name] = end
		s.mu.Unlock()
		// The next stream's first record comes after this save: a restart past it
		// finds this stream's end state.
		if err := s.saveState(ctx); err != nil {
			return err
		}
	}
	return nil
}

// pending is a record read but not yet emitted: a cursor stream holds back the
// records of the highest cursor value seen until a higher one comes, to emit them in
// key order.
type pending struct {
	rec    record.Record
	cursor cursorValue
	key    []byte
	hash   uint64
}

// pass reads one stream's pages once (window by window, when it has windows) and
// emits its records, each page's as a batch.
func (s *Source) pass(ctx context.Context, round uint64, started time.Time, str *stream, start *streamState, skip record.Position, emit connector.EmitFunc) (*streamState, error) {
	if start == nil {
		start = &streamState{}
	}
	tracker, err := str.tracker(s.cfg.Namespace, start.Schema)
	if err != nil {
		return nil, err
	}
	w, err := newWindow(str, start)
	if err != nil {
		return nil, err
	}
	pr := &passRun{s: s, str: str, round: round, started: started, tracker: tracker, w: w, skip: skip, emit: emit, op: record.OpUpdate}
	if start.Passes == 0 {
		pr.op = record.OpRead
	}
	windows, err := w.windows(s.now())
	if err != nil {
		return nil, err
	}
	for _, v := range windows {
		pages := str.client.Pages(ctx, v)
		for {
			page, err := pages.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, classifyRequest(err)
			}
			if err := pr.page(ctx, page); err != nil {
				return nil, err
			}
		}
	}
	pr.flush()
	if err := pr.send(ctx); err != nil {
		return nil, err
	}
	end := w.end()
	end.Passes = start.Passes + 1
	end.Schema = tracker.State()
	return end, nil
}

// passRun is one pass's progress.
type passRun struct {
	s       *Source
	str     *stream
	round   uint64
	started time.Time
	op      record.Op
	tracker *Tracker
	w       *window
	skip    record.Position // a restart's committed position: records at or below it were delivered
	emit    connector.EmitFunc
	out     []record.Record
	group   []pending
	n       int64
}

// page turns a page's records into records of the envelope and emits what is ready.
func (pr *passRun) page(ctx context.Context, page *Page) error {
	str := pr.str
	fail := func(i int, err error) error {
		return connector.Permanent(fmt.Errorf("http: stream %s, %s record %d: %w", str.cfg.Name, page.URL, i, err))
	}
	for i, raw := range page.Records {
		if _, err := pr.tracker.Observe(raw); err != nil {
			return fail(i, err)
		}
		row, err := pr.tracker.Row(raw, nil)
		if err != nil {
			return fail(i, err)
		}
		rec := record.Record{Op: pr.op, Schema: pr.tracker.Schema(), After: row, CommitTS: pr.started}
		if str.isDeleted(raw) {
			rec.Op, rec.Before, rec.After = record.OpDelete, row, nil
		}
		if str.cursor == nil {
			pos := appendHeader(nil, pr.round, str.idx)
			pos = appendUint32(pos, uint32(page.Number))
			pos = appendUint32(pos, uint32(i))
			pr.add(rec, pos)
			continue
		}
		cv, key, hash, err := str.identify(raw)
		if err != nil {
			return fail(i, err)
		}
		if !pr.w.wanted(key, hash, cv) {
			continue
		}
		if str.cursor.Type == "time" {
			rec.CommitTS = time.UnixMicro(cv.num).UTC()
		}
		if len(pr.group) > 0 {
			switch c := bytes.Compare(cv.ord, pr.group[0].cursor.ord); {
			case c < 0:
				return fail(i, fmt.Errorf("cursor %s comes after %s: the API must return records in ascending order of %s (ask it to sort so, e.g. sort=%s&direction=asc)",
					cv.text, pr.group[0].cursor.text, str.cursor.Field, str.cursor.Field))
			case c > 0:
				pr.flush()
			}
		}
		pr.group = append(pr.group, pending{rec: rec, cursor: cv, key: key, hash: hash})
	}
	pr.n += int64(len(page.Records))
	pr.s.status.SnapshotProgress(pr.s.cfg.Namespace+"."+str.cfg.Name, pr.n, 0)
	return pr.send(ctx)
}

// add queues a record unless its position is at or below a restart's committed
// one, and reports whether it did.
func (pr *passRun) add(rec record.Record, pos record.Position) bool {
	rec.Pos = pos
	if pr.skip != nil && bytes.Compare(pos, pr.skip) <= 0 {
		return false
	}
	pr.out = append(pr.out, rec)
	return true
}

// flush gives the held-back records of one cursor value their positions, in key and
// content order.
func (pr *passRun) flush() {
	slices.SortFunc(pr.group, func(a, b pending) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmpUint(a.hash, b.hash)
	})
	for i := range pr.group {
		g := &pr.group[i]
		if i > 0 && g.hash == pr.group[i-1].hash && bytes.Equal(g.key, pr.group[i-1].key) {
			continue // the same record twice in one pass (pages that shifted): once
		}
		pos := appendHeader(nil, pr.round, pr.str.idx)
		pos = append(pos, g.cursor.ord...)
		pos = appendOrdered(pos, g.key)
		pos = appendUint64(pos, g.hash)
		// A record at or below a restart's committed position may be one the
		// interrupted pass delivered, or one it missed (added or shifted in the API
		// since) that cannot go below the committed position now: it is not marked
		// delivered, so the next round's lookback delivers it if it is new to the lake.
		pr.w.delivered(g.key, g.hash, g.cursor, pr.add(g.rec, pos))
	}
	pr.group = pr.group[:0]
}

// send emits the queued records as one batch.
func (pr *passRun) send(ctx context.Context) error {
	if len(pr.out) == 0 {
		return nil
	}
	pr.s.status.SourcePosition(pr.s.DescribePosition(pr.out[len(pr.out)-1].Pos))
	err := pr.emit(ctx, pr.out)
	pr.out = nil
	return err
}

// classifyRequest makes a request's failure permanent when waiting cannot mend it: a
// success status with a body that is not JSON (a login or error page), or a 4xx other
// than 408 and 429 (a wrong URL, credentials refused). The client has already retried
// what may pass (5xx, 429, network errors), and the supervisor restarts the source
// after those with a growing pause.
func classifyRequest(err error) error {
	var re *RequestError
	if errors.As(err, &re) && re.Status >= 200 && re.Status < 500 &&
		re.Status != http.StatusRequestTimeout && re.Status != http.StatusTooManyRequests {
		return connector.Permanent(err)
	}
	return err
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendUint64(dst []byte, v uint64) []byte {
	return appendUint32(appendUint32(dst, uint32(v>>32)), uint32(v))
}

// tracker returns the stream's schema tracker, restored from saved when there is one
// (so that columns keep their order and types across restarts).
func (str *stream) tracker(namespace string, saved json.RawMessage) (*Tracker, error) {
	t, err := RestoreTracker(saved, namespace, str.cfg.Name, str.cfg.PrimaryKey, str.cfg.Schema, Inference{Flatten: str.cfg.Flatten, DeclaredOnly: str.cfg.DeclaredOnly})
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("http: stream %s: %w", str.cfg.Name, err))
	}
	return t, nil
}

// identify returns a record's cursor, key (JSON of the key fields' values) and
// content hash.
func (str *stream) identify(raw map[string]any) (cursorValue, []byte, uint64, error) {
	v, ok := raw[str.cursor.Field]
	if !ok || v == nil {
		return cursorValue{}, nil, 0, fmt.Errorf("no cursor field %q", str.cursor.Field)
	}
	var text string
	switch x := v.(type) {
	case string:
		text = x
	case json.Number:
		text = x.String()
	default:
		return cursorValue{}, nil, 0, fmt.Errorf("cursor field %q holds %T, not a %s", str.cursor.Field, v, str.cursor.Type)
	}
	cv, err := parseCursor(str.cursor.Type, text)
	if err != nil {
		return cursorValue{}, nil, 0, err
	}
	key, err := str.key(raw)
	if err != nil {
		return cursorValue{}, nil, 0, err
	}
	return cv, key, str.hash.sum(raw), nil
}

// contentHasher hashes decoded JSON values by their content: object members in key
// order, each value behind a tag of its type, so two records hash alike exactly when
// they hold the same JSON (numbers as the API wrote them). It reuses its digest and
// key buffer from one record to the next.
type contentHasher struct {
	d    *xxhash.Digest
	keys []string
}

func (h *contentHasher) sum(v any) uint64 {
	if h.d == nil {
		h.d = xxhash.New()
	}
	h.d.Reset()
	hashValue(h.d, v, &h.keys)
	return h.d.Sum64()
}

func hashValue(d *xxhash.Digest, v any, keys *[]string) {
	var tag [1]byte
	switch x := v.(type) {
	case nil:
		tag[0] = 'n'
		_, _ = d.Write(tag[:])
	case bool:
		tag[0] = 'f'
		if x {
			tag[0] = 't'
		}
		_, _ = d.Write(tag[:])
	case json.Number:
		writeTagged(d, '#', string(x))
	case float64:
		writeTagged(d, '#', strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		writeTagged(d, '"', x)
	case []any:
		writeLen(d, '[', len(x))
		for _, e := range x {
			hashValue(d, e, keys)
		}
	case map[string]any:
		start := len(*keys)
		for k := range x {
			*keys = append(*keys, k)
		}
		own := (*keys)[start:]
		slices.Sort(own)
		writeLen(d, '{', len(own))
		for _, k := range own {
			writeTagged(d, ':', k)
			hashValue(d, x[k], keys)
		}
		*keys = (*keys)[:start]
	default:
		writeTagged(d, '?', fmt.Sprintf("%T:%v", v, v))
	}
}

// writeTagged writes a tag, the length of s and s, so that concatenations differ.
func writeTagged(d *xxhash.Digest, tag byte, s string) {
	writeLen(d, tag, len(s))
	_, _ = d.WriteString(s)
}

// writeLen writes a tag and a count.
func writeLen(d *xxhash.Digest, tag byte, n int) {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = tag
	k := binary.PutUvarint(hdr[1:], uint64(n))
	_, _ = d.Write(hdr[:1+k])
}

func (str *stream) key(raw map[string]any) ([]byte, error) {
	vals := make([]any, len(str.cfg.PrimaryKey))
	for i, f := range str.cfg.PrimaryKey {
		v, ok := raw[f]
		if !ok || v == nil {
			return nil, fmt.Errorf("no value for the key field %q", f)
		}
		vals[i] = v
	}
	return json.Marshal(vals)
}

func (str *stream) isDeleted(raw map[string]any) bool {
	d := str.cfg.Deleted
	if d.Field == "" {
		return false
	}
	v, ok := raw[d.Field]
	if !ok {
		return false
	}
	b, err := json.Marshal(v)
	return err == nil && (string(b) == d.Value || string(b) == `"`+d.Value+`"`)
}

// Ack forgets the rounds before the acknowledged one: a restart can never need them.
func (s *Source) Ack(_ context.Context, pos record.Position) error {
	p, err := parsePosition(pos)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return nil
	}
	for r := range s.state.Rounds {
		if r < p.round {
			delete(s.state.Rounds, r)
		}
	}
	return nil
}

// Close ends the idle connections of the source's transport.
func (s *Source) Close(context.Context) error {
	s.transport.CloseIdleConnections()
	return nil
}
