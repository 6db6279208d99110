package node

import (
	"testing"
)

func TestCountingCountsRoundTrips(t *testing.T) {
	t.Parallel()
	f := NewFake("emei")
	f.Respond("true", "", nil)
	c := NewCounting(f)
	ctx := t.Context()
	if _, err := c.Output(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadFiles(ctx, []string{"/a", "/b", "/c"}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFiles(ctx, []File{{Path: "/a", Data: []byte("x"), Mode: 0o600}, {Path: "/b", Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFiles(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, _ = c.DialContext(ctx, "tcp", "127.0.0.1:2379")
	if got := c.RoundTrips(); got != 3 {
		t.Errorf("round trips = %d, want 3 (one command, one read batch, one write batch; an empty batch costs nothing)", got)
	}
	if got := c.Tunnels(); got != 1 {
		t.Errorf("tunnels = %d, want 1", got)
	}
	if c.Name() != "emei" {
		t.Errorf("name = %q", c.Name())
	}
}
