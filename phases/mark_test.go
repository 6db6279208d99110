package phases

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/haadm/haadm/controlplane"
)

// TestMark labels and taints emei and wudang once; applying the same plan
// again makes no API call that changes anything, and the next run's plan is
// empty. Starting points cover nodes that already
// carry part of the marking.
func TestMark(t *testing.T) {
	tests := []struct {
		name string
		edit func(map[string]*corev1.Node)
		// updates are the nodes Apply must update.
		updates []string
	}{
		{name: "fresh workers", updates: []string{"emei", "wudang"}},
		{
			name: "emei has the taint already, wudang another taint",
			edit: func(n map[string]*corev1.Node) {
				n["emei"].Spec.Taints = []corev1.Taint{controlplane.Taint()}
				n["wudang"].Spec.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
			},
			updates: []string{"emei", "wudang"},
		},
		{
			name: "emei fully marked by hand",
			edit: func(n map[string]*corev1.Node) {
				n["emei"].Labels[controlplane.Label] = ""
				n["emei"].Spec.Taints = []corev1.Taint{controlplane.Taint()}
			},
			updates: []string{"wudang"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{NoEndpoint: true, EditNodes: tt.edit})
			f.useFakeEtcd(labVoters()...) // marking needs each node's own started member
			ctx := t.Context()
			orig := map[string]*corev1.Node{}
			for _, n := range []string{"emei", "wudang"} {
				orig[n], _ = f.kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			}
			var steps []string
			for _, n := range tt.updates {
				steps = append(steps, n+": label and taint "+controlplane.Label)
			}
			calls := len(f.kube.Actions())
			w := plan(t, ctx, Mark{}, f.c)
			done, why, err := check(ctx, Mark{}, f.c)
			if err != nil || done || why != strings.Join(steps, ", ") {
				t.Fatalf("plan before = %v, %q, %v; want not done, %q", done, why, err, strings.Join(steps, ", "))
			}
			if a := f.kube.Actions()[calls:]; len(a) != 0 {
				t.Errorf("Mark planned with API calls %v: Discover has just read every Node", a)
			}
			if err := w.apply(ctx, "mark", f.c.Log); err != nil {
				t.Fatal(err)
			}
			updated := f.mutations()
			var want []string
			for _, n := range tt.updates {
				want = append(want, "update nodes /"+n)
			}
			if !slices.Equal(updated, want) {
				t.Errorf("API changes = %v, want %v", updated, want)
			}
			for _, name := range []string{"emei", "wudang"} {
				n, err := f.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := n.Labels[controlplane.Label]; !ok {
					t.Errorf("%s: no %s label", name, controlplane.Label)
				}
				if slices.Contains(tt.updates, name) {
					if _, ok := n.Labels["node.kubernetes.io/exclude-from-external-load-balancers"]; !ok {
						t.Errorf("%s: not excluded from external load balancers", name)
					}
				}
				count := 0
				for _, tn := range n.Spec.Taints {
					if tn.Key == controlplane.Label && tn.Effect == corev1.TaintEffectNoSchedule {
						count++
					}
				}
				if count != 1 {
					t.Errorf("%s: %d control-plane taints, want 1: %v", name, count, n.Spec.Taints)
				}
				// Everything else about the node stays.
				for k, v := range orig[name].Labels {
					if n.Labels[k] != v {
						t.Errorf("%s: label %s changed", name, k)
					}
				}
				for _, tn := range orig[name].Spec.Taints {
					if !slices.ContainsFunc(n.Spec.Taints, func(x corev1.Taint) bool { return x.MatchTaint(&tn) && x.Value == tn.Value }) {
						t.Errorf("%s: taint %v lost", name, tn)
					}
				}
			}
			for _, n := range tt.updates {
				mustContain(t, f.console.String(), "[mark] "+n+": label and taint "+controlplane.Label+" (")
			}

			// The same plan again (a stale one): each node is read again
			// and left alone.
			before := len(f.mutations())
			if err := w.apply(ctx, "mark", f.c.Log); err != nil {
				t.Fatal(err)
			}
			if after := f.mutations(); len(after) != before {
				t.Errorf("second apply changed the API: %v", after[before:])
			}
			// The next run discovers the marked nodes: nothing to do.
			c, err := Discover(ctx, f.kube, f.c.Opts, false)
			if err != nil {
				t.Fatal(err)
			}
			if done, why, err := check(ctx, Mark{}, c); err != nil || !done {
				t.Fatalf("next run's plan = %v, %q, %v", done, why, err)
			}
		})
	}
}

// TestMarkPlan: the plan names the marking and leaves the nodes alone.
func TestMarkPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{NoEndpoint: true})
	f.useFakeEtcd(labVoters()...)
	w := plan(t, t.Context(), Mark{}, f.c)
	if m := f.mutations(); len(m) != 0 {
		t.Errorf("planning changed the API: %v", m)
	}
	want := []string{"emei: label and taint " + controlplane.Label, "wudang: label and taint " + controlplane.Label}
	if got := stepsOf(w); !slices.Equal(got, want) {
		t.Errorf("plan = %v, want %v", got, want)
	}
	mustContain(t, detailsOf(w, "emei"), "label "+controlplane.Label+"=, "+controlplane.ExcludeFromLBLabel+"=; taint "+controlplane.Label+":NoSchedule")
}

// TestMarkConflict: a node changed between the read and the update (the
// kubelet writes its status all the time) is not overwritten: the conflict
// fails the step, naming the node, and the re-run reads it again.
func TestMarkConflict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{NoEndpoint: true, Opts: Options{Nodes: []string{"emei"}}})
	f.useFakeEtcd(labVoters()...)
	f.kube.PrependReactor("update", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, "emei", errors.New("the object has been modified"))
	})
	err := apply(t.Context(), Mark{}, f.c)
	if err == nil || !apierrors.IsConflict(err) {
		t.Fatalf("apply = %v, want the conflict", err)
	}
	mustContain(t, err.Error(), "node emei: label and taint "+controlplane.Label+": ", "the object has been modified")
}

// TestMarkNeedsAStartedMember: `haadm phase mark` alone does not label a
// node whose etcd member has not started: labelled, it would count as a
// control plane for every later run.
func TestMarkNeedsAStartedMember(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{NoEndpoint: true})
	f.useFakeEtcd(voter(1, "shaolin", shaolinIP))
	err := apply(testCtx(t, 10*time.Second), Mark{}, f.c)
	if err == nil {
		t.Fatal("marked nodes without an etcd member")
	}
	mustContain(t, err.Error(), "node emei has no started etcd member", "haadm phase etcd")
	if m := f.mutations(); len(m) != 0 {
		t.Errorf("changed the API: %v", m)
	}
}
