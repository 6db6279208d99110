package node

import (
	"context"
	"io/fs"
	"net"
	"sync/atomic"
)

// Counting is a Host that counts its round trips (one per command, read or
// write batch) and tunnels, so a run can log what it cost on each node.
type Counting struct {
	Host
	trips   atomic.Int64
	tunnels atomic.Int64
}

// NewCounting wraps h.
func NewCounting(h Host) *Counting { return &Counting{Host: h} }

// RoundTrips is the number of commands, reads and writes so far.
func (c *Counting) RoundTrips() int64 { return c.trips.Load() }

// Tunnels is the number of connections opened from the node's side.
func (c *Counting) Tunnels() int64 { return c.tunnels.Load() }

func (c *Counting) Output(ctx context.Context, cmd string) (string, error) {
	c.trips.Add(1)
	return c.Host.Output(ctx, cmd)
}

func (c *Counting) Run(ctx context.Context, cmd string) (string, error) {
	c.trips.Add(1)
	return c.Host.Run(ctx, cmd)
}

func (c *Counting) ReadFile(ctx context.Context, path string) ([]byte, error) {
	c.trips.Add(1)
	return c.Host.ReadFile(ctx, path)
}

func (c *Counting) ReadFiles(ctx context.Context, paths []string) (map[string]File, error) {
	c.trips.Add(1)
	return c.Host.ReadFiles(ctx, paths)
}

func (c *Counting) WriteFile(ctx context.Context, path string, data []byte, mode fs.FileMode) error {
	c.trips.Add(1)
	return c.Host.WriteFile(ctx, path, data, mode)
}

func (c *Counting) WriteFiles(ctx context.Context, files []File) error {
	if len(files) > 0 {
		c.trips.Add(1)
	}
	return c.Host.WriteFiles(ctx, files)
}

func (c *Counting) Upload(ctx context.Context, s Stream) error {
	c.trips.Add(1)
	return c.Host.Upload(ctx, s)
}

func (c *Counting) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.tunnels.Add(1)
	return c.Host.DialContext(ctx, network, addr)
}
