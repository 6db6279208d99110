package phases

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Work is a phase's plan: the steps left to do, computed once from what
// the phase read. The same steps are what a dry run prints, what progress
// reports and what Apply runs, so the three cannot drift apart.
type Work struct {
	Steps []Step
	// PerNode runs different nodes' steps concurrently (each node's in
	// order); otherwise every step runs in order. Work on independent
	// files may go in parallel; anything that restarts a component or
	// changes membership goes one node at a time.
	PerNode bool
	// Left lists the Optional steps that failed, for the operator to
	// re-run; apply fills it.
	Left []string
	mu   sync.Mutex
	// gate, when set, holds each node's steps of PerNode work until it
	// answers; false skips them (see overlap).
	gate func(node string) bool
}

// maxBatch bounds how many Batch steps run at once: enough to make a large
// fleet of workers quick, few enough for the API and the operator's SSH.
const maxBatch = 5

// Step is one group of changes on one node (or on the cluster when Node is
// ""), e.g. "17 files" or "add etcd learner".
type Step struct {
	Node string
	What string
	// Details are the lines behind What: files with diffs, objects, the
	// commands. The dry run prints them; a real run logs them.
	Details []string
	// Wait marks a step that only waits for something an earlier step
	// started; a plan of waits alone is no work.
	Wait bool
	// Batch steps next to each other run at the same time (maxBatch at
	// most): independent nodes, such as workers after the control plane.
	Batch bool
	// Optional steps may fail without stopping the run: the failure is
	// reported and left for a re-run (a worker that is down must not hold
	// up the control plane).
	Optional bool
	// Gate marks the step after which the next phase may start on Node
	// while this phase goes on with other nodes (a phase that follows
	// node by node: see follower).
	Gate bool
	// Do makes the change; it is safe to repeat.
	Do func(ctx context.Context) error
}

// Empty reports whether nothing is left to do.
func (w *Work) Empty() bool {
	if w == nil {
		return true
	}
	for _, s := range w.Steps {
		if !s.Wait {
			return false
		}
	}
	return true
}

// add appends steps.
func (w *Work) add(s ...Step) { w.Steps = append(w.Steps, s...) }

// apply runs the steps, reporting each as "[phase] node: what (time)".
func (w *Work) apply(ctx context.Context, phase string, log *Progress) error {
	run := func(s Step) error {
		t0 := time.Now()
		log.Start(phase, s.Node, s.What)
		for _, d := range s.Details {
			log.Detail(phase, s.Node, d)
		}
		if err := s.Do(ctx); err != nil {
			log.Fail(phase, s.Node, time.Since(t0), s.What, err)
			if s.Node != "" {
				return fmt.Errorf("node %s: %s: %w", s.Node, s.What, err)
			}
			return fmt.Errorf("%s: %w", s.What, err)
		}
		log.Step(phase, s.Node, time.Since(t0), s.What)
		if !s.Wait {
			log.Applied(phase, s.Node, s.What)
		}
		return nil
	}
	if w.PerNode {
		var order []string
		byNode := map[string][]Step{}
		for _, s := range w.Steps {
			if _, ok := byNode[s.Node]; !ok {
				order = append(order, s.Node)
			}
			byNode[s.Node] = append(byNode[s.Node], s)
		}
		return forEach(len(order), func(i int) error {
			if w.gate != nil && !w.gate(order[i]) {
				return nil
			}
			for _, s := range byNode[order[i]] {
				if err := w.runStep(ctx, phase, log, s, run); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for i := 0; i < len(w.Steps); i++ {
		if !w.Steps[i].Batch {
			if err := w.runStep(ctx, phase, log, w.Steps[i], run); err != nil {
				return err
			}
			continue
		}
		j := i
		for j < len(w.Steps) && w.Steps[j].Batch {
			j++
		}
		batch := w.Steps[i:j]
		sem := make(chan struct{}, maxBatch)
		if err := forEach(len(batch), func(k int) error {
			sem <- struct{}{}
			defer func() { <-sem }()
			return w.runStep(ctx, phase, log, batch[k], run)
		}); err != nil {
			return err
		}
		i = j - 1
	}
	return nil
}

// runStep runs s; an Optional step's failure is kept in Left instead.
func (w *Work) runStep(ctx context.Context, phase string, log *Progress, s Step, run func(Step) error) error {
	err := run(s)
	if err == nil || !s.Optional || ctx.Err() != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Left = append(w.Left, phase+": "+err.Error())
	return nil
}

// planNodes plans n independent nodes at once (each plan reads its own
// node) and adds their steps to w in node order; a nil step is a node with
// nothing to do.
func (w *Work) planNodes(n int, plan func(i int) (*Step, error)) error {
	steps := make([]*Step, n)
	if err := forEach(n, func(i int) error {
		var err error
		steps[i], err = plan(i)
		return err
	}); err != nil {
		return err
	}
	for _, s := range steps {
		if s != nil {
			w.add(*s)
		}
	}
	return nil
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

// waitFor polls cond every interval until it is true, ctx ends, or timeout
// passes; the error says what it last saw. States go to the log.
func waitFor(ctx context.Context, log *Progress, phase, nodeName, what string, timeout time.Duration, cond func(ctx context.Context) (bool, string, error)) error {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		ok, state, err := cond(ctx)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			state = err.Error()
		}
		if state != last && state != "" {
			log.Detail(phase, nodeName, "waiting for "+what+": "+state)
			last = state
		}
		select {
		case <-ctx.Done():
			why := "timed out"
			if errors.Is(ctx.Err(), context.Canceled) {
				why = "interrupted"
			}
			return fmt.Errorf("%s after %s waiting for %s (last state: %s)", why, time.Since(t0).Round(time.Second), what, last)
		case <-time.After(pollInterval(time.Since(t0))):
		}
	}
}

// pollInterval polls fast at first, when the thing waited for is often
// just about to happen, and backs off to 2 s.
func pollInterval(elapsed time.Duration) time.Duration {
	switch {
	case elapsed < 20*time.Second:
		// Most waits (an apiserver's start, an etcd member's publish) end
		// 5 to 15 s in; polling every second here cost half a second on
		// average at each.
		return 250 * time.Millisecond
	case elapsed < time.Minute:
		return time.Second
	}
	return 2 * time.Second
}
