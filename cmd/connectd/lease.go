package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/connectd/connectd/connector"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/pipeline"
)

// leasePoll is how often a `run` waiting for another process's lease asks again.
const leasePoll = 2 * time.Second

// acquire takes a connector's lease for this process. When another process holds
// it, `sync` fails at once (a permanent error naming the holder) and `run` waits,
// showing the holder in its log and status, until the other process stops or its
// lease expires (docs/operations.md, "Running two instances safely").
func (a *app) acquire(ctx context.Context, name string, holder offsets.Holder, mode connector.Mode, st pipeline.Observer) (pipeline.Lease, error) {
	log := a.log.With("connector", name)
	var waitingFor *offsets.Holder
	for {
		l, err := a.store.Acquire(ctx, name, holder)
		if err == nil {
			if waitingFor != nil {
				log.Info("took the connector over", "from", waitingFor.String(), "generation", l.Generation())
			}
			return l, nil
		}
		var held *offsets.HeldError
		if !errors.As(err, &held) {
			return nil, fmt.Errorf("take the lease: %w", err)
		}
		if mode == connector.ModeSync {
			return nil, connector.Permanent(fmt.Errorf("%w; it is running there: wait for that process to finish or stop it, then sync again", err))
		}
		if waitingFor == nil || *waitingFor != held.Holder {
			log.Warn("another process holds the connector; waiting until it stops", "held_by", held.Holder.String())
			st.SetState(pipeline.StateWaiting, err)
			h := held.Holder
			waitingFor = &h
		}
		t := time.NewTimer(leasePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
