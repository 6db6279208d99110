package phases

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/haadm/haadm/kubeadmcfg"
)

func getCM(t *testing.T, f *fixture, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := f.kube.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func decodeYAML(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClusterConfig points kubeadm-config, cluster-info, kube-proxy and
// shaolin's admin.conf at the load balancer and rolls kube-proxy, changing
// nothing else; afterwards the plan is empty and applying changes nothing.
func TestClusterConfig(t *testing.T) {
	t.Parallel()
	outsider := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cilium-config", Namespace: "kube-system"},
		Data: map[string]string{"values.yaml": "k8sServiceHost: 10.250.0.11\nk8sServicePort: 6443\n",
			"kubeconfig": "clusters:\n- cluster:\n    server: https://10.250.0.11:6443\n", "cluster-pool-ipv4-cidr": "10.0.0.0/8"},
	}
	f := newFixture(t, setup{Objects: []runtime.Object{outsider}})
	f.runBootstrapSigner()
	ctx := testCtx(t, 30*time.Second)
	const endpoint = "https://10.250.0.12:8443"

	kcBefore := getCM(t, f, "kube-system", "kubeadm-config")
	ciBefore := getCM(t, f, "kube-public", "cluster-info")
	kpBefore := getCM(t, f, "kube-system", "kube-proxy")
	adminBefore, _ := f.file("shaolin", "/etc/kubernetes/admin.conf")

	done, why, err := check(ctx, ClusterConfig{}, f.c)
	if err != nil || done {
		t.Fatalf("plan before = %v, %q, %v", done, why, err)
	}
	wantWhy := "kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443, kube-public/cluster-info: server " + endpoint +
		", kube-system/kube-proxy: server " + endpoint + ", kube-system/kube-proxy DaemonSet: roll pods, shaolin: /etc/kubernetes/admin.conf: server " + endpoint
	if why != wantWhy {
		t.Errorf("why =\n %q\nwant\n %q", why, wantWhy)
	}
	if m := f.mutations(); len(m) != 0 {
		t.Fatalf("planning changed the API: %v", m)
	}

	if err := apply(ctx, ClusterConfig{}, f.c); err != nil {
		t.Fatal(err)
	}

	t.Run("kubeadm-config", func(t *testing.T) {
		after := getCM(t, f, "kube-system", "kubeadm-config")
		cfg, err := kubeadmcfg.Parse([]byte(after.Data[kubeadmcfg.ConfigMapKey]))
		if err != nil {
			t.Fatal(err)
		}
		facts := cfg.Facts()
		if facts.ControlPlaneEndpoint != "10.250.0.12:8443" || !slices.Equal(facts.CertSANs, []string{"emei", emeiIP}) {
			t.Errorf("controlPlaneEndpoint %q, certSANs %q", facts.ControlPlaneEndpoint, facts.CertSANs)
		}
		// Every other field is as kubeadm stored it.
		old := decodeYAML(t, kcBefore.Data[kubeadmcfg.ConfigMapKey])
		now := decodeYAML(t, after.Data[kubeadmcfg.ConfigMapKey])
		delete(now, "controlPlaneEndpoint")
		if api, ok := now["apiServer"].(map[string]any); ok {
			delete(api, "certSANs")
		}
		if !reflect.DeepEqual(old, now) {
			t.Errorf("other fields changed:\nbefore %v\nafter  %v", old, now)
		}
		for k, v := range kcBefore.Data {
			if k != kubeadmcfg.ConfigMapKey && after.Data[k] != v {
				t.Errorf("key %s changed", k)
			}
		}
		if !reflect.DeepEqual(after.Labels, kcBefore.Labels) || !reflect.DeepEqual(after.Annotations, kcBefore.Annotations) {
			t.Error("metadata changed")
		}
	})

	for _, tt := range []struct {
		ns, name, key string
		before        *corev1.ConfigMap
	}{
		{"kube-public", "cluster-info", "kubeconfig", ciBefore},
		{"kube-system", "kube-proxy", "kubeconfig.conf", kpBefore},
	} {
		t.Run(tt.name, func(t *testing.T) {
			after := getCM(t, f, tt.ns, tt.name)
			checkOnlyServerChanged(t, []byte(tt.before.Data[tt.key]), []byte(after.Data[tt.key]), endpoint)
			for k, v := range tt.before.Data {
				if k != tt.key && !strings.HasPrefix(k, "jws-kubeconfig-") && after.Data[k] != v {
					t.Errorf("key %s changed", k)
				}
			}
		})
	}
	t.Run("cluster-info re-signed", func(t *testing.T) {
		ok, why, err := clusterInfoSigned(t.Context(), f.c)
		if err != nil || !ok {
			t.Errorf("clusterInfoSigned = %v, %q, %v", ok, why, err)
		}
	})
	t.Run("kube-proxy DaemonSet", func(t *testing.T) {
		ds, err := f.kube.AppsV1().DaemonSets("kube-system").Get(t.Context(), "kube-proxy", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ds.Spec.Template.Annotations[rolloutAnnotation]; got != "10.250.0.12:8443" {
			t.Errorf("template annotation %s = %q", rolloutAnnotation, got)
		}
		want := kubeProxyDaemonSet(3)
		ds.Spec.Template.Annotations = nil
		if !reflect.DeepEqual(ds.Spec, want.Spec) {
			t.Error("the DaemonSet spec changed beyond the annotation")
		}
	})
	t.Run("admin.conf", func(t *testing.T) {
		b, mode := f.file("shaolin", "/etc/kubernetes/admin.conf")
		if mode != 0o600 {
			t.Errorf("mode %04o", mode)
		}
		checkOnlyServerChanged(t, adminBefore, b, endpoint)
	})
	mustContain(t, f.console.String(), "[cluster-config] kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443 (",
		"[cluster-config] shaolin: /etc/kubernetes/admin.conf: server "+endpoint+" (",
		"[cluster-config] cluster-info re-signed by the bootstrap signer (", "[cluster-config] kube-proxy pods rolled (",
		// haadm does not edit a CNI's config, but says it still names shaolin.
		"NOTE: kube-system/cilium-config key kubeconfig still names 10.250.0.11",
		"NOTE: kube-system/cilium-config key values.yaml still names 10.250.0.11")
	if strings.Contains(f.console.String(), "key cluster-pool-ipv4-cidr") || strings.Contains(f.console.String(), "NOTE: kube-system/kube-proxy") ||
		strings.Contains(f.console.String(), "NOTE: kube-public") {
		t.Error("a ConfigMap haadm manages is reported as an outsider")
	}

	w := plan(t, ctx, ClusterConfig{}, f.c)
	if !w.Empty() || len(w.Steps) != 0 {
		t.Fatalf("plan after = %q: a converged cluster has nothing, not even a wait", stepsOf(w))
	}
	before := len(f.mutations())
	writes := f.writes()
	if err := apply(ctx, ClusterConfig{}, f.c); err != nil {
		t.Fatal(err)
	}
	if m := f.mutations(); len(m) != before {
		t.Errorf("second apply changed the API: %v", m[before:])
	}
	if !equalWrites(writes, f.writes()) {
		t.Error("second apply wrote a file")
	}
}

// checkOnlyServerChanged: the kubeconfig after equals the one before but for
// every cluster's server.
func checkOnlyServerChanged(t *testing.T, before, after []byte, server string) {
	t.Helper()
	want, err := clientcmd.Load(before)
	if err != nil {
		t.Fatal(err)
	}
	got, err := clientcmd.Load(after)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range want.Clusters {
		c.Server = server
		if got.Clusters[name] == nil || got.Clusters[name].Server != server {
			t.Errorf("cluster %q: server is not %s", name, server)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kubeconfig changed beyond the server:\n%s", after)
	}
}

// TestClusterConfigPlan: the plan names every change with a diff an
// operator can review, credentials redacted, and makes none.
func TestClusterConfigPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	ctx := testCtx(t, 10*time.Second)
	w := plan(t, ctx, ClusterConfig{}, f.c)
	f.unchanged(t)
	want := []string{
		"kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443",
		"kube-public/cluster-info: server https://10.250.0.12:8443",
		"kube-system/kube-proxy: server https://10.250.0.12:8443",
		"kube-system/kube-proxy DaemonSet: roll pods",
		"shaolin: /etc/kubernetes/admin.conf: server https://10.250.0.12:8443",
		"cluster-info re-signed by the bootstrap signer (wait)",
		"kube-proxy pods rolled (wait)",
		"other ConfigMaps checked for 10.250.0.11 (wait)",
	}
	if got := stepsOf(w); !slices.Equal(got, want) {
		t.Errorf("plan:\n got %q\nwant %q", got, want)
	}
	mustContain(t, w.Steps[0].Details[0], "+controlPlaneEndpoint: 10.250.0.12:8443", "+  - emei", "+  - 10.250.0.12")
	mustContain(t, w.Steps[1].Details[0], "-    server: https://10.250.0.11:6443", "+    server: https://10.250.0.12:8443")
	mustContain(t, w.Steps[4].Details[0], "/etc/kubernetes/admin.conf: repoint\n", "+    server: https://10.250.0.12:8443")
	noKeyMaterial(t, "the cluster-config plan", detailsOf(w, ""))
	if done, _, _ := check(ctx, ClusterConfig{}, f.c); done {
		t.Error("planning again after a plan says done")
	}
}

// TestClusterInfoSigned: the wait for the bootstrap signer ends only when
// every signing token's signature matches the current kubeconfig.
func TestClusterInfoSigned(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	ok, why, err := clusterInfoSigned(t.Context(), f.c)
	if err != nil || !ok {
		t.Fatalf("signed as captured: %v, %q, %v", ok, why, err)
	}
	// No signer running: the update leaves the old signature.
	cm := getCM(t, f, "kube-public", "cluster-info")
	cm.Data["kubeconfig"] = strings.Replace(cm.Data["kubeconfig"], "https://10.250.0.11:6443", "https://10.250.0.12:8443", 1)
	if _, err := f.kube.CoreV1().ConfigMaps("kube-public").Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ok, why, err = clusterInfoSigned(t.Context(), f.c)
	if err != nil || ok || why != "signature for token "+tokenID+" not updated yet" {
		t.Errorf("after an unsigned change: %v, %q, %v", ok, why, err)
	}
	// A token that does not sign is not waited for.
	sec, _ := f.kube.CoreV1().Secrets("kube-system").Get(t.Context(), "bootstrap-token-"+tokenID, metav1.GetOptions{})
	sec.Data["usage-bootstrap-signing"] = []byte("false")
	if _, err := f.kube.CoreV1().Secrets("kube-system").Update(t.Context(), sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ok, why, err := clusterInfoSigned(t.Context(), f.c); !ok {
		t.Errorf("with no signing token: %v, %q, %v", ok, why, err)
	}
}

func TestKubeProxyRolled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		gen    int64
		status appsv1.DaemonSetStatus
		ok     bool
		why    string
	}{
		{"rolled", 2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}, true, ""},
		{"controller has not seen the change", 2, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}, false, "3 of 3 updated, 3 available"},
		{"rolling", 2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1, NumberAvailable: 2}, false, "1 of 3 updated, 2 available"},
		{"updated but not available", 2, appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 2}, false, "3 of 3 updated, 2 available"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ds := kubeProxyDaemonSet(3)
			ds.Generation, ds.Status = tt.gen, tt.status
			f := newFixture(t, setup{})
			if _, err := f.kube.AppsV1().DaemonSets("kube-system").Update(t.Context(), ds, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			ok, why, err := kubeProxyRolled(t.Context(), f.c)
			if err != nil || ok != tt.ok || why != tt.why {
				t.Errorf("= %v, %q, %v; want %v, %q", ok, why, err, tt.ok, tt.why)
			}
		})
	}
}

// TestClusterConfigWithoutKubeProxy: a cluster without kube-proxy (Cilium's
// replacement, kube-router) has neither its ConfigMap nor its DaemonSet;
// the phase points the rest at the endpoint and is done.
func TestClusterConfigWithoutKubeProxy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	ctx := testCtx(t, 10*time.Second)
	if err := f.kube.CoreV1().ConfigMaps("kube-system").Delete(ctx, "kube-proxy", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.kube.AppsV1().DaemonSets("kube-system").Delete(ctx, "kube-proxy", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.runBootstrapSigner()
	_, why, err := check(ctx, ClusterConfig{}, f.c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(why, "kube-proxy") {
		t.Errorf("plan touches kube-proxy: %s", why)
	}
	mustContain(t, why, "kube-system/kubeadm-config: controlPlaneEndpoint", "kube-public/cluster-info: server")
	if err := apply(ctx, ClusterConfig{}, f.c); err != nil {
		t.Fatal(err)
	}
	if done, why, err := check(ctx, ClusterConfig{}, f.c); err != nil || !done {
		t.Errorf("after apply: %v %s %v", done, why, err)
	}
}

// TestKubeProxyRollAfterOtherTools: a kube-proxy template without haadm's
// annotation (kubeadm upgrade rewrites the DaemonSet) needs no roll when
// every pod started after the ConfigMap's last write, and does otherwise.
func TestKubeProxyRollAfterOtherTools(t *testing.T) {
	t.Parallel()
	written := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, tt := range []struct {
		name string
		pods []time.Duration // creation, after the ConfigMap's write
		roll bool
	}{
		{"every pod newer", []time.Duration{time.Minute, 2 * time.Minute}, false},
		{"one pod older", []time.Duration{time.Minute, -time.Minute}, true},
		{"one pod the same second", []time.Duration{time.Minute, 0}, true},
		{"no pods", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{})
			ctx := testCtx(t, 10*time.Second)
			cm := getCM(t, f, "kube-system", "kube-proxy")
			cm.Data["kubeconfig.conf"] = strings.Replace(cm.Data["kubeconfig.conf"], "https://10.250.0.11:6443", "https://10.250.0.12:8443", 1)
			// The fake clientset keeps no managedFields: the creation is
			// the last write here (proxyPodsCurrent takes the newer).
			cm.CreationTimestamp = metav1.NewTime(written)
			if _, err := f.kube.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			for i, d := range tt.pods {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("kube-proxy-%d", i), Namespace: "kube-system",
					Labels: map[string]string{"k8s-app": "kube-proxy"}, CreationTimestamp: metav1.NewTime(written.Add(d))}}
				if _, err := f.kube.CoreV1().Pods("kube-system").Create(ctx, p, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			w := plan(t, ctx, ClusterConfig{}, f.c)
			if got := slices.Contains(stepsOf(w), "kube-system/kube-proxy DaemonSet: roll pods"); got != tt.roll {
				t.Errorf("roll pods in the plan: %v, want %v\n%q", got, tt.roll, stepsOf(w))
			}
		})
	}
}
