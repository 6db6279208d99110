package phases

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/controlplane"
)

// Mark labels and taints the new masters the way kubeadm marks a control
// plane, so workloads leave them alone and tools recognise them.
type Mark struct{}

func (Mark) Name() string { return "mark" }
func (Mark) Description() string {
	return "control-plane label and NoSchedule taint on the new masters"
}
func (Mark) Uses() Uses { return 0 }

// Plan reads nothing: Discover has just read every Node.
func (Mark) Plan(_ context.Context, c *Cluster) (*Work, error) {
	w := &Work{}
	for _, n := range c.New {
		if controlplane.Marked(n) {
			continue
		}
		name := n.Name
		w.add(Step{
			Node: name, What: "label and taint " + controlplane.Label,
			Details: []string{"label " + controlplane.Label + "=, " + controlplane.ExcludeFromLBLabel + "=; taint " + controlplane.Label + ":NoSchedule"},
			Do:      func(ctx context.Context) error { return markNode(ctx, c, name) },
		})
	}
	return w, nil
}

func markNode(ctx context.Context, c *Cluster, name string) error {
	// Labelled, a node counts as a control plane for every later run (LB
	// backends, certificates): only one with its own started etcd member.
	if err := c.checkLocalMember(ctx, c.Nodes[name]); err != nil {
		return err
	}
	n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if controlplane.Marked(controlplane.NodeOf(*n)) {
		return nil
	}
	// Get-modify-Update with the resourceVersion: a conflicting writer
	// (the kubelet) makes this fail rather than be overwritten.
	n = n.DeepCopy()
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Labels[controlplane.Label] = ""
	// kubeadm also excludes control planes from external LBs.
	n.Labels[controlplane.ExcludeFromLBLabel] = ""
	taint := controlplane.Taint()
	has := false
	for _, t := range n.Spec.Taints {
		has = has || t.MatchTaint(&taint)
	}
	if !has {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: taint.Key, Effect: taint.Effect})
	}
	_, err = c.Kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
	return err
}
