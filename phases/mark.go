package phases

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mark labels and taints the new masters the way kubeadm marks a control
// plane, so workloads leave them alone and tools recognise them.
type Mark struct{}

func (Mark) Name() string { return "mark" }
func (Mark) Description() string {
	return "control-plane label and NoSchedule taint on the new masters"
}

func controlPlaneTaint() corev1.Taint {
	return corev1.Taint{Key: ControlPlaneLabel, Effect: corev1.TaintEffectNoSchedule}
}

func marked(n *corev1.Node) bool {
	if _, ok := n.Labels[ControlPlaneLabel]; !ok {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.MatchTaint(&[]corev1.Taint{controlPlaneTaint()}[0]) {
			return true
		}
	}
	return false
}

func (Mark) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	var todo []string
	for _, n := range c.New {
		node, err := c.Kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if !marked(node) {
			todo = append(todo, n.Name)
		}
	}
	return len(todo) == 0, strings.Join(todo, ", "), nil
}

func (Mark) Apply(ctx context.Context, c *Cluster) error {
	for _, n := range c.New {
		node, err := c.Kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if marked(node) {
			continue
		}
		if err := c.change("mark", n.Name, "labelled and tainted "+ControlPlaneLabel, "", func() error {
			// Get-modify-Update with the resourceVersion: a conflicting
			// writer (the kubelet) makes this fail rather than be overwritten.
			node = node.DeepCopy()
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			node.Labels[ControlPlaneLabel] = ""
			// kubeadm also excludes control planes from external LBs.
			node.Labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
			if !marked(node) {
				node.Spec.Taints = append(node.Spec.Taints, controlPlaneTaint())
			}
			_, err := c.Kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{})
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}
