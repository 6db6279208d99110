package node

import (
	"testing"
)

func TestCachedServesPrefetchedReads(t *testing.T) {
	t.Parallel()
	f := NewFake("emei")
	f.SetFile("/a", []byte("a"), 0o600)
	f.Respond("systemctl", "", nil)
	counted := NewCounting(f)
	c := NewCached(counted)
	ctx := t.Context()
	if err := c.Prefetch(ctx, []string{"/a", "/missing"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.ReadFiles(ctx, []string{"/missing", "/a"})
	if err != nil || string(got["/a"].Data) != "a" || got["/a"].Mode != 0o600 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if _, ok := got["/missing"]; ok {
		t.Error("a missing file must stay missing")
	}
	if n := counted.RoundTrips(); n != 1 {
		t.Errorf("%d round trips, want only the prefetch", n)
	}
	// A path not prefetched goes to the node.
	if _, err := c.ReadFiles(ctx, []string{"/a", "/b"}); err != nil {
		t.Fatal(err)
	}
	if n := counted.RoundTrips(); n != 2 {
		t.Errorf("%d round trips, want 2", n)
	}
	// A write makes it forget: the next read sees the node.
	if err := c.WriteFiles(ctx, []File{{Path: "/a", Data: []byte("new"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	got, _ = c.ReadFiles(ctx, []string{"/a"})
	if string(got["/a"].Data) != "new" {
		t.Errorf("after a write: %q", got["/a"].Data)
	}
	_ = c.Prefetch(ctx, []string{"/a"})
	before := counted.RoundTrips()
	if _, err := c.Run(ctx, "systemctl restart kubelet"); err != nil {
		t.Fatal(err)
	}
	_, _ = c.ReadFiles(ctx, []string{"/a"})
	if counted.RoundTrips() != before+2 {
		t.Error("a command that may change the node must make the cache forget")
	}
}

// TestCachedPeek answers from the prefetch only, never from the node.
func TestCachedPeek(t *testing.T) {
	t.Parallel()
	f := NewFake("emei")
	f.SetFile("/a", []byte("a"), 0o600)
	counted := NewCounting(f)
	c := NewCached(counted)
	if _, ok := c.Peek([]string{"/a"}); ok {
		t.Error("Peek before any prefetch answered")
	}
	if err := c.Prefetch(t.Context(), []string{"/a", "/missing"}); err != nil {
		t.Fatal(err)
	}
	got, ok := c.Peek([]string{"/a", "/missing"})
	if _, missing := got["/missing"]; !ok || string(got["/a"].Data) != "a" || missing {
		t.Errorf("Peek = %+v, %v", got, ok)
	}
	if _, ok := c.Peek([]string{"/a", "/b"}); ok {
		t.Error("Peek of a path not prefetched answered")
	}
	if n := counted.RoundTrips(); n != 1 {
		t.Errorf("%d round trips, want only the prefetch", n)
	}
}
