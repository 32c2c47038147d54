// Package offsets stores each connector's committed position, and beside it the
// small state its source keeps (snapshot progress, a schema history). Three stores
// implement it: a directory (file://), a bucket prefix (s3://) and two tables in a
// PostgreSQL database (postgres://). Each makes a commit atomic: after a crash, Load
// returns either the previous or the new position, never a torn one.
package offsets

import (
	"context"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// Store keeps the committed position of each connector.
type Store interface {
	// Load returns the committed position, or nil when the connector has none.
	Load(ctx context.Context, connector string) (record.Position, error)
	// Commit durably replaces the connector's position.
	Commit(ctx context.Context, connector string, pos record.Position) error
	// Reset forgets the connector's source state and replaces its position with to
	// (nil: forgets the position too). The state goes first, so a reset cut short
	// leaves the old position, and running it again does the whole reset.
	Reset(ctx context.Context, connector string, to record.Position) error
	// List names the connectors that have a committed position, sorted.
	List(ctx context.Context) ([]string, error)
	// Acquire takes the connector's lease for holder, or returns a *HeldError naming
	// the process that has it. Commits through the lease are fenced; the Store's own
	// Commit is not, and connectd never uses it.
	Acquire(ctx context.Context, connector string, holder Holder) (Lease, error)
	// State returns the store of the connector's source state.
	State(connector string) connector.StateStore
	// Close releases the store's connections.
	Close() error
}
