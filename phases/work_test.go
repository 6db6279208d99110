package phases

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWorkEmpty(t *testing.T) {
	t.Parallel()
	do := func(context.Context) error { return nil }
	for _, tt := range []struct {
		name  string
		w     *Work
		empty bool
	}{
		{"nil", nil, true},
		{"no steps", &Work{}, true},
		{"waits only", &Work{Steps: []Step{{What: "ready", Wait: true, Do: do}, {What: "rolled", Wait: true, Do: do}}}, true},
		{"a wait after work", &Work{Steps: []Step{{What: "write", Do: do}, {What: "ready", Wait: true, Do: do}}}, false},
		{"work", &Work{Steps: []Step{{What: "write", Do: do}}}, false},
	} {
		if got := tt.w.Empty(); got != tt.empty {
			t.Errorf("%s: Empty() = %v", tt.name, got)
		}
	}
}

// recorder is a step list whose Do calls go to a shared, locked log.
type recorder struct {
	mu  sync.Mutex
	log []string
}

func (r *recorder) step(nodeName, what string, err error) Step {
	return Step{Node: nodeName, What: what, Details: []string{"about " + what}, Do: func(context.Context) error {
		r.mu.Lock()
		r.log = append(r.log, stepName(Step{Node: nodeName, What: what}))
		r.mu.Unlock()
		return err
	}}
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// TestWorkApplyInOrder: without PerNode every step runs in order, the
// first failure stops the rest, and the error names the node (when there
// is one) and the step; progress shows each step, its details in the log.
func TestWorkApplyInOrder(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tt := range []struct {
		name    string
		failing Step // replaces the second step
		err     string
	}{
		{"a node's step fails", Step{Node: "wudang", What: "restart"}, "node wudang: restart: boom"},
		{"a cluster step fails", Step{What: "update kubeadm-config"}, "update kubeadm-config: boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &recorder{}
			var console, detail bytes.Buffer
			w := &Work{Steps: []Step{r.step("emei", "write", nil), r.step(tt.failing.Node, tt.failing.What, boom), r.step("emei", "after", nil)}}
			err := w.apply(t.Context(), "p", NewProgress(&console, &detail))
			if err == nil || err.Error() != tt.err || !errors.Is(err, boom) {
				t.Fatalf("apply = %v, want %q wrapping the step's error", err, tt.err)
			}
			if got, want := r.got(), []string{"emei: write", stepName(tt.failing)}; !slices.Equal(got, want) {
				t.Errorf("ran %q, want %q", got, want)
			}
			mustContain(t, console.String(), "[p] emei: write (", "[p] "+stepName(tt.failing)+": FAILED (")
			mustContain(t, detail.String(), "[p] emei: start: write", "[p] emei: about write", "[p] "+stepName(tt.failing)+": FAILED (0s): boom")
			if strings.Contains(console.String(), "about write") {
				t.Error("details went to the console")
			}
		})
	}
}

// TestWorkApplyPerNode: with PerNode the nodes run at the same time, each
// node's steps in order; a failing node stops its own steps only, and the
// error names it.
func TestWorkApplyPerNode(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	emeiStarted, wudangStarted := make(chan struct{}), make(chan struct{})
	meet := func(mine, other chan struct{}) func(context.Context) error {
		return func(ctx context.Context) error {
			close(mine)
			select {
			case <-other:
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("the other node's first step never ran alongside")
			}
		}
	}
	w := &Work{PerNode: true, Steps: []Step{
		{Node: "emei", What: "meet", Do: meet(emeiStarted, wudangStarted)},
		r.step("emei", "second", errors.New("disk full")),
		r.step("emei", "third", nil),
		{Node: "wudang", What: "meet", Do: meet(wudangStarted, emeiStarted)},
		r.step("wudang", "second", nil),
		r.step("wudang", "third", nil),
	}}
	err := w.apply(t.Context(), "certs", NewProgress(&bytes.Buffer{}, &bytes.Buffer{}))
	if err == nil || !strings.Contains(err.Error(), "node emei: second: disk full") || strings.Contains(err.Error(), "never ran alongside") {
		t.Fatalf("apply = %v", err)
	}
	got := r.got()
	if slices.Contains(got, "emei: third") {
		t.Error("emei's third step ran after its second failed")
	}
	if i, j := slices.Index(got, "wudang: second"), slices.Index(got, "wudang: third"); i < 0 || j < i {
		t.Errorf("wudang's steps %q: want both, in order, despite emei's failure", got)
	}
}

// TestPrintPlans: what a dry run prints, exactly: a count, then each
// step as progress shows it, its details indented; plans of waits only
// print nothing, and all of them empty is "nothing to do".
func TestPrintPlans(t *testing.T) {
	t.Parallel()
	do := func(context.Context) error { return nil }
	list := []Phase{Certs{}, Etcd{}, ClusterConfig{}}
	plans := []*Work{
		{PerNode: true, Steps: []Step{{Node: "emei", What: "2 files (ca.key, sa.key)", Details: []string{"ca.key: copy\n(private key content changed, 1679 bytes)\n", "sa.key: copy"}, Do: do}}},
		{Steps: []Step{{Node: "emei", What: "etcd member started", Wait: true, Do: do}}},
		{Steps: []Step{{What: "kube-system/kubeadm-config", Details: []string{"--- a\n+++ b\n"}, Do: do}, {What: "cluster-info re-signed", Wait: true, Do: do}}},
	}
	var b bytes.Buffer
	printPlans(&b, list, plans)
	want := "dry run: 3 step(s); nothing was changed\n" +
		"[certs] emei: 2 files (ca.key, sa.key)\n" +
		"    ca.key: copy\n    (private key content changed, 1679 bytes)\n" +
		"    sa.key: copy\n" +
		"[cluster-config] kube-system/kubeadm-config\n" +
		"    --- a\n    +++ b\n" +
		"[cluster-config] cluster-info re-signed\n"
	if b.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printPlans(&b, list, []*Work{{}, plans[1], nil})
	if b.String() != "dry run: nothing to do\n" {
		t.Errorf("converged: %q", b.String())
	}
}

// TestWaitFor: the wait polls until the condition holds, logs each new
// state once, and when it gives up says how long it waited and what it
// last saw, telling a timeout from an interruption.
func TestWaitFor(t *testing.T) {
	t.Parallel()
	t.Run("until true", func(t *testing.T) {
		t.Parallel()
		var detail bytes.Buffer
		answers := []struct {
			ok    bool
			state string
			err   error
		}{{false, "starting", nil}, {false, "starting", nil}, {false, "", errors.New("connection refused")}, {true, "", nil}}
		n := 0
		err := waitFor(t.Context(), NewProgress(&bytes.Buffer{}, &detail), "p", "emei", "it", time.Minute, func(context.Context) (bool, string, error) {
			a := answers[n]
			n++
			return a.ok, a.state, a.err
		})
		if err != nil || n != len(answers) {
			t.Fatalf("waitFor = %v after %d polls", err, n)
		}
		if c := strings.Count(detail.String(), "[p] emei: waiting for it: starting\n"); c != 1 {
			t.Errorf("state logged %d times:\n%s", c, detail.String())
		}
		mustContain(t, detail.String(), "[p] emei: waiting for it: connection refused\n")
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		err := waitFor(t.Context(), NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), "p", "", "it", 300*time.Millisecond, func(context.Context) (bool, string, error) {
			return false, "stuck", nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "timed out after ") || !strings.HasSuffix(err.Error(), " waiting for it (last state: stuck)") {
			t.Errorf("waitFor = %v", err)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		err := waitFor(ctx, NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), "p", "", "it", time.Minute, func(context.Context) (bool, string, error) {
			return false, "stuck", nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "interrupted after ") {
			t.Errorf("waitFor = %v", err)
		}
	})
}

func TestPollInterval(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ elapsed, want time.Duration }{
		{0, 250 * time.Millisecond}, {12 * time.Second, 250 * time.Millisecond},
		{20 * time.Second, time.Second}, {59 * time.Second, time.Second},
		{time.Minute, 2 * time.Second}, {10 * time.Minute, 2 * time.Second},
	} {
		if got := pollInterval(tt.elapsed); got != tt.want {
			t.Errorf("pollInterval(%s) = %s, want %s", tt.elapsed, got, tt.want)
		}
	}
}

func TestForEach(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[int]bool{}
	err := forEach(5, func(i int) error {
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		if i%2 == 1 {
			return errors.New("odd " + string(rune('0'+i)))
		}
		return nil
	})
	if len(seen) != 5 {
		t.Errorf("ran %v", seen)
	}
	if err == nil || !strings.Contains(err.Error(), "odd 1") || !strings.Contains(err.Error(), "odd 3") {
		t.Errorf("forEach = %v, want every error", err)
	}
	if err := forEach(0, func(int) error { return errors.New("never") }); err != nil {
		t.Error(err)
	}
}
