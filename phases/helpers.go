package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/haadm/haadm/manifests"
)

// Plan collects the changes a dry run would make to the API and to etcd;
// changes to files and commands on nodes are collected by node.Recorder.
type Plan struct {
	mu    sync.Mutex
	Items []PlanItem
}

// PlanItem is one change that was not made.
type PlanItem struct {
	Phase, Node, What, Diff string
}

func (p *Plan) add(it PlanItem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.Items = append(p.Items, it)
}

// change applies a change to the API or etcd, or records it in a dry run.
// Phases call it instead of branching on dry-run themselves.
func (c *Cluster) change(phase, nodeName, what, diff string, apply func() error) error {
	if c.Opts.DryRun {
		c.Plan.add(PlanItem{Phase: phase, Node: nodeName, What: what, Diff: diff})
		return nil
	}
	t0 := time.Now()
	if err := apply(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	c.Log.Step(phase, nodeName, time.Since(t0), what)
	return nil
}

// wait polls cond until it is true, ctx ends, or timeout passes. A dry run
// does not wait: nothing it waits for was started.
func (c *Cluster) wait(ctx context.Context, phase, nodeName, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) error {
	if c.Opts.DryRun {
		return nil
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, state, err := cond(ctx)
		if err == nil && ok {
			c.Log.Step(phase, nodeName, time.Since(t0), what)
			return nil
		}
		if err != nil {
			state = err.Error()
		}
		if state != last && state != "" {
			c.Log.Detail(phase, nodeName, "waiting for "+what+": "+state)
			last = state
		}
		select {
		case <-ctx.Done():
			why := "timed out"
			if errors.Is(ctx.Err(), context.Canceled) {
				why = "interrupted"
			}
			return fmt.Errorf("node %s: %s after %s waiting for %s (last state: %s)", nodeName, why, time.Since(t0).Round(time.Second), what, last)
		case <-time.After(2 * time.Second):
		}
	}
}

// readFile reads a file on a node; a missing file is (nil, false, nil).
func (c *Cluster) readFile(ctx context.Context, nodeName, path string) ([]byte, bool, error) {
	h := c.Host(nodeName)
	if h == nil {
		return nil, false, fmt.Errorf("node %s: not connected", nodeName)
	}
	b, err := h.ReadFile(ctx, path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// ensureFile writes data to path on a node unless it is there already.
// It reports whether it wrote.
func (c *Cluster) ensureFile(ctx context.Context, phase, nodeName, path string, data []byte, mode fs.FileMode) (bool, error) {
	have, ok, err := c.readFile(ctx, nodeName, path)
	if err != nil {
		return false, err
	}
	if ok && bytes.Equal(have, data) {
		return false, nil
	}
	t0 := time.Now()
	if err := c.Host(nodeName).WriteFile(ctx, path, data, mode); err != nil {
		return false, err
	}
	verb := "wrote "
	if ok {
		verb = "updated "
	}
	if !c.Opts.DryRun {
		c.Log.Step(phase, nodeName, time.Since(t0), verb+path)
	}
	return true, nil
}

// fileIs reports whether path on a node holds exactly data.
func (c *Cluster) fileIs(ctx context.Context, nodeName, path string, data []byte) (bool, error) {
	have, ok, err := c.readFile(ctx, nodeName, path)
	if err != nil || !ok {
		return false, err
	}
	return bytes.Equal(have, data), nil
}

// forEach runs fn(0..n-1) concurrently, for work on independent nodes, and
// returns every error.
func forEach(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// diff is a unified diff for plans, empty when equal.
func diff(old, new []byte) string { return manifests.Diff(old, new) }

const (
	pkiDir       = "/etc/kubernetes/pki"
	manifestsDir = "/etc/kubernetes/manifests"
)
