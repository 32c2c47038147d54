// Package offsets stores each connector's committed position. Implementations make a
// commit atomic: after a crash, Load returns either the previous or the new position,
// never a torn one.
package offsets

import (
	"context"

	"github.com/connectd/connectd/record"
)

// Store keeps the committed position of each connector.
type Store interface {
	// Load returns the committed position, or nil when the connector has none.
	Load(ctx context.Context, connector string) (record.Position, error)
	// Commit durably replaces the connector's position.
	Commit(ctx context.Context, connector string, pos record.Position) error
	// Reset forgets the connector's position (the next run starts from scratch).
	Reset(ctx context.Context, connector string) error
	// List names the connectors that have a committed position.
	List(ctx context.Context) ([]string, error)
}
