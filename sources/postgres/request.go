package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connectd/connectd/connector"
)

// Snapshots on request (`connectd snapshot`): the command queues a request in the
// connector's state under requestsKey, which only the command writes; the running
// source reads it when it looks for new tables (discover), queues the table's
// snapshot while streaming as it does for a table added later, restricted to the
// request's filter, and records the request's id in its own state, as taken and then
// as done. A source that is not running picks it up when it next starts.

// requestsKey names the queued requests in the connector's state.
const requestsKey = "postgres.snapshot_requests"

// keepDone bounds the ids of finished requests the state keeps for SnapshotDone.
const keepDone = 100

// snapRequest is one requested snapshot.
type snapRequest struct {
	ID    string    `json:"id"`
	Table string    `json:"table"`
	Where string    `json:"where,omitempty"`
	At    time.Time `json:"at"`
}

type snapRequests struct {
	Requests []snapRequest `json:"requests"`
}

var _ connector.Resnapshotter = Kind{}

// RequestSnapshot checks that table is selected and where a valid filter on it, and
// queues the request.
func (Kind) RequestSnapshot(ctx context.Context, p connector.SourceParams, name, where string) (string, error) {
	if p.State == nil {
		return "", errors.New("postgres: a snapshot on request needs an offsets store that keeps state")
	}
	st, err := settingsFrom(p)
	if err != nil {
		return "", err
	}
	conn, err := connect(ctx, st)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cat, err := newCatalog(ctx, conn)
	if err != nil {
		return "", err
	}
	if cat.version < 140000 {
		return "", fmt.Errorf("postgres: a snapshot while streaming needs logical decoding messages: PostgreSQL 14 or later (server is %d)", cat.version)
	}
	all, err := cat.allTables(ctx)
	if err != nil {
		return "", err
	}
	matched, _, _ := matchTables(all, st.tables)
	i := slices.IndexFunc(matched, func(t table) bool { return t.qualified() == name })
	if i < 0 {
		return "", fmt.Errorf("postgres: table %s is not selected by connector %s (tables: %s)", name, p.Name, strings.Join(st.tables, ", "))
	}
	if where = strings.TrimSpace(where); where != "" {
		// Parsing the filter in a statement of its own catches a syntax error or an
		// unknown column now, and a second statement smuggled into it: a prepared
		// statement is one statement.
		if _, err := conn.Prepare(ctx, "", "SELECT 1 FROM "+matched[i].ident()+" WHERE ("+where+")"); err != nil {
			return "", fmt.Errorf("postgres: --where %q on %s: %w", where, name, err)
		}
	}
	req := snapRequest{ID: newID(), Table: name, Where: where, At: time.Now().UTC()}
	if err := addRequest(ctx, p.State, req); err != nil {
		return "", err
	}
	return req.ID, nil
}

// addRequest appends req to the queued requests, less those already taken, and reads
// them back: two commands writing at once could lose one, which the reading back
// turns into an error instead.
func addRequest(ctx context.Context, store connector.StateStore, req snapRequest) error {
	reqs, err := loadRequests(ctx, store)
	if err != nil {
		return err
	}
	taken, err := takenRequests(ctx, store)
	if err != nil {
		return err
	}
	reqs.Requests = slices.DeleteFunc(reqs.Requests, func(r snapRequest) bool { return taken[r.ID] })
	reqs.Requests = append(reqs.Requests, req)
	data, err := json.Marshal(reqs)
	if err != nil {
		return err
	}
	if err := store.Save(ctx, requestsKey, data); err != nil {
		return fmt.Errorf("postgres: queue the snapshot request: %w", err)
	}
	back, err := loadRequests(ctx, store)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(back.Requests, func(r snapRequest) bool { return r.ID == req.ID }) {
		return errors.New("postgres: another command queued a request at the same time and replaced this one: run it again")
	}
	return nil
}

func loadRequests(ctx context.Context, store connector.StateStore) (snapRequests, error) {
	var reqs snapRequests
	data, err := store.Load(ctx, requestsKey)
	if err != nil {
		return reqs, fmt.Errorf("postgres: load the snapshot requests: %w", err)
	}
	if data != nil {
		if err := json.Unmarshal(data, &reqs); err != nil {
			return reqs, fmt.Errorf("postgres: the snapshot requests in the state store are unreadable: %w", err)
		}
	}
	return reqs, nil
}

// takenRequests are the ids of the requests the source has taken.
func takenRequests(ctx context.Context, store connector.StateStore) (map[string]bool, error) {
	data, err := store.Load(ctx, incrStateKey)
	if err != nil || data == nil {
		return nil, err
	}
	var st incrState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, nil // the source says the same when it starts, and starts over
	}
	taken := map[string]bool{}
	for _, id := range st.Taken {
		taken[id] = true
	}
	return taken, nil
}

// SnapshotDone reports whether the source finished the request.
func (Kind) SnapshotDone(ctx context.Context, p connector.SourceParams, id string) (bool, error) {
	if p.State == nil {
		return false, nil
	}
	data, err := p.State.Load(ctx, incrStateKey)
	if err != nil || data == nil {
		return false, err
	}
	var st incrState
	if err := json.Unmarshal(data, &st); err != nil {
		return false, fmt.Errorf("postgres: the table state is unreadable: %w", err)
	}
	return slices.Contains(st.Done, id), nil
}

// takeRequests queues the snapshots requested since the last call.
func (s *Source) takeRequests(ctx context.Context) error {
	if s.state == nil || s.incr == nil {
		return nil
	}
	reqs, err := loadRequests(ctx, s.state)
	if err != nil {
		return err
	}
	changed := false
	for _, r := range reqs.Requests {
		if slices.Contains(s.incr.Taken, r.ID) {
			continue
		}
		changed = true
		s.incr.Taken = append(s.incr.Taken, r.ID)
		t, ok := s.tables[r.Table]
		if !ok || !s.selected[r.Table] {
			s.log.Warn("a snapshot was requested of a table that is no longer selected; it is not read", "table", r.Table, "request", r.ID)
			s.incr.Done = append(s.incr.Done, r.ID)
			continue
		}
		s.incr.Queue = append(s.incr.Queue, incrTable{ID: r.ID, Table: r.Table, OID: t.oid, Where: r.Where, Requested: true})
		s.log.Info("snapshot requested: the table is read again while the stream runs", "table", r.Table, "where", r.Where, "request", r.ID)
	}
	if !changed {
		return nil
	}
	s.incr.Taken = lastN(s.incr.Taken, keepDone)
	s.incr.Done = lastN(s.incr.Done, keepDone)
	return s.saveIncr(ctx)
}

func lastN(ids []string, n int) []string {
	if len(ids) > n {
		return ids[len(ids)-n:]
	}
	return ids
}
