package phases

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/node"
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
func (Kubelet) Uses() Uses { return UsesEndpoint }

const kubeletConf = controlplane.KubernetesDir + "/" + controlplane.KubeletConf

// kubeletServer is where node n's kubelet must point.
func kubeletServer(c *Cluster, n NodeInfo, master bool) string {
	rule, _ := controlplane.KubeconfigTarget(controlplane.KubeletConf, master)
	if rule.Target == controlplane.TargetLocal {
		return c.LocalAPIServer(n)
	}
	return c.EndpointURL()
}

// Reads are every kubelet's kubeconfig.
func (Kubelet) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	for _, n := range append(c.ControlPlanes(), c.Others...) {
		out[n.Name] = []string{kubeletConf}
	}
	return out
}

func (Kubelet) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	type target struct {
		n      NodeInfo
		master bool
	}
	var targets []target
	for _, m := range c.ControlPlanes() {
		targets = append(targets, target{m, true})
	}
	for _, o := range c.Others {
		targets = append(targets, target{o, false})
	}
	w := &Work{}
	if err := w.planNodes(len(targets), func(i int) (*Step, error) {
		t := targets[i]
		s, err := planKubelet(ctx, c, t.n, t.master)
		if err != nil && !t.master {
			// A worker that cannot be read now is reported when the
			// workers' turn comes, not allowed to stop the control plane.
			perr := err
			s = &Step{Node: t.n.Name, What: "kubelet.conf: cannot be planned: " + perr.Error(), Do: func(context.Context) error { return perr }}
			err = nil
		}
		if s != nil && !t.master {
			// Workers after the control plane, several at once; one that
			// fails is left for a re-run.
			s.Batch, s.Optional = true, true
		}
		return s, err
	}); err != nil {
		return nil, err
	}
	return w, nil
}

func planKubelet(ctx context.Context, c *Cluster, n NodeInfo, master bool) (*Step, error) {
	h := c.Host(n.Name)
	if h == nil {
		return nil, fmt.Errorf("node %s: not connected", n.Name)
	}
	have, err := h.ReadFiles(ctx, []string{kubeletConf})
	if err != nil {
		return nil, err
	}
	cur, ok := have[kubeletConf]
	if !ok {
		return nil, fmt.Errorf("node %s: %s is missing: is this node joined?", n.Name, kubeletConf)
	}
	want := kubeletServer(c, n, master)
	out, changed, err := certs.SetServer(cur.Data, want)
	if err != nil {
		return nil, fmt.Errorf("node %s: %s: %w", n.Name, kubeletConf, err)
	}
	if !changed {
		return nil, nil
	}
	return &Step{
		Node: n.Name, What: "kubelet.conf -> " + want + ", kubelet restarted, node Ready",
		Details: []string{fileDetail(kubeletConf, have, out, "repoint"), "systemctl restart kubelet"},
		Do: func(ctx context.Context) error {
			// A kubelet pointed at an address it cannot reach leaves the
			// node NotReady: prove the way first, with the name it will use.
			addr, name := controlplane.HostPort(n.IP, c.APIServerPort()), n.IP
			if !master {
				addr, name = c.lbAddr(), c.EndpointHost
			}
			if ok, _, err := c.readyz(ctx, n.Name, addr, name); !ok {
				return fmt.Errorf("%s does not answer from this node (%v): kubelet.conf left as it was", want, err)
			}
			if err := h.WriteFiles(ctx, []node.File{{Path: kubeletConf, Data: out, Mode: modeOr(cur.Mode, 0o600), UID: cur.UID, GID: cur.GID}}); err != nil {
				return err
			}
			restarted := time.Now()
			if _, err := h.Run(ctx, "systemctl restart kubelet"); err != nil {
				return err
			}
			return waitFor(ctx, c.Log, "kubelet", n.Name, "node Ready after kubelet restart", 3*time.Minute, func(ctx context.Context) (bool, string, error) {
				return nodeReadySince(ctx, c, n.Name, restarted)
			})
		},
	}, nil
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
