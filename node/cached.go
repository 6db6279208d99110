package node

import (
	"context"
	"io/fs"
	"maps"
	"sync"
)

// Cached is a Host that answers ReadFiles from files it read earlier in one
// batch (Prefetch), so that the plans of many phases cost one round trip
// per node instead of one each. Anything that may change the node (Run,
// WriteFile, WriteFiles, Upload) forgets everything it holds; Output is read-only
// by the Host contract and forgets nothing.
type Cached struct {
	Host
	mu    sync.Mutex
	files map[string]File
	known map[string]bool // paths read, present or not
}

// NewCached wraps h.
func NewCached(h Host) *Cached { return &Cached{Host: h} }

// Prefetch reads paths in one round trip and keeps them.
func (c *Cached) Prefetch(ctx context.Context, paths []string) error {
	got, err := c.Host.ReadFiles(ctx, paths)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files, c.known = map[string]File{}, map[string]bool{}
	}
	for _, p := range paths {
		c.known[p] = true
	}
	maps.Copy(c.files, got)
	return nil
}

// ReadFiles answers from what Prefetch read when it covers every path, and
// from the node otherwise.
func (c *Cached) ReadFiles(ctx context.Context, paths []string) (map[string]File, error) {
	c.mu.Lock()
	hit := c.known != nil
	for _, p := range paths {
		hit = hit && c.known[p]
	}
	if hit {
		out := map[string]File{}
		for _, p := range paths {
			if f, ok := c.files[p]; ok {
				f.Data = clone(f.Data)
				out[p] = f
			}
		}
		c.mu.Unlock()
		return out, ctx.Err()
	}
	c.mu.Unlock()
	return c.Host.ReadFiles(ctx, paths)
}

// Peek answers from what Prefetch read, never from the node: ok is false
// when it does not cover every path.
func (c *Cached) Peek(paths []string) (_ map[string]File, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		return nil, false
	}
	out := map[string]File{}
	for _, p := range paths {
		if !c.known[p] {
			return nil, false
		}
		if f, ok := c.files[p]; ok {
			f.Data = clone(f.Data)
			out[p] = f
		}
	}
	return out, true
}

func (c *Cached) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files, c.known = nil, nil
}

func (c *Cached) Run(ctx context.Context, cmd string) (string, error) {
	c.forget()
	return c.Host.Run(ctx, cmd)
}

func (c *Cached) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	c.forget()
	return c.Host.WriteFile(ctx, path, data, mode)
}

func (c *Cached) WriteFiles(ctx context.Context, files []File) error {
	c.forget()
	return c.Host.WriteFiles(ctx, files)
}

func (c *Cached) Upload(ctx context.Context, s Stream) error {
	c.forget()
	return c.Host.Upload(ctx, s)
}
