package phases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// Run runs phases in order. Preflight always runs first, whatever is asked,
// because nothing may change before bad input is refused. Then every phase
// is planned, all at once (plans only read). A dry run prints the plans and
// stops; otherwise, when some plan has work, a backup is taken and the
// plans are applied in order. A plan is made again before it is applied only
// when a phase it depends on has just changed something.
func Run(ctx context.Context, c *Cluster, list []Phase, out io.Writer) error {
	start := time.Now()
	t0 := time.Now()
	// The files every plan reads come in while preflight probes the nodes.
	done := make(chan struct{})
	c.keys = &certs.KeyPool{}
	// Keys not taken by the end of the run (a dry run, a failed
	// preflight) are not made.
	keysCtx, stopKeys := context.WithCancel(ctx)
	defer stopKeys()
	go func() {
		defer close(done)
		prefetch(ctx, c, list)
		// The keys the plans will make are made while preflight waits on
		// the nodes: pure CPU, no host is used after done.
		if alg, n := keysAhead(ctx, c, list); n > 0 {
			c.Log.Detail("plan", "", fmt.Sprintf("making %d %s keys ahead, while preflight runs", n, alg))
			c.keys.Fill(keysCtx, alg, n)
		}
	}()
	c.prefetched = done
	c.needsImages = slices.ContainsFunc(list, func(p Phase) bool { return p.Name() == "etcd" || p.Name() == "control-plane" })
	c.apiserversFollow = slices.ContainsFunc(list, func(p Phase) bool { return p.Name() == "control-plane" })
	if err := Preflight(ctx, c); err != nil {
		<-done // the prefetch uses the hosts the caller closes next
		return err
	}
	c.Log.Step("preflight", "", time.Since(t0), fmt.Sprintf("first master %s, promoting %s, endpoint %s", c.First.Name, names(c.New), endpointOrNone(c)))

	t0 = time.Now()
	plans := make([]*Work, len(list))
	if err := forEach(len(list), func(i int) error {
		t0 := time.Now()
		w, err := list[i].Plan(ctx, c)
		if err != nil {
			return fmt.Errorf("phase %s: %w", list[i].Name(), err)
		}
		plans[i] = w
		c.Log.Detail(list[i].Name(), "", fmt.Sprintf("planned in %s: %d step(s)", time.Since(t0).Round(time.Millisecond), len(w.Steps)))
		return nil
	}); err != nil {
		if strings.Contains(err.Error(), "nothing was changed") {
			return err
		}
		return fmt.Errorf("%w\n(nothing was changed)", err)
	}
	var pending []string
	for i, w := range plans {
		if !w.Empty() {
			pending = append(pending, list[i].Name())
		}
	}
	if len(pending) == 0 {
		c.Log.Step("plan", "", time.Since(t0), "nothing to do: every phase is done")
	} else {
		c.Log.Step("plan", "", time.Since(t0), "work in "+strings.Join(pending, ", "))
	}
	if c.Opts.DryRun {
		printPlans(out, list, plans)
		for _, name := range keys(c.skipped) {
			fmt.Fprintf(out, "note: worker %s is not reached (%v): a real run would leave it for a re-run\n", name, c.skipped[name])
		}
		return nil
	}
	if len(pending) == 0 {
		return leftover(c, nil)
	}
	if c.Opts.SkipBackup {
		c.Log.Step("backup", "", 0, "skipped as asked: no snapshot of this run")
		return applyAll(ctx, c, list, plans, start)
	}
	rec, err := Backup(ctx, c)
	if err != nil {
		return fmt.Errorf("backup: %w\n(nothing was changed)", err)
	}
	c.Log.OnApplied(rec.Applied)
	err = applyAll(ctx, c, list, plans, start)
	c.Log.OnApplied(nil)
	rec.Finish(err)
	if e := rec.Err(); e != nil {
		c.Log.Step("backup", "", 0, "could not record this run's changes in "+rec.Dir()+": "+e.Error())
	}
	return err
}

// applyAll applies the plans in order, planning a dependent phase again
// when one it depends on changed something.
func applyAll(ctx context.Context, c *Cluster, list []Phase, plans []*Work, start time.Time) error {
	changed := map[string]bool{}
	var left []string
	for i := 0; i < len(list); i++ {
		p := list[i]
		w := plans[i]
		if d, ok := p.(dependent); ok && anyOf(changed, d.DependsOn()) {
			var err error
			if w, err = p.Plan(ctx, c); err != nil {
				return fmt.Errorf("phase %s: %w\n%s", p.Name(), err, resumeHint)
			}
		}
		if w.Empty() {
			c.Log.Step(p.Name(), "", 0, "already done")
			continue
		}
		if i+1 < len(list) && follows(list[i+1], p, plans[i+1], changed) {
			next, nw := list[i+1], plans[i+1]
			if err := overlap(ctx, c.Log, p.Name(), w, next.Name(), nw); err != nil {
				return err
			}
			changed[p.Name()], changed[next.Name()] = true, true
			left = append(append(left, w.Left...), nw.Left...)
			i++
			continue
		}
		t0 := time.Now()
		if err := w.apply(ctx, p.Name(), c.Log); err != nil {
			return fmt.Errorf("phase %s: %w\n%s", p.Name(), err, resumeHint)
		}
		changed[p.Name()] = true
		left = append(left, w.Left...)
		c.Log.Step(p.Name(), "", time.Since(t0), "done")
	}
	c.Log.Step("promote", "", time.Since(start), "finished")
	return leftover(c, left)
}

const resumeHint = "(re-run the same command to resume: every phase picks up where it stopped)"

// follows reports whether next may run node by node alongside p: it says
// it follows p, its plan is per node with work in it, and nothing it
// depends on has changed since it was planned (p will, so p counts).
func follows(next, p Phase, plan *Work, changed map[string]bool) bool {
	f, ok := next.(follower)
	if !ok || f.Follows() != p.Name() || plan.Empty() || !plan.PerNode {
		return false
	}
	if d, ok := next.(dependent); ok && (anyOf(changed, d.DependsOn()) || slices.Contains(d.DependsOn(), p.Name())) {
		return false
	}
	return true
}

// overlap applies first's work and, alongside, second's per node: a
// node's steps of second start once first's Gate step for that node is
// done, or at once when first has none there. When first fails, second
// starts on no further node, its waits stop (an apiserver waiting on an
// etcd that just failed would hold the error back for minutes; a re-run
// waits again) and a write it already started is let finish before both
// errors are returned. The plans themselves are left as they were.
func overlap(ctx context.Context, log *Progress, first string, fw *Work, second string, sw *Work) error {
	firstDone := make(chan struct{})
	var firstErr error
	gates := map[string]chan struct{}{}
	f := &Work{PerNode: fw.PerNode, Steps: slices.Clone(fw.Steps)}
	for k := range f.Steps {
		st := &f.Steps[k]
		if !st.Gate || st.Node == "" {
			continue
		}
		open := make(chan struct{})
		gates[st.Node] = open
		do := st.Do
		st.Do = func(ctx context.Context) error {
			if err := do(ctx); err != nil {
				return err
			}
			close(open)
			return nil
		}
	}
	outer := ctx
	waitCtx, stopWaits := context.WithCancel(ctx)
	defer stopWaits()
	sec := &Work{PerNode: true, Steps: slices.Clone(sw.Steps)}
	for k := range sec.Steps {
		st := &sec.Steps[k]
		if !st.Wait {
			continue
		}
		do := st.Do
		st.Do = func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(waitCtx, cancel)()
			err := do(ctx)
			if err != nil && ctx.Err() != nil && waitCtx.Err() != nil && outer.Err() == nil {
				return fmt.Errorf("stopped waiting: phase %s failed (%w)", first, err)
			}
			return err
		}
	}
	var mu sync.Mutex
	var skipped []string
	sec.gate = func(node string) bool {
		open, ok := gates[node]
		if !ok {
			return true
		}
		select {
		case <-open:
			return true
		case <-firstDone:
		}
		select {
		case <-open:
			return true
		default:
		}
		mu.Lock()
		skipped = append(skipped, node)
		mu.Unlock()
		log.Detail(second, node, "not started: phase "+first+" stopped before this node was ready for it")
		return false
	}
	var secondErr error
	var firstTook, secondTook time.Duration
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Go(func() {
		defer close(firstDone)
		firstErr = f.apply(ctx, first, log)
		firstTook = time.Since(t0)
		if firstErr != nil {
			stopWaits()
		}
	})
	wg.Go(func() {
		secondErr = sec.apply(ctx, second, log)
		secondTook = time.Since(t0)
	})
	wg.Wait()
	fw.Left, sw.Left = f.Left, sec.Left
	if firstErr == nil && secondErr == nil && len(skipped) > 0 {
		// Only an Optional Gate step that failed leaves a gate shut with
		// first done; its node's second phase did not run.
		slices.Sort(skipped)
		secondErr = fmt.Errorf("not started on %s: phase %s left them short of it", strings.Join(skipped, ", "), first)
	}
	if firstErr == nil {
		log.Step(first, "", firstTook, "done")
		if secondErr == nil {
			log.Step(second, "", secondTook, "done (alongside "+first+")")
		}
	}
	var errs []error
	if firstErr != nil {
		errs = append(errs, fmt.Errorf("phase %s: %w", first, firstErr))
	}
	if secondErr != nil {
		errs = append(errs, fmt.Errorf("phase %s: %w", second, secondErr))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w\n%s", errors.Join(errs...), resumeHint)
	}
	return nil
}

func anyOf(set map[string]bool, names []string) bool {
	for _, n := range names {
		if set[n] {
			return true
		}
	}
	return false
}

func endpointOrNone(c *Cluster) string {
	if !c.HasEndpoint() {
		return "(not used by this phase)"
	}
	return c.Opts.Endpoint
}

// printPlans prints what a dry run would change; "nothing to do" is the
// answer after a converged promote.
func printPlans(w io.Writer, list []Phase, plans []*Work) {
	n := 0
	for _, p := range plans {
		if !p.Empty() {
			n += len(p.Steps)
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "dry run: nothing to do")
		return
	}
	fmt.Fprintf(w, "dry run: %d step(s); nothing was changed\n", n)
	for i, p := range plans {
		if p.Empty() {
			continue
		}
		for _, s := range p.Steps {
			fmt.Fprintln(w, line(list[i].Name(), s.Node, s.What, 0))
			for _, d := range s.Details {
				fmt.Fprintln(w, "    "+strings.ReplaceAll(strings.TrimRight(d, "\n"), "\n", "\n    "))
			}
		}
	}
}

// Execute is one run of `haadm promote` or `haadm phase X`: discover the
// cluster through the API, connect to every node it involves, run the
// phases, and tell the operator where the result is.
func Execute(ctx context.Context, kube kubernetes.Interface, dial node.DialFunc, opts Options, list []Phase, log *Progress, out io.Writer) error {
	uses := UsesOf(list)
	c, err := Discover(ctx, kube, opts, uses&UsesEndpoint != 0)
	if err != nil {
		return err
	}
	c.Log = log
	defer c.Close()
	if c.lbNote != "" {
		log.Step("lb", "", 0, c.lbNote)
	}
	want := c.HostNames()
	t0 := time.Now()
	hosts, err := node.DialAll(ctx, want, 20*time.Second, dial)
	if err != nil && !c.skipWorkers(err) {
		_ = node.CloseAll(hosts)
		return fmt.Errorf("%w\nnothing was changed; haadm needs SSH to every control-plane and load-balancer node (check --ssh-config and known_hosts)", err)
	}
	counted := map[string]*node.Counting{}
	c.cached = map[string]*node.Cached{}
	for name, h := range hosts {
		counted[name] = node.NewCounting(h)
		c.cached[name] = node.NewCached(counted[name])
		c.Hosts[name] = c.cached[name]
	}
	log.Step("connect", "", time.Since(t0), "ssh to "+strings.Join(want, ", "))
	defer logRoundTrips(log, counted)
	if err := Run(ctx, c, list, out); err != nil {
		return err
	}
	if opts.DryRun || len(list) < len(All()) {
		return nil
	}
	fmt.Fprintf(out, "control plane: %s; endpoint %s\n", names(c.ControlPlanes()), c.EndpointURL())
	if c.Opts.LBMode == lb.ModeNodeLocal {
		fmt.Fprintf(out, "Every node reaches the API through its own nginx at %s; from elsewhere use any master, e.g. %s\n", c.EndpointURL(), c.LocalAPIServer(c.New[0]))
	} else {
		fmt.Fprintf(out, "Point your kubeconfig at the endpoint: kubectl config set-cluster %s --server=%s\n", c.Facts.ClusterName, c.EndpointURL())
	}
	return nil
}

// logRoundTrips says what the run cost in SSH round trips, per node.
func logRoundTrips(log *Progress, counted map[string]*node.Counting) {
	var total, tunnels int64
	var per []string
	for _, name := range keys(counted) {
		n := counted[name].RoundTrips()
		total += n
		tunnels += counted[name].Tunnels()
		per = append(per, fmt.Sprintf("%s %d", name, n))
	}
	log.Step("ssh", "", 0, fmt.Sprintf("%d round trips (%s), %d tunnels", total, strings.Join(per, ", "), tunnels))
}

// reader is a phase that says which files its plan reads on which node.
type reader interface {
	Reads(c *Cluster) map[string][]string
}

// keyMaker is a phase whose plan makes a private key for each of a new
// master's NewKeyPaths that is missing (keysAhead counts them).
type keyMaker interface {
	NewKeyPaths() []string
}

// prefetch reads, in one round trip per node and all nodes at once, every
// file the first master is a source of and every file the phases' plans
// will read, so that planning costs no further round trips. A failure only
// costs the speed: the plans then read for themselves, and preflight
// reports the node.
func prefetch(ctx context.Context, c *Cluster, list []Phase) {
	if len(c.cached) == 0 {
		return
	}
	paths := map[string][]string{c.First.Name: sourcePaths()}
	for _, p := range list {
		if r, ok := p.(reader); ok {
			for n, ps := range r.Reads(c) {
				paths[n] = append(paths[n], ps...)
			}
		}
	}
	names := keys(paths)
	_ = forEach(len(names), func(i int) error {
		h, ok := c.cached[names[i]]
		if !ok {
			return nil
		}
		if err := h.Prefetch(ctx, slices.Compact(slices.Sorted(slices.Values(paths[names[i]])))); err != nil {
			c.Log.Detail("prefetch", names[i], err.Error())
		}
		return nil
	})
}

// keysAhead is how many new private keys the plans of list will likely
// make, and of which algorithm: one for each certificate and kubeconfig
// of a new master that the prefetch did not find. Only speed depends on
// it (KeyPool makes any further key when asked), so whatever the prefetch
// did not read counts as there.
func keysAhead(ctx context.Context, c *Cluster, list []Phase) (string, int) {
	var paths []string
	for _, p := range list {
		if k, ok := p.(keyMaker); ok {
			paths = append(paths, k.NewKeyPaths()...)
		}
	}
	if len(paths) == 0 {
		return "", 0
	}
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return "", 0
	}
	n := 0
	for _, m := range c.New {
		h, ok := c.cached[m.Name]
		if !ok {
			continue
		}
		have, ok := h.Peek(paths)
		if !ok {
			continue
		}
		for _, p := range paths {
			if _, ok := have[p]; !ok {
				n++
			}
		}
	}
	return keyAlgorithm(src.ca.Cert), n
}

// leftover is the run's error when workers were left out or failed: the
// control plane is done, the rest waits for a re-run.
func leftover(c *Cluster, left []string) error {
	for _, name := range keys(c.skipped) {
		left = append(left, fmt.Sprintf("node %s: not reached: %v", name, c.skipped[name]))
	}
	if len(left) == 0 {
		return nil
	}
	return fmt.Errorf("the control plane is done, but %d worker(s) are left for a re-run (fix them, then run the same command again):\n  - %s", len(left), strings.Join(left, "\n  - "))
}

// skipWorkers leaves out of the run the workers SSH could not reach, when
// those are all the unreachable nodes: a worker that is down must not hold
// up the control plane. It reports whether it did.
func (c *Cluster) skipWorkers(err error) bool {
	var ue *node.UnreachableError
	if !errors.As(err, &ue) {
		return false
	}
	for name := range ue.Errs {
		if !slices.ContainsFunc(c.Others, func(n NodeInfo) bool { return n.Name == name }) || c.Opts.LBMode == lb.ModeExternal && c.Opts.LBNode == name {
			return false
		}
	}
	c.skipped = map[string]error{}
	for name, e := range ue.Errs {
		c.skipped[name] = e
		c.Others = slices.DeleteFunc(c.Others, func(n NodeInfo) bool { return n.Name == name })
		c.Log.Step("connect", name, 0, "unreachable, left for a re-run: "+e.Error())
	}
	return true
}
