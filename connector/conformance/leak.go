package conformance

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/goleak"
)

// settleBound is how long goroutines a connector ended may take to finish after
// Close returned (a connection's reader noticing its socket closed, say).
const settleBound = 10 * time.Second

// goroutinesNow remembers the goroutines running now, which leftBehind ignores: the
// driver's own connections, the test environment's servers.
func goroutinesNow() goleak.Option { return goleak.IgnoreCurrent() }

// leftBehind reports the goroutines started since before that are still running
// once settleBound has passed.
func leftBehind(ctx context.Context, before goleak.Option) error {
	deadline := time.Now().Add(settleBound)
	for {
		err := goleak.Find(before)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("goroutines outlive Close: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
