package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/kubeadmcfg"
	"github.com/haadm/haadm/lock"
)

// Well-known names kubeadm uses.
const ()

// cmRef names a ConfigMap and the key of its kubeconfig.
type cmRef struct{ namespace, name, key string }

func (c cmRef) String() string { return c.namespace + "/" + c.name }

// clientConfigMaps are the ConfigMaps that tell clients where the API is.
func clientConfigMaps() []cmRef {
	return []cmRef{
		{"kube-system", "kube-proxy", "kubeconfig.conf"},
		{"kube-public", "cluster-info", "kubeconfig"},
	}
}

// leaseComponents are the components whose leader-election lease is shown.
func leaseComponents() []string { return []string{"kube-controller-manager", "kube-scheduler"} }

// apiData is what the Kubernetes API said, raw; the row builders turn it
// into the report.
type apiData struct {
	nodes    []controlplane.Node // sorted by name
	nodesErr error

	facts  *kubeadmcfg.Facts
	cfgErr error

	configMaps map[string]*corev1.ConfigMap // by cmRef.String()
	cmErrs     map[string]error

	leases    map[string]*coordinationv1.Lease
	leaseErrs map[string]error

	lock    *lock.Info // nil when not locked
	lockErr error

	// advertise maps node name to the host:port of its apiserver pod.
	advertise map[string]string
	podsErr   error
}

// fetchAPI makes every API call at once, each bounded by the probe timeout.
func fetchAPI(ctx context.Context, in *Inputs) *apiData {
	d := &apiData{
		configMaps: map[string]*corev1.ConfigMap{}, cmErrs: map[string]error{},
		leases: map[string]*coordinationv1.Lease{}, leaseErrs: map[string]error{},
		advertise: map[string]string{},
	}
	if in.Kube == nil {
		err := errors.New("no Kubernetes client")
		d.nodesErr, d.cfgErr, d.podsErr = err, err, err
		for _, c := range clientConfigMaps() {
			d.cmErrs[c.String()] = err
		}
		for _, l := range leaseComponents() {
			d.leaseErrs[l] = err
		}
		return d
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	call := func(f func(ctx context.Context)) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, in.timeout())
			defer cancel()
			f(ctx)
		})
	}
	core := in.Kube.CoreV1()
	call(func(ctx context.Context) {
		list, err := core.Nodes().List(ctx, metav1.ListOptions{})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			d.nodesErr = fmt.Errorf("list nodes: %w", err)
			return
		}
		d.nodes = controlplane.NodesOf(list.Items)
	})
	call(func(ctx context.Context) {
		f, err := readKubeadmConfig(ctx, in)
		mu.Lock()
		defer mu.Unlock()
		d.facts, d.cfgErr = f, err
	})
	for _, c := range clientConfigMaps() {
		call(func(ctx context.Context) {
			cm, err := core.ConfigMaps(c.namespace).Get(ctx, c.name, metav1.GetOptions{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				d.cmErrs[c.String()] = err
				return
			}
			d.configMaps[c.String()] = cm
		})
	}
	for _, l := range leaseComponents() {
		call(func(ctx context.Context) {
			lease, err := in.Kube.CoordinationV1().Leases("kube-system").Get(ctx, l, metav1.GetOptions{})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				d.leaseErrs[l] = err
				return
			}
			d.leases[l] = lease
		})
	}
	call(func(ctx context.Context) {
		info, err := lock.Peek(ctx, in.Kube)
		mu.Lock()
		defer mu.Unlock()
		d.lock, d.lockErr = info, err
	})
	call(func(ctx context.Context) {
		pods, err := core.Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: controlplane.APIServerSelector})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			d.podsErr = err
			return
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" {
				continue
			}
			d.advertise[p.Spec.NodeName] = p.Annotations[controlplane.AdvertiseAnnotation]
		}
	})
	wg.Wait()
	return d
}

func readKubeadmConfig(ctx context.Context, in *Inputs) (*kubeadmcfg.Facts, error) {
	cm, err := in.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read kube-system/kubeadm-config: %w", err)
	}
	cfg, err := kubeadmcfg.Parse([]byte(cm.Data[kubeadmcfg.ConfigMapKey]))
	if err != nil {
		return nil, fmt.Errorf("kube-system/kubeadm-config: %w", err)
	}
	f := cfg.Facts()
	return &f, nil
}

// nodeRows turns the API's nodes into report rows, in their order.
func nodeRows(nodes []controlplane.Node) []Node {
	rows := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		rows = append(rows, Node{Name: n.Name, IP: n.IP, ControlPlane: n.ControlPlane, Tainted: n.Tainted,
			Ready: n.Ready, KubeletVersion: n.KubeletVersion})
	}
	return rows
}

// leaseRows reports who holds each leader-election lease.
func leaseRows(d *apiData) []Lease {
	rows := make([]Lease, 0, 2)
	for _, c := range leaseComponents() {
		row := Lease{Component: c}
		if err := d.leaseErrs[c]; err != nil {
			row.Error = err.Error()
		} else if l := d.leases[c]; l != nil {
			if l.Spec.HolderIdentity != nil {
				row.Holder = *l.Spec.HolderIdentity
				// holderIdentity is "hostname_uuid"; node names cannot
				// contain '_'.
				row.Node, _, _ = strings.Cut(row.Holder, "_")
			}
			if l.Spec.RenewTime != nil {
				row.RenewTime = rfc3339(l.Spec.RenewTime.Time)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// lockRow is the haadm lock as of now, nil when nobody holds it.
func lockRow(d *apiData, now time.Time) *Lock {
	if d.lockErr != nil {
		return &Lock{Error: d.lockErr.Error()}
	}
	i := d.lock
	if i == nil {
		return nil
	}
	row := &Lock{Holder: i.Who(), Command: i.Holder.Command, User: i.Holder.User, Host: i.Holder.Host, PID: i.Holder.PID,
		RenewTime: rfc3339(i.Renewed), Stale: i.Expired(now)}
	if !i.Holder.Started.IsZero() {
		row.Started = rfc3339(i.Holder.Started)
		row.AgeSeconds = int64(now.Sub(i.Holder.Started) / time.Second)
	}
	return row
}
