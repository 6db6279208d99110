package probe

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestFirstSuccess(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	// Attempts hang for a long time until the fifth, which answers at
	// once: the answer is the fifth attempt's start, not a timeout later.
	var started atomic.Int32
	got := FirstSuccess(context.Background(), t0, 20*time.Millisecond, 5*time.Second, func(i int) error {
		started.Add(1)
		if i < 4 {
			time.Sleep(2 * time.Second)
			return errors.New("timeout")
		}
		return nil
	})
	if got < 80*time.Millisecond || got >= 2*time.Second {
		t.Errorf("first success after %v, want the fifth attempt's start (about 80ms)", got)
	}
	if n := started.Load(); n < 5 {
		t.Errorf("%d attempts started", n)
	}

	if got := FirstSuccess(context.Background(), time.Now(), 10*time.Millisecond, 100*time.Millisecond, func(int) error { return errors.New("down") }); got != -1 {
		t.Errorf("never up: %v, want -1", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := FirstSuccess(ctx, time.Now(), 10*time.Millisecond, time.Minute, func(int) error { time.Sleep(time.Second); return nil }); got != -1 {
		t.Errorf("cancelled: %v, want -1", got)
	}
}
