package offsetstest_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/offsets/offsetstest"
	"github.com/connectd/connectd/record"
)

// place is what an in-memory store keeps: it outlives the store instances opened on
// it, as a directory outlives the processes that use it.
type place struct {
	mu     sync.Mutex
	pos    map[string]record.Position
	state  map[string][]byte // stateKey -> data
	leases map[string]*memLease
	gens   map[string]int64
}

func newPlace() *place {
	return &place{pos: map[string]record.Position{}, state: map[string][]byte{}, leases: map[string]*memLease{}, gens: map[string]int64{}}
}

// The ways a store can be broken, each of which the contract must notice.
const (
	correct        = ""
	movesBackwards = "moves backwards"   // Commit takes any position
	staleLoad      = "stale load"        // an instance keeps returning the first position it saw
	mixesState     = "mixes state keys"  // connector and key joined with a dot, so st/b.schema is st.b/schema
	resetKeeps     = "reset keeps state" // Reset replaces the position but leaves the state
	unfenced       = "unfenced lease"    // a lease still commits after it was released or taken over
	sharedLease    = "shared lease"      // a second Acquire succeeds while the first holds
)

// memStore is an offsets.Store in memory, correct unless broken says otherwise.
type memStore struct {
	p      *place
	broken string
	mu     sync.Mutex
	seen   map[string]record.Position // staleLoad's cache
}

func opener(p *place, broken string) offsetstest.Opener {
	return func(testing.TB) offsets.Store {
		return &memStore{p: p, broken: broken, seen: map[string]record.Position{}}
	}
}

func (s *memStore) Load(_ context.Context, c string) (record.Position, error) {
	if s.broken == staleLoad {
		s.mu.Lock()
		if p, ok := s.seen[c]; ok {
			s.mu.Unlock()
			return p, nil
		}
		s.mu.Unlock()
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.pos[c], nil
}

func (s *memStore) Commit(_ context.Context, c string, pos record.Position) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.commitLocked(c, pos)
}

func (s *memStore) commitLocked(c string, pos record.Position) error {
	if c == "" || len(pos) == 0 {
		return errors.New("empty connector name or empty position")
	}
	if old := s.p.pos[c]; s.broken != movesBackwards && old != nil && pos.Compare(old) < 0 {
		return fmt.Errorf("position %s is below the committed %s: an offset never moves backwards", pos, old)
	}
	s.p.pos[c] = append(record.Position(nil), pos...)
	if s.broken == staleLoad {
		s.mu.Lock()
		if _, ok := s.seen[c]; !ok {
			s.seen[c] = s.p.pos[c]
		}
		s.mu.Unlock()
	}
	return nil
}

func (s *memStore) Reset(_ context.Context, c string, to record.Position) error {
	if to != nil && len(to) == 0 {
		return errors.New("reset to an empty position")
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if s.broken != resetKeeps {
		for k := range s.p.state {
			if conn, _, _ := splitStateKey(k); conn == c {
				delete(s.p.state, k)
			}
		}
	}
	if to == nil {
		delete(s.p.pos, c)
	} else {
		s.p.pos[c] = append(record.Position(nil), to...)
	}
	return nil
}

func (s *memStore) List(context.Context) ([]string, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	names := make([]string, 0, len(s.p.pos))
	for n := range s.p.pos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (s *memStore) State(c string) connector.StateStore { return memState{s: s, conn: c} }

func (s *memStore) Close() error { return nil }

func (s *memStore) stateKey(conn, key string) string {
	if s.broken == mixesState {
		return conn + "." + key
	}
	return conn + "\x00" + key
}

// splitStateKey returns the connector of a correct store's state key.
func splitStateKey(k string) (conn, key string, ok bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

type memState struct {
	s    *memStore
	conn string
}

func (m memState) Load(_ context.Context, key string) ([]byte, error) {
	m.s.p.mu.Lock()
	defer m.s.p.mu.Unlock()
	d, ok := m.s.p.state[m.s.stateKey(m.conn, key)]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, d...), nil
}

func (m memState) Save(_ context.Context, key string, data []byte) error {
	if key == "" {
		return errors.New("empty state key")
	}
	m.s.p.mu.Lock()
	defer m.s.p.mu.Unlock()
	m.s.p.state[m.s.stateKey(m.conn, key)] = append([]byte{}, data...)
	return nil
}

func (s *memStore) Acquire(_ context.Context, c string, h offsets.Holder) (offsets.Lease, error) {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if cur := s.p.leases[c]; cur != nil && !cur.stolen && s.broken != sharedLease {
		return nil, &offsets.HeldError{Connector: c, Holder: cur.holder}
	} else if cur != nil {
		cur.lose(&offsets.LostError{Connector: c, Holder: h})
	}
	s.p.gens[c]++
	l := &memLease{s: s, conn: c, holder: h, gen: s.p.gens[c], lost: make(chan struct{})}
	s.p.leases[c] = l
	return l, nil
}

// memLease is a connector's lease in memory; the place's leases map says who holds
// each connector now.
type memLease struct {
	s      *memStore
	conn   string
	holder offsets.Holder
	gen    int64
	stolen bool // the holder stopped renewing: another may take it over

	once sync.Once
	lost chan struct{}
	err  error
}

func (l *memLease) lose(err error) {
	l.once.Do(func() { l.err = err; close(l.lost) })
}

func (l *memLease) Load(ctx context.Context, c string) (record.Position, error) {
	if c != l.conn {
		return nil, fmt.Errorf("the lease is on %s, not %s", l.conn, c)
	}
	return l.s.Load(ctx, c)
}

func (l *memLease) Commit(_ context.Context, c string, pos record.Position) error {
	if c != l.conn {
		return fmt.Errorf("the lease is on %s, not %s", l.conn, c)
	}
	l.s.p.mu.Lock()
	defer l.s.p.mu.Unlock()
	if cur := l.s.p.leases[c]; cur != l && l.s.broken != unfenced {
		e := &offsets.LostError{Connector: c, Cause: errors.New("released")}
		if cur != nil {
			e = &offsets.LostError{Connector: c, Holder: cur.holder}
		}
		return e
	}
	return l.s.commitLocked(c, pos)
}

func (l *memLease) Generation() int64     { return l.gen }
func (l *memLease) Lost() <-chan struct{} { return l.lost }

func (l *memLease) Err() error {
	select {
	case <-l.lost:
		return l.err
	default:
		return nil
	}
}

func (l *memLease) Release(context.Context) error {
	l.s.p.mu.Lock()
	defer l.s.p.mu.Unlock()
	if l.s.p.leases[l.conn] == l {
		delete(l.s.p.leases, l.conn)
	}
	l.lose(&offsets.LostError{Connector: l.conn, Cause: errors.New("released")})
	return nil
}

func steal(_ testing.TB, a offsets.Lease) {
	l := a.(*memLease)
	l.s.p.mu.Lock()
	defer l.s.p.mu.Unlock()
	l.stolen = true
}

func TestACorrectInMemoryStorePasses(t *testing.T) {
	p := newPlace()
	offsetstest.TestStore(t, opener(p, correct))
	offsetstest.TestLease(t, opener(p, correct), offsetstest.LeaseOptions{Steal: steal})
}

// TestBrokenStoresFailTheContract runs every check against stores broken in one way
// each, and wants the check that covers that way to fail (the others may fail too).
func TestBrokenStoresFailTheContract(t *testing.T) {
	cases := []struct{ broken, check string }{
		{movesBackwards, "an offset never moves backwards"},
		{movesBackwards, "a lease commits forward only and its own connector only"},
		{staleLoad, "positions survive a new instance"},
		{mixesState, "state is kept beside the position"},
		{resetKeeps, "list and reset"},
		{resetKeeps, "reset to a position"},
		{unfenced, "a released lease is taken at once and fences its old owner"},
		{unfenced, "a taken-over lease fences its old owner"},
		{sharedLease, "a second acquire fails naming the holder"},
	}
	checks := append(append([]offsetstest.Check{}, offsetstest.StoreChecks...), offsetstest.LeaseChecks...)
	for _, c := range cases {
		t.Run(c.broken+"/"+c.check, func(t *testing.T) {
			var found bool
			for _, ch := range checks {
				if ch.Name != c.check {
					continue
				}
				found = true
				err := ch.Run(context.Background(), t, opener(newPlace(), c.broken), offsetstest.LeaseOptions{Steal: steal})
				if err == nil {
					t.Fatalf("a store that %s passes %q", c.broken, c.check)
				}
				t.Logf("reported: %v", err)
			}
			if !found {
				t.Fatalf("no check named %q", c.check)
			}
		})
	}
}
