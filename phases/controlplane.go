package phases

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// ControlPlane gives each new master the first master's static pods, tweaked
// for the node (advertise address, probes, local etcd), and the kubeconfigs
// the controller-manager, the scheduler and an admin on that node use; then
// waits until its apiserver answers /readyz. One node at a time.
type ControlPlane struct{}

func (ControlPlane) Name() string { return "control-plane" }
func (ControlPlane) Description() string {
	return "static pods and kubeconfigs for each new master; wait for its apiserver"
}
func (ControlPlane) Uses() Uses { return UsesEndpoint }

// Follows: a new master's apiserver needs only its own etcd member, so it
// starts (about 10 s on two cores) while the next member joins.
func (ControlPlane) Follows() string { return "etcd" }

const apiserverTimeout = 4 * time.Minute

// kubeconfigWant describes a kubeconfig by meaning, not bytes: a fresh key
// makes every rendering different, so "done" means right server, right
// identity, signed by the cluster CA.
type kubeconfigWant struct {
	server string
	spec   certs.Spec
}

func (ControlPlane) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return nil, err
	}
	steps := make([][]Step, len(c.New))
	running := make([]bool, len(c.New))
	if err := forEach(len(c.New), func(i int) error {
		var err error
		steps[i], running[i], err = planControlPlane(ctx, c, src, c.New[i])
		return err
	}); err != nil {
		return nil, err
	}
	// Restarting apiservers goes one node at a time. Starting the first
	// ones on new masters restarts nothing that serves: each is a new
	// process that takes requests only once ready (the load balancer
	// comes later), so they may start at once.
	w := &Work{PerNode: true}
	for i, s := range steps {
		w.add(s...)
		if len(s) > 0 && running[i] {
			w.PerNode = false
		}
	}
	return w, nil
}

// NewKeyPaths are a new master's kubeconfigs: each one missing is a
// client key the plan makes (renderKubeconfig).
func (ControlPlane) NewKeyPaths() []string {
	var out []string
	for _, p := range controlPlanePaths() {
		if strings.HasSuffix(p, ".conf") {
			out = append(out, p)
		}
	}
	return out
}

// kubeconfigsFor are the kubeconfigs a new master's components and admin
// use, with the server each must name.
func kubeconfigsFor(c *Cluster, n NodeInfo) map[string]kubeconfigWant {
	server := map[controlplane.Target]string{controlplane.TargetLocal: c.LocalAPIServer(n), controlplane.TargetEndpoint: c.EndpointURL()}
	spec := map[string]certs.Spec{
		controlplane.AdminConf:             certs.Admin(),
		controlplane.ControllerManagerConf: certs.ControllerManager(),
		controlplane.SchedulerConf:         certs.Scheduler(),
	}
	out := map[string]kubeconfigWant{}
	for _, r := range controlplane.Kubeconfigs(true) {
		if s, ok := spec[r.File]; ok {
			out[controlplane.KubernetesDir+"/"+r.File] = kubeconfigWant{server: server[r.Target], spec: s}
		}
	}
	return out
}

// controlPlanePaths are a new master's files, in the order they are
// written: kubeconfigs first, since the static pods read them as they start.
func controlPlanePaths() []string {
	return []string{
		controlplane.KubernetesDir + "/" + controlplane.ControllerManagerConf,
		controlplane.KubernetesDir + "/" + controlplane.SchedulerConf,
		controlplane.KubernetesDir + "/" + controlplane.AdminConf,
		manifestsDir + "/kube-apiserver.yaml",
		manifestsDir + "/kube-controller-manager.yaml",
		manifestsDir + "/kube-scheduler.yaml",
	}
}

// Reads are the new masters' kubeconfigs and static pods.
func (ControlPlane) Reads(c *Cluster) map[string][]string {
	out := map[string][]string{}
	for _, n := range c.New {
		out[n.Name] = controlPlanePaths()
	}
	return out
}

// planControlPlane is node n's steps, and whether it already has a
// kube-apiserver manifest (so the steps may restart a running apiserver).
func planControlPlane(ctx context.Context, c *Cluster, src *source, n NodeInfo) (_ []Step, running bool, _ error) {
	nd := manifests.Node{Name: n.Name, IP: n.IP}
	pods := map[string]func([]byte) ([]byte, error){
		"kube-apiserver.yaml":          func(b []byte) ([]byte, error) { return manifests.APIServer(b, nd) },
		"kube-controller-manager.yaml": manifests.ControllerManager,
		"kube-scheduler.yaml":          manifests.Scheduler,
	}
	kcs := kubeconfigsFor(c, n)
	order := controlPlanePaths()
	have, err := c.Host(n.Name).ReadFiles(ctx, order)
	if err != nil {
		return nil, false, err
	}
	_, running = have[manifestsDir+"/kube-apiserver.yaml"]
	var files []node.File
	var details []string
	for _, p := range order {
		var data []byte
		if want, ok := kcs[p]; ok {
			if h, ok := have[p]; ok && kubeconfigMatches(h.Data, want, src.ca.Cert, c.certRenewMargin()) {
				continue
			}
			if data, err = renderKubeconfig(c, src, want); err != nil {
				return nil, false, fmt.Errorf("node %s: %s: %w", n.Name, p, err)
			}
		} else {
			name := strings.TrimPrefix(p, manifestsDir+"/")
			if data, err = pods[name](src.pods[name]); err != nil {
				return nil, false, fmt.Errorf("node %s: render %s: %w", n.Name, name, err)
			}
			if h, ok := have[p]; ok && string(h.Data) == string(data) {
				continue
			}
		}
		files = append(files, node.File{Path: p, Data: data, Mode: 0o600})
		details = append(details, fileDetail(p, have, data, "to write"))
	}
	wait := Step{
		Node: n.Name, What: "kube-apiserver ready", Wait: true,
		Do: func(ctx context.Context) error {
			addr := controlplane.HostPort(n.IP, c.APIServerPort())
			err := waitFor(ctx, c.Log, "control-plane", n.Name, "kube-apiserver ready", apiserverTimeout, func(ctx context.Context) (bool, string, error) {
				return c.readyz(ctx, n.Name, addr, n.IP)
			})
			if err != nil {
				return fmt.Errorf("%w\n(check the kube-apiserver container on %s: crictl ps -a --name kube-apiserver)", err, n.Name)
			}
			return nil
		},
	}
	if len(files) == 0 {
		// Everything is written, but a run stopped before the apiserver
		// answered would otherwise look done: ask it.
		if ok, _, _ := c.readyz(ctx, n.Name, controlplane.HostPort(n.IP, c.APIServerPort()), n.IP); !ok {
			wait.Wait = false
			wait.What = "kube-apiserver ready (its files are in place, it does not answer yet)"
			return []Step{wait}, running, nil
		}
		return nil, running, nil
	}
	return []Step{{
		Node: n.Name, What: fmt.Sprintf("%d files (%s)", len(files), shortList(files)), Details: details,
		Do: func(ctx context.Context) error {
			// The apiserver talks to its local etcd member: without a
			// started one it would never be ready.
			if err := c.checkLocalMember(ctx, n); err != nil {
				return err
			}
			if err := c.checkHostFiles(ctx, n.Name); err != nil {
				return err
			}
			return c.Host(n.Name).WriteFiles(ctx, files)
		},
	}, wait}, running, nil
}

// checkLocalMember: node n has a started etcd member.
func (c *Cluster) checkLocalMember(ctx context.Context, n NodeInfo) error {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return err
	}
	members, err := etcdm.List(ctx, cli)
	if err != nil {
		return err
	}
	if m, ok := etcdm.FindByPeerURL(members, peerURL(n)); !ok || !m.Started() {
		return fmt.Errorf("node %s has no started etcd member for its apiserver: run `haadm phase etcd` first (nothing was written)", n.Name)
	}
	return nil
}

// kubeconfigMatches: right server, a client certificate with the right
// identity signed by ca and not about to expire.
func kubeconfigMatches(kc []byte, want kubeconfigWant, ca *x509.Certificate, margin time.Duration) bool {
	server, err := certs.Server(kc)
	if err != nil || server != want.server {
		return false
	}
	crtPEM, err := certs.ClientCertOf(kc)
	if err != nil {
		return false
	}
	crt, err := certs.ParseCertPEM(crtPEM)
	if err != nil {
		return false
	}
	ok, _ := certs.Matches(crt, want.spec, ca, time.Now(), margin)
	return ok
}

func renderKubeconfig(c *Cluster, src *source, want kubeconfigWant) ([]byte, error) {
	key, err := c.keys.NewKey(keyAlgorithm(src.ca.Cert))
	if err != nil {
		return nil, err
	}
	nb, validity := certs.KubeadmWindow(time.Now(), c.certValidity())
	crt, err := certs.Issue(src.ca, want.spec, key, nb, validity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := certs.EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return certs.RenderKubeconfig(c.Facts.ClusterName, want.server, src.caPEM, want.spec.CommonName, crt, keyPEM)
}

// readyz asks an apiserver (or the LB) at addr for /readyz, connecting
// from node via. The certificate is verified against the cluster CA for
// serverName, so this also proves the SANs are right.
func (c *Cluster) readyz(ctx context.Context, via, addr, serverName string) (bool, string, error) {
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return false, "", err
	}
	pool := x509.NewCertPool()
	pool.AddCert(src.ca.Cert)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res := controlplane.Probe(ctx, c.Host(via).DialContext, addr, controlplane.ProbeOptions{Roots: pool, ServerName: serverName})
	if res.Ready {
		return true, "", nil
	}
	return false, "", res.Err
}
