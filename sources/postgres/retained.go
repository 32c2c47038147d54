package postgres

import (
	"context"
	"time"
)

// retainedInterval is how often the slot's retained WAL is measured: one cheap query
// on the normal connection.
const retainedInterval = 15 * time.Second

// reportRetained tells the status how much WAL the server keeps for the slot (from
// its restart_lsn) and how much lies past its confirmed_flush_lsn, at most once per
// retainedEvery. It runs on the Read goroutine, which owns the connection; a failure
// is only logged, the figure is informative.
func (s *Source) reportRetained(ctx context.Context) {
	if time.Since(s.retainedAt) < s.retainedEvery {
		return
	}
	s.retainedAt = time.Now()
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var retained, unconfirmed *int64
	err := s.conn.QueryRow(qctx, `
SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::int8,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::int8
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, s.st.slot).Scan(&retained, &unconfirmed)
	if err != nil {
		s.log.Debug("measuring the slot's retained WAL failed", "err", err)
		return
	}
	if retained == nil || unconfirmed == nil {
		return
	}
	s.status.SourceRetained(max(*retained, 0), max(*unconfirmed, 0))
}
