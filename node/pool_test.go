package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDialAll(t *testing.T) {
	stuck := NewFake("stuck")
	dial := func(ctx context.Context, name string) (Host, error) {
		switch name {
		case "bad":
			return nil, errors.New("node bad: no route to host")
		case "slow":
			<-ctx.Done()
			return nil, ctx.Err()
		case "stuck":
			// Ignores its context, connects much later.
			time.Sleep(3 * time.Second)
			return stuck, nil
		}
		return NewFake(name), nil
	}
	start := time.Now()
	hosts, err := DialAll(context.Background(), []string{"a", "bad", "slow", "stuck", "b"}, 300*time.Millisecond, dial)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v", took)
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) || strings.Join(ue.Nodes(), " ") != "bad slow stuck" {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "no route to host") || !strings.Contains(err.Error(), "3 of 5") {
		t.Errorf("message: %v", err)
	}
	if len(hosts) != 2 || hosts["a"] == nil || hosts["b"] == nil {
		t.Fatalf("hosts: %v", hosts)
	}
	if err := CloseAll(hosts); err != nil || !hosts["a"].(*Fake).Closed() {
		t.Fatal(err)
	}
	// The late connection is not leaked.
	deadline := time.Now().Add(5 * time.Second)
	for !stuck.Closed() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !stuck.Closed() {
		t.Error("late host not closed")
	}

	hosts, err = DialAll(context.Background(), []string{"x", "y"}, time.Second, dial)
	if err != nil || len(hosts) != 2 {
		t.Fatal(hosts, err)
	}
}

// TestDialBoundedNoGrace: a caller that must answer on time gets our
// timeout error at the timeout, not the dial's own a grace later, and a
// dial that still connects afterwards is closed.
func TestDialBoundedNoGrace(t *testing.T) {
	late := NewFake("late")
	dial := func(ctx context.Context, name string) (Host, error) {
		if name == "late" {
			time.Sleep(time.Second) // ignores its context
			return late, nil
		}
		<-ctx.Done()
		return nil, ctx.Err() // the bare error, which says nothing of the node
	}
	for _, name := range []string{"late", "slow"} {
		start := time.Now()
		_, err := DialBounded(context.Background(), name, 200*time.Millisecond, 0, dial)
		if want := "node " + name + ": no connection within 200ms: context deadline exceeded"; err == nil || err.Error() != want {
			t.Errorf("%s: err %v, want %s", name, err, want)
		}
		if took := time.Since(start); took >= time.Second {
			t.Errorf("%s: returned after %v, when the dial gave up or connected", name, took)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for !late.Closed() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !late.Closed() {
		t.Error("the host that connected after the timeout is left open")
	}
}
