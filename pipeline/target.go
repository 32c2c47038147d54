package pipeline

import (
	"context"
	"fmt"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/record"
)

// reconcile compares the offsets store's position with the one a transactional
// destination committed with its data (docs/design.md, "Targets that keep their
// position") and returns where the run starts.
//
// The target commits before the store does, so a target ahead of the store is the
// crash between the two: the target's position is the truth, and the store is brought
// up to it. A target behind the store lost commits the store saw (a restored backup,
// another database): starting from the store would leave a gap in the target, and
// starting from the target would ask the source for what it may no longer have, so
// the run stops and says what to do. The start of a reset epoch (`offsets reset`) is
// ahead of every position of the epochs before it and is not a gap.
func (r *runner) reconcile(ctx context.Context, t connector.Transactional, stored record.Position) (record.Position, error) {
	target, err := t.Committed(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the destination's committed position: %w", err)
	}
	switch c := target.Compare(stored); {
	case c == 0:
		return stored, nil
	case c > 0:
		r.log.Warn("the destination committed past the offsets store (a stop between its commit and the store's); continuing from the destination's position",
			"destination", target.String(), "store", stored.String())
		if err := r.o.Store.Commit(ctx, r.o.Name, target); err != nil {
			return nil, fmt.Errorf("commit the destination's position %s to the offsets store: %w", target, err)
		}
		return target, nil
	}
	if _, src, err := SplitEpoch(stored); err == nil && src == nil {
		// The start of a reset epoch.
		if l, ok := t.(connector.Reloadable); ok && target != nil {
			if err := l.Reload(ctx); err != nil {
				return nil, err
			}
		}
		return stored, nil
	}
	held := "no position"
	if target != nil {
		held = "position " + target.String()
	}
	return nil, connector.Permanent(fmt.Errorf("the destination holds %s for connector %s, but the offsets store holds the later %s: "+
		"the destination has lost commits (restored from a backup, or another database than before), and continuing would leave a gap in it. "+
		"To load it again from a new snapshot run `connectd offsets reset %s`; to accept the destination as it is, set its position to the store's (docs/design.md, \"Targets that keep their position\")",
		held, r.o.Name, stored, r.o.Name))
}
