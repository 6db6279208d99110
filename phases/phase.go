// Package phases holds the steps of a promotion, one file per phase, and the
// runner that drives them. A phase reads the cluster in Check and converges
// it in Apply; Apply is safe to repeat, which is how users recover from a
// promotion that stopped half way: they run it again.
package phases

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Phase is one named step of `haadm promote`, also runnable alone as
// `haadm phase <name>`.
type Phase interface {
	Name() string
	Description() string
	// Check only reads. done is true when Apply would change nothing; why
	// says what is left to do.
	Check(ctx context.Context, c *Cluster) (done bool, why string, err error)
	// Apply converges the cluster; it is safe to run again after a failure.
	Apply(ctx context.Context, c *Cluster) error
}

// All returns the phases of a promotion in order.
func All() []Phase {
	return []Phase{
		Preflight{}, Backup{}, Certs{}, Etcd{}, ControlPlane{}, Mark{}, LB{}, Kubelet{}, ClusterConfig{},
	}
}

// Names lists the phase names, for help texts and --skip-phases.
func Names() []string {
	var n []string
	for _, p := range All() {
		n = append(n, p.Name())
	}
	return n
}

// Find returns the phase called name.
func Find(name string) (Phase, error) {
	for _, p := range All() {
		if p.Name() == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no phase %q; phases are: %s", name, strings.Join(Names(), ", "))
}

// Run runs phases in order. Preflight always runs first, whatever is asked,
// because nothing may change before bad input is refused. Backup runs only
// when some later phase has work to do, so a converged cluster is left alone.
func Run(ctx context.Context, c *Cluster, list []Phase) error {
	start := time.Now()
	if len(list) == 0 || list[0].Name() != "preflight" {
		list = append([]Phase{Preflight{}}, list...)
	}
	for i, p := range list {
		if _, ok := p.(Backup); ok {
			pending, err := pendingAfter(ctx, c, list[i+1:])
			if err != nil {
				return err
			}
			if len(pending) == 0 {
				// Every later phase just checked done, and nothing has
				// changed since: no need to check them all again.
				c.Log.Step(p.Name(), "", 0, "skipped: nothing to change")
				for _, rest := range list[i+1:] {
					c.Log.Step(rest.Name(), "", 0, "already done")
				}
				break
			}
			c.Log.Detail(p.Name(), "", "later phases have work: "+strings.Join(pending, "; "))
		}
		t0 := time.Now()
		done, why, err := p.Check(ctx, c)
		if err != nil {
			return fmt.Errorf("phase %s: %w", p.Name(), err)
		}
		if done && p.Name() != "preflight" {
			c.Log.Step(p.Name(), "", time.Since(t0), "already done")
			continue
		}
		if why != "" {
			c.Log.Detail(p.Name(), "", "to do: "+why)
		}
		if err := p.Apply(ctx, c); err != nil {
			return fmt.Errorf("phase %s: %w\n(re-run the same command to resume: every phase picks up where it stopped)", p.Name(), err)
		}
		c.Log.Step(p.Name(), "", time.Since(t0), "done")
	}
	c.Log.Step("promote", "", time.Since(start), "finished")
	return nil
}

// pendingAfter checks later phases without changing anything. A phase whose
// check cannot tell yet (it depends on an earlier one) counts as pending.
func pendingAfter(ctx context.Context, c *Cluster, rest []Phase) ([]string, error) {
	var pending []string
	for _, p := range rest {
		done, why, err := p.Check(ctx, c)
		if err != nil || !done {
			if why == "" && err != nil {
				why = err.Error()
			}
			pending = append(pending, p.Name()+": "+why)
		}
	}
	return pending, nil
}
