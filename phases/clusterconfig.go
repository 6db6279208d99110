package phases

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/cluster-bootstrap/token/jws"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/kubeadmcfg"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// ClusterConfig points every cluster object that names the API at the load
// balancer: kubeadm-config (controlPlaneEndpoint and certSANs, or the next
// `kubeadm upgrade` undoes the work), cluster-info (re-signed by the
// bootstrap signer, or new `kubeadm join`s fail), the kube-proxy kubeconfig
// (and rolls its pods), and admin.conf on the first master.
type ClusterConfig struct{}

func (ClusterConfig) Name() string { return "cluster-config" }
func (ClusterConfig) Description() string {
	return "kubeadm-config, cluster-info, kube-proxy and the first master's admin.conf point at the LB"
}

// rolloutAnnotation on kube-proxy's pod template records the endpoint its
// pods were started for; changing it rolls them exactly once.
const rolloutAnnotation = "haadm.io/apiserver-endpoint"

func (ClusterConfig) Uses() Uses { return UsesEndpoint }

// Reads is the first master's admin.conf.
func (ClusterConfig) Reads(c *Cluster) map[string][]string {
	return map[string][]string{c.First.Name: {controlplane.KubernetesDir + "/" + controlplane.AdminConf}}
}

func (ClusterConfig) Plan(ctx context.Context, c *Cluster) (*Work, error) {
	w := &Work{}
	endpoint := c.EndpointURL()
	names, ips := c.LBSANs()
	sans := slices.Clone(names)
	for _, ip := range ips {
		sans = append(sans, ip.String())
	}
	steps, err := planKubeadmConfig(ctx, c, c.Opts.Endpoint, sans)
	if err != nil {
		return nil, err
	}
	w.add(steps...)
	objects, err := planAPIObjects(ctx, c, "cluster-config", endpoint, c.Opts.Endpoint, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	// Their waits come last: admin.conf need not wait for the signer.
	for _, s := range objects {
		if !s.Wait {
			w.add(s)
		}
	}

	// admin.conf on the first master
	adminConf := controlplane.KubernetesDir + "/" + controlplane.AdminConf
	have, err := c.Host(c.First.Name).ReadFiles(ctx, []string{adminConf})
	if err != nil {
		return nil, err
	}
	if cur, ok := have[adminConf]; ok {
		updated, changed, err := certs.SetServer(cur.Data, endpoint)
		if err != nil {
			return nil, fmt.Errorf("node %s: admin.conf: %w", c.First.Name, err)
		}
		if changed {
			w.add(Step{Node: c.First.Name, What: adminConf + ": server " + endpoint, Details: []string{fileDetail(adminConf, have, updated, "repoint")},
				Do: func(ctx context.Context) error {
					return c.Host(c.First.Name).WriteFiles(ctx, []node.File{{Path: adminConf, Data: updated, Mode: modeOr(cur.Mode, 0o600), UID: cur.UID, GID: cur.GID}})
				}})
		}
	}
	if w.Empty() {
		return w, nil
	}
	for _, s := range objects {
		if s.Wait {
			w.add(s)
		}
	}
	w.add(Step{What: "other ConfigMaps checked for " + c.First.IP, Wait: true, Do: func(ctx context.Context) error {
		c.reportOutsiders(ctx)
		return nil
	}})
	return w, nil
}

// planKubeadmConfig sets kubeadm-config's controlPlaneEndpoint (empty: none,
// as kubeadm init without it left it) and adds sans to its certSANs.
func planKubeadmConfig(ctx context.Context, c *Cluster, endpoint string, sans []string) ([]Step, error) {
	cms := c.Kube.CoreV1().ConfigMaps
	kc, err := cms("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	// The one change to kubeadm-config, made in the plan for its diff and
	// again at apply time on what is stored then.
	withEndpoint := func(stored string) ([]byte, bool, error) {
		cfg, err := kubeadmcfg.Parse([]byte(stored))
		if err != nil || !cfg.SetEndpoint(endpoint, sans) {
			return nil, false, err
		}
		data, err := cfg.Marshal()
		return data, err == nil, err
	}
	data, changed, err := withEndpoint(kc.Data[kubeadmcfg.ConfigMapKey])
	if err != nil || !changed {
		return nil, err
	}
	what := "kube-system/kubeadm-config: controlPlaneEndpoint " + endpoint
	if endpoint == "" {
		what = "kube-system/kubeadm-config: no controlPlaneEndpoint"
	}
	return []Step{{What: what, Details: []string{diff([]byte(kc.Data[kubeadmcfg.ConfigMapKey]), data)},
		// The plan is minutes old by now: read, change, write again,
		// retried on a conflict with another writer.
		Do: func(ctx context.Context) error {
			return retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur, err := cms("kube-system").Get(ctx, "kubeadm-config", metav1.GetOptions{})
				if err != nil {
					return err
				}
				data, changed, err := withEndpoint(cur.Data[kubeadmcfg.ConfigMapKey])
				if err != nil || !changed {
					return err
				}
				cur = cur.DeepCopy()
				cur.Data[kubeadmcfg.ConfigMapKey] = string(data)
				_, err = cms("kube-system").Update(ctx, cur, metav1.UpdateOptions{})
				return err
			})
		}}}, nil
}

// planAPIObjects points the kubeconfigs the cluster keeps in ConfigMaps
// (cluster-info, which new `kubeadm join`s trust, and kube-proxy's) at
// server, each whose current server pick selects, and rolls kube-proxy's
// pods once for rollout (the value recorded on their template); with
// rollout "" they roll, for server, exactly when their ConfigMap changes.
// The waits for the bootstrap signer and the rollout follow.
func planAPIObjects(ctx context.Context, c *Cluster, phase, server, rollout string, pick func(server string) bool) ([]Step, error) {
	cms := c.Kube.CoreV1().ConfigMaps
	var steps []Step
	resign, proxyRepointed := false, false
	for _, o := range []struct{ ns, name, key string }{{"kube-public", "cluster-info", "kubeconfig"}, {"kube-system", "kube-proxy", "kubeconfig.conf"}} {
		cm, err := cms(o.ns).Get(ctx, o.name, metav1.GetOptions{})
		if o.name == "kube-proxy" && apierrors.IsNotFound(err) {
			// No kube-proxy (Cilium's replacement, kube-router): nothing
			// of it to point anywhere.
			c.Log.Detail(phase, "", "kube-system/kube-proxy ConfigMap not present: no kube-proxy to repoint")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s/%s: %w", o.ns, o.name, err)
		}
		if cur, err := certs.Server([]byte(cm.Data[o.key])); err == nil && !pick(cur) {
			continue
		}
		updated, changed, err := certs.SetServer([]byte(cm.Data[o.key]), server)
		if err != nil {
			return nil, fmt.Errorf("%s/%s %s: %w", o.ns, o.name, o.key, err)
		}
		if !changed {
			continue
		}
		resign = resign || o.name == "cluster-info"
		proxyRepointed = proxyRepointed || o.name == "kube-proxy"
		steps = append(steps, Step{What: o.ns + "/" + o.name + ": server " + server, Details: []string{diff([]byte(cm.Data[o.key]), updated)},
			Do: func(ctx context.Context) error {
				return retry.RetryOnConflict(retry.DefaultRetry, func() error {
					cur, err := cms(o.ns).Get(ctx, o.name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					updated, changed, err := certs.SetServer([]byte(cur.Data[o.key]), server)
					if err != nil || !changed {
						return err
					}
					cur = cur.DeepCopy()
					cur.Data[o.key] = string(updated)
					_, err = cms(o.ns).Update(ctx, cur, metav1.UpdateOptions{})
					return err
				})
			}})
	}

	// kube-proxy pods read their kubeconfig at start: roll them once.
	ds, err := c.Kube.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		c.Log.Detail(phase, "", "kube-system/kube-proxy DaemonSet not present: no pods to roll")
	case err != nil:
		return nil, fmt.Errorf("read kube-system/kube-proxy DaemonSet: %w", err)
	}
	rolled := false
	roll := err == nil
	if rollout == "" {
		rollout, roll = server, roll && proxyRepointed
	}
	if roll && ds.Spec.Template.Annotations[rolloutAnnotation] != rollout && !proxyRepointed {
		// Another tool rewrote the template since (kubeadm upgrade's
		// kube-proxy addon drops the annotation): pods it started after
		// the ConfigMap's last write read the endpoint already.
		current, err := proxyPodsCurrent(ctx, c)
		if err != nil {
			return nil, err
		}
		if current {
			c.Log.Detail(phase, "", "kube-proxy pods all started after their ConfigMap's last write: no roll needed")
			roll = false
		}
	}
	if roll && ds.Spec.Template.Annotations[rolloutAnnotation] != rollout {
		rolled = true
		steps = append(steps, Step{What: "kube-system/kube-proxy DaemonSet: roll pods", Details: []string{"annotation " + rolloutAnnotation + "=" + rollout},
			Do: func(ctx context.Context) error {
				// A DaemonSet's status changes all the time: read it fresh.
				return retry.RetryOnConflict(retry.DefaultRetry, func() error {
					ds, err := c.Kube.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
					if err != nil || ds.Spec.Template.Annotations[rolloutAnnotation] == rollout {
						return err
					}
					ds = ds.DeepCopy()
					if ds.Spec.Template.Annotations == nil {
						ds.Spec.Template.Annotations = map[string]string{}
					}
					ds.Spec.Template.Annotations[rolloutAnnotation] = rollout
					_, err = c.Kube.AppsV1().DaemonSets("kube-system").Update(ctx, ds, metav1.UpdateOptions{})
					return err
				})
			}})
	}
	if resign {
		steps = append(steps, Step{What: "cluster-info re-signed by the bootstrap signer", Wait: true, Do: func(ctx context.Context) error {
			return waitFor(ctx, c.Log, phase, "", "cluster-info re-signed by the bootstrap signer", 2*time.Minute, func(ctx context.Context) (bool, string, error) {
				return clusterInfoSigned(ctx, c)
			})
		}})
	}
	if rolled {
		steps = append(steps, Step{What: "kube-proxy pods rolled", Wait: true, Do: func(ctx context.Context) error {
			return waitFor(ctx, c.Log, phase, "", "kube-proxy pods rolled", 4*time.Minute, func(ctx context.Context) (bool, string, error) {
				return kubeProxyRolled(ctx, c)
			})
		}})
	}
	return steps, nil
}

// clusterInfoSigned: every bootstrap token that signs has a valid detached
// signature over the current cluster-info kubeconfig.
func clusterInfoSigned(ctx context.Context, c *Cluster) (bool, string, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	secrets, err := c.Kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeBootstrapToken)})
	if err != nil {
		return false, "", err
	}
	content := cm.Data["kubeconfig"]
	for _, s := range secrets.Items {
		if string(s.Data["usage-bootstrap-signing"]) != "true" {
			continue
		}
		id, secret := string(s.Data["token-id"]), string(s.Data["token-secret"])
		want, err := jws.ComputeDetachedSignature(content, id, secret)
		if err != nil {
			return false, "", err
		}
		if cm.Data["jws-kubeconfig-"+id] != want {
			return false, "signature for token " + id + " not updated yet", nil
		}
	}
	return true, "", nil
}

// proxyPodsCurrent: there are kube-proxy pods, none being deleted, and all
// were created after the last write of the kube-proxy ConfigMap (the
// newest of its managedFields' times), so each read the kubeconfig it holds.
func proxyPodsCurrent(ctx context.Context, c *Cluster) (bool, error) {
	cm, err := c.Kube.CoreV1().ConfigMaps("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("read kube-system/kube-proxy: %w", err)
	}
	last := cm.CreationTimestamp.Time
	for _, mf := range cm.ManagedFields {
		if mf.Time != nil && mf.Time.After(last) {
			last = mf.Time.Time
		}
	}
	pods, err := c.Kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-proxy"})
	if err != nil {
		return false, fmt.Errorf("list kube-proxy pods: %w", err)
	}
	for _, p := range pods.Items {
		// Times have a second's grain: the same second is not after.
		if p.DeletionTimestamp != nil || !p.CreationTimestamp.After(last) {
			return false, nil
		}
	}
	return len(pods.Items) > 0, nil
}

func kubeProxyRolled(ctx context.Context, c *Cluster) (bool, string, error) {
	ds, err := c.Kube.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{})
	if err != nil {
		return false, "", err
	}
	st := ds.Status
	if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled < st.DesiredNumberScheduled || st.NumberAvailable < st.DesiredNumberScheduled {
		return false, fmt.Sprintf("%d of %d updated, %d available", st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable), nil
	}
	return true, "", nil
}

// reportOutsiders names ConfigMaps outside kubeadm's that still hold the
// first master's address (a CNI's k8sServiceHost, say). haadm does not edit
// what it does not own; the operator should know.
func (c *Cluster) reportOutsiders(ctx context.Context) {
	list, err := c.Kube.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	// The first master's IP as a whole word: 10.250.0.11 but not 10.250.0.111.
	old := regexp.MustCompile(`(^|[^0-9.])` + regexp.QuoteMeta(c.First.IP) + `($|[^0-9])`)
	managed := map[string]bool{"kube-public/cluster-info": true, "kube-system/kube-proxy": true, "kube-system/kubeadm-config": true}
	for _, cm := range list.Items {
		if managed[cm.Namespace+"/"+cm.Name] {
			continue
		}
		for k, v := range cm.Data {
			if old.MatchString(v) {
				c.Log.Step("cluster-config", "", 0, fmt.Sprintf("NOTE: %s/%s key %s still names %s; haadm leaves it alone: point it at %s yourself", cm.Namespace, cm.Name, k, c.First.IP, c.Opts.Endpoint))
			}
		}
	}
}

// diff is a unified diff for plans, empty when equal.
func diff(old, new []byte) string { return manifests.Diff(old, new) }
