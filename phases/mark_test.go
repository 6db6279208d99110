package phases

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestMark labels and taints emei and wudang once; a second Apply makes no
// API call that changes anything. Starting points cover nodes that already
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
				n["emei"].Spec.Taints = []corev1.Taint{controlPlaneTaint()}
				n["wudang"].Spec.Taints = []corev1.Taint{{Key: "gpu", Value: "true", Effect: corev1.TaintEffectNoSchedule}}
			},
			updates: []string{"emei", "wudang"},
		},
		{
			name: "emei fully marked by hand",
			edit: func(n map[string]*corev1.Node) {
				n["emei"].Labels[ControlPlaneLabel] = ""
				n["emei"].Spec.Taints = []corev1.Taint{controlPlaneTaint()}
			},
			updates: []string{"wudang"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, setup{EditNodes: tt.edit})
			ctx := t.Context()
			orig := map[string]*corev1.Node{}
			for _, n := range []string{"emei", "wudang"} {
				orig[n], _ = f.kube.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
			}
			done, why, err := Mark{}.Check(ctx, f.c)
			if err != nil || done || why != strings.Join(tt.updates, ", ") {
				t.Fatalf("Check before = %v, %q, %v; want not done, %q", done, why, err, strings.Join(tt.updates, ", "))
			}
			if err := (Mark{}).Apply(ctx, f.c); err != nil {
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
				if _, ok := n.Labels[ControlPlaneLabel]; !ok {
					t.Errorf("%s: no %s label", name, ControlPlaneLabel)
				}
				if slices.Contains(tt.updates, name) {
					if _, ok := n.Labels["node.kubernetes.io/exclude-from-external-load-balancers"]; !ok {
						t.Errorf("%s: not excluded from external load balancers", name)
					}
				}
				count := 0
				for _, tn := range n.Spec.Taints {
					if tn.Key == ControlPlaneLabel && tn.Effect == corev1.TaintEffectNoSchedule {
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
				mustContain(t, f.console.String(), "[mark] "+n+": labelled and tainted "+ControlPlaneLabel)
			}

			done, why, err = Mark{}.Check(ctx, f.c)
			if err != nil || !done {
				t.Fatalf("Check after = %v, %q, %v", done, why, err)
			}
			before := len(f.mutations())
			if err := (Mark{}).Apply(ctx, f.c); err != nil {
				t.Fatal(err)
			}
			if after := f.mutations(); len(after) != before {
				t.Errorf("second Apply changed the API: %v", after[before:])
			}
		})
	}
}

// TestMarkDryRun plans the marking and leaves the nodes alone.
func TestMarkDryRun(t *testing.T) {
	f := newFixture(t, setup{DryRun: true})
	if err := (Mark{}).Apply(t.Context(), f.c); err != nil {
		t.Fatal(err)
	}
	if m := f.mutations(); len(m) != 0 {
		t.Errorf("dry run changed the API: %v", m)
	}
	var plan []string
	for _, it := range f.c.Plan.Items {
		plan = append(plan, it.Node+": "+it.What)
	}
	want := []string{"emei: labelled and tainted " + ControlPlaneLabel, "wudang: labelled and tainted " + ControlPlaneLabel}
	if !slices.Equal(plan, want) {
		t.Errorf("plan = %v, want %v", plan, want)
	}
}
