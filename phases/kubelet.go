package phases

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/certs"
)

// Kubelet points every kubelet where it should talk: a master's at its own
// apiserver (kubeadm's default since 1.33), a worker's at the load balancer;
// then restarts it and waits until the node is Ready again. One node at a
// time: restarting every control-plane kubelet at once costs minutes of API.
type Kubelet struct{}

func (Kubelet) Name() string { return "kubelet" }
func (Kubelet) Description() string {
	return "repoint kubelet.conf (masters: local apiserver, workers: LB), restart, wait Ready"
}

const kubeletConf = "/etc/kubernetes/kubelet.conf"

type kubeletTask struct {
	node      NodeInfo
	have, out []byte
	server    string
}

func kubeletServer(c *Cluster, n NodeInfo, master bool) string {
	if master {
		return localAPIServer(n)
	}
	return c.EndpointURL()
}

func kubeletTasks(ctx context.Context, c *Cluster) ([]kubeletTask, error) {
	var tasks []kubeletTask
	add := func(n NodeInfo, master bool) error {
		if c.Host(n.Name) == nil {
			return fmt.Errorf("node %s: not connected", n.Name)
		}
		have, ok, err := c.readFile(ctx, n.Name, kubeletConf)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("node %s: %s is missing: is this node joined?", n.Name, kubeletConf)
		}
		want := kubeletServer(c, n, master)
		out, changed, err := certs.SetServer(have, want)
		if err != nil {
			return fmt.Errorf("node %s: %s: %w", n.Name, kubeletConf, err)
		}
		if changed {
			tasks = append(tasks, kubeletTask{node: n, have: have, out: out, server: want})
		}
		return nil
	}
	for _, m := range c.Masters() {
		if err := add(m, true); err != nil {
			return nil, err
		}
	}
	for _, w := range c.Others {
		if err := add(w, false); err != nil {
			return nil, err
		}
	}
	return tasks, nil
}

func (Kubelet) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	tasks, err := kubeletTasks(ctx, c)
	if err != nil {
		return false, "", err
	}
	var s []string
	for _, t := range tasks {
		s = append(s, t.node.Name+" -> "+t.server)
	}
	return len(tasks) == 0, strings.Join(s, ", "), nil
}

func (Kubelet) Apply(ctx context.Context, c *Cluster) error {
	tasks, err := kubeletTasks(ctx, c)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		h := c.Host(t.node.Name)
		if err := h.WriteFile(ctx, kubeletConf, t.out, 0o600); err != nil {
			return err
		}
		restarted := time.Now()
		if _, err := h.Run(ctx, "systemctl restart kubelet"); err != nil {
			return err
		}
		if !c.Opts.DryRun {
			c.Log.Step("kubelet", t.node.Name, time.Since(restarted), "kubelet.conf -> "+t.server+", kubelet restarted")
		}
		if err := c.wait(ctx, "kubelet", t.node.Name, "node Ready after kubelet restart", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
			return nodeReadySince(ctx, c, t.node.Name, restarted)
		}); err != nil {
			return err
		}
	}
	return nil
}

// nodeReadySince: Ready, and the node's Lease renewed by the restarted
// kubelet (the lease is renewed every 10 s; status only on change).
func nodeReadySince(ctx context.Context, c *Cluster, name string, since time.Time) (bool, string, error) {
	n, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type != corev1.NodeReady {
			continue
		}
		if cond.Status != corev1.ConditionTrue {
			return false, "Ready=" + string(cond.Status) + ": " + cond.Message, nil
		}
		lease, err := c.Kube.CoordinationV1().Leases("kube-node-lease").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(since) {
			return false, "the restarted kubelet has not renewed its lease yet", nil
		}
		return true, "", nil
	}
	return false, "no Ready condition", nil
}
