// Package probe holds the one way haadm's end-to-end tests and its
// benchmark time a failover, so that their figures can be compared.
package probe

import (
	"context"
	"time"
)

// FirstSuccess is when, since t0, the first of the attempts started every
// `every` (none waiting for the last) succeeded; -1 when none did within
// `within` or before ctx ended. A failover is timed to the attempts'
// interval, not to the length of the timeouts of those that fail.
func FirstSuccess(ctx context.Context, t0 time.Time, every, within time.Duration, op func(i int) error) time.Duration {
	done := make(chan time.Duration, 1)
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.After(within)
	for i := 0; ; i++ {
		go func() {
			if op(i) == nil {
				select {
				case done <- time.Since(t0):
				default:
				}
			}
		}()
		select {
		case took := <-done:
			return took
		case <-deadline:
			return -1
		case <-ctx.Done():
			return -1
		case <-tick.C:
		}
	}
}
