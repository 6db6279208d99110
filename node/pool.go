package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// DialFunc connects to the node called name.
type DialFunc func(ctx context.Context, name string) (Host, error)

// SSHDialer returns a DialFunc that dials with DialSSH and opts.
func SSHDialer(opts SSHOptions) DialFunc {
	return func(ctx context.Context, name string) (Host, error) {
		h, err := DialSSH(ctx, name, opts)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
}

// UnreachableError lists the nodes DialAll could not reach and why.
type UnreachableError struct {
	// Errs maps node name to its dial error.
	Errs  map[string]error
	Total int
}

func (e *UnreachableError) Error() string {
	names := e.Nodes()
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d nodes unreachable: %s", len(names), e.Total, strings.Join(names, ", "))
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %s: %v", n, e.Errs[n])
	}
	return b.String()
}

// Nodes returns the unreachable node names, sorted.
func (e *UnreachableError) Nodes() []string {
	names := make([]string, 0, len(e.Errs))
	for n := range e.Errs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (e *UnreachableError) Unwrap() []error {
	var errs []error
	for _, n := range e.Nodes() {
		errs = append(errs, e.Errs[n])
	}
	return errs
}

// DialAll dials every node in parallel, each bounded by timeout (zero: no
// bound beyond ctx), so one dead node costs at most timeout and does not
// delay the others. It returns the nodes it reached; when some were not
// reachable the error is an *UnreachableError naming each of them, and the
// reached hosts are still returned: the caller closes them (CloseAll).
func DialAll(ctx context.Context, names []string, timeout time.Duration, dial DialFunc) (map[string]Host, error) {
	type result struct {
		name string
		host Host
		err  error
	}
	uniq := map[string]bool{}
	results := make(chan result)
	var wg sync.WaitGroup
	for _, name := range names {
		if uniq[name] {
			continue
		}
		uniq[name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := DialBounded(ctx, name, timeout, dialGrace, dial)
			results <- result{name, h, err}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	hosts := map[string]Host{}
	unreachable := &UnreachableError{Errs: map[string]error{}, Total: len(uniq)}
	for r := range results {
		if r.err != nil {
			unreachable.Errs[r.name] = r.err
			continue
		}
		hosts[r.name] = r.host
	}
	if len(unreachable.Errs) > 0 {
		return hosts, unreachable
	}
	return hosts, nil
}

// dialGrace is how long a dial may take to return after its context ended;
// its own error says more than ours (handshake stage, address).
const dialGrace = time.Second

// DialBounded dials one node and returns within timeout plus grace even
// if dial ignores its context; a host that still connects later is
// closed. The grace lets a dial that is being cancelled say why (the
// handshake stage, the address), which says more than our timeout would;
// a caller that must answer on time passes zero.
func DialBounded(ctx context.Context, name string, timeout, grace time.Duration, dial DialFunc) (Host, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	done := make(chan dialResult, 1)
	go func() {
		h, err := dial(ctx, name)
		if err == nil && h == nil {
			err = errors.New("dial returned no host")
		}
		done <- dialResult{h, err}
	}()
	// take is the dial's own answer, unless the time ran out: a host that
	// connected just then is closed (the others were told this node is
	// unreachable), and the context's bare error says less than ours.
	take := func(r dialResult) (Host, error, bool) {
		if ctx.Err() != nil {
			if r.err == nil {
				r.host.Close()
				return nil, nil, false
			}
			if r.err == context.DeadlineExceeded || r.err == context.Canceled {
				return nil, nil, false
			}
		}
		return r.host, r.err, true
	}
	select {
	case r := <-done:
		if h, err, ok := take(r); ok {
			return h, err
		}
		return nil, dialTimeout(ctx, name, timeout)
	case <-ctx.Done():
	}
	if grace > 0 {
		select {
		case r := <-done:
			if h, err, ok := take(r); ok {
				return h, err
			}
			return nil, dialTimeout(ctx, name, timeout)
		case <-time.After(grace):
		}
	}
	go closeLate(done)
	return nil, dialTimeout(ctx, name, timeout)
}

// dialTimeout is DialBounded's error once ctx has ended.
func dialTimeout(ctx context.Context, name string, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("node %s: no connection within %v: %w", name, timeout, ctx.Err())
	}
	return fmt.Errorf("node %s: %w", name, ctx.Err())
}

type dialResult struct {
	host Host
	err  error
}

// closeLate closes a host whose dial returned after DialBounded gave up.
func closeLate(done <-chan dialResult) {
	if r := <-done; r.err == nil {
		r.host.Close()
	}
}

// CloseAll closes every host and joins their errors.
func CloseAll(hosts map[string]Host) error {
	var errs []error
	for _, h := range hosts {
		if err := h.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
