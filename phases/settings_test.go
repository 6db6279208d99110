package phases

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/haadm/haadm/controlplane"
)

// TestKubeadmConfigSettings: certificateValidityPeriod and etcd.local's
// extra SANs from kubeadm-config reach the certificates haadm issues.
func TestKubeadmConfigSettings(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.c.Facts.CertificateValidity = 90 * 24 * time.Hour
	f.c.Facts.EtcdServerCertSANs = []string{"etcd.k8s.example", "10.250.0.200"}
	f.c.Facts.EtcdPeerCertSANs = []string{"peer.k8s.example"}
	if err := apply(testCtx(t, 30*time.Second), Certs{}, f.c); err != nil {
		t.Fatal(err)
	}
	crt := f.cert("emei", "apiserver")
	if life := crt.NotAfter.Sub(time.Now()); life > 91*24*time.Hour || life < 89*24*time.Hour {
		t.Errorf("apiserver.crt valid for %v, want the configured 90 days", life)
	}
	srv := f.cert("emei", "etcd/server")
	if !slices.Contains(srv.DNSNames, "etcd.k8s.example") || !slices.ContainsFunc(ipStrings(srv.IPAddresses), func(s string) bool { return s == "10.250.0.200" }) {
		t.Errorf("etcd/server.crt SANs %v %v lack etcd.local.serverCertSANs", srv.DNSNames, srv.IPAddresses)
	}
	if peer := f.cert("emei", "etcd/peer"); !slices.Contains(peer.DNSNames, "peer.k8s.example") {
		t.Errorf("etcd/peer.crt SANs %v lack etcd.local.peerCertSANs", peer.DNSNames)
	}
}

// TestBindPort: an apiserver on a port other than 6443 (kubeadm's bindPort,
// read back from the apiserver pod's annotation, as kubeadm does) is what
// the LB, the kubeconfigs and preflight use.
func TestBindPort(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-shaolin", Namespace: "kube-system",
		Annotations: map[string]string{controlplane.AdvertiseAnnotation: "10.250.0.11:7443"}}}
	f := newFixture(t, setup{Objects: []runtime.Object{pod}})
	if p := f.c.APIServerPort(); p != 7443 {
		t.Fatalf("APIServerPort() = %d, want 7443", p)
	}
	for _, b := range lbConfig(f.c).Backends {
		if b.Port != 7443 {
			t.Errorf("LB backend %s on port %d", b.Name, b.Port)
		}
	}
	if got := kubeletServer(f.c, f.c.New[0], true); got != "https://10.250.0.12:7443" {
		t.Errorf("emei's kubelet server %s", got)
	}
	if got := kubeconfigsFor(f.c, f.c.New[0])[controlplane.KubernetesDir+"/"+controlplane.SchedulerConf].server; got != "https://10.250.0.12:7443" {
		t.Errorf("emei's scheduler.conf server %s", got)
	}
	var ports []int
	for _, p := range controlPlanePorts(f.c.APIServerPort()) {
		ports = append(ports, p.port)
	}
	if !slices.Contains(ports, 7443) || slices.Contains(ports, 6443) {
		t.Errorf("preflight checks ports %v", ports)
	}
}

// TestOtherControlPlanes: a control plane outside --nodes (made by hand,
// or by an earlier run) gets the LB names in its apiserver certificate and
// its kubelet handled like a master's; nothing else of it is touched.
func TestOtherControlPlanes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true, Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}, EditNodes: func(n map[string]*corev1.Node) {
		n["wudang"].Labels[controlplane.Label] = ""
	}})
	names := func(ns []NodeInfo) (s []string) {
		for _, n := range ns {
			s = append(s, n.Name)
		}
		return s
	}
	if got := names(f.c.ControlPlanes()); !slices.Equal(got, []string{"shaolin", "emei", "wudang"}) {
		t.Fatalf("ControlPlanes() = %v", got)
	}
	if !slices.Contains(f.c.HostNames(), "wudang") {
		t.Errorf("HostNames() = %v lacks wudang", f.c.HostNames())
	}
	_, why, err := check(t.Context(), Certs{}, f.c)
	if err != nil {
		t.Fatal(err)
	}
	// Only its serving certificate: it has its own etcd and shared PKI.
	mustContain(t, why, "wudang: 2 files (apiserver.key, apiserver.crt)")
	_, why, err = check(t.Context(), Kubelet{}, f.c)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, why, "wudang: kubelet.conf -> https://10.250.0.13:6443", "wutai: kubelet.conf -> https://10.250.0.12:8443")
	if strings.Contains(why, "wudang: kubelet.conf -> https://10.250.0.12:8443") {
		t.Error("wudang treated as a worker")
	}
}

// TestShortCertificateValidity: with certificates valid for 30 days, a
// converged cluster stays converged (the renewal margin follows the
// validity instead of re-issuing everything on every run).
func TestShortCertificateValidity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.c.Facts.CertificateValidity = 30 * 24 * time.Hour
	ctx := testCtx(t, 30*time.Second)
	if err := apply(ctx, Certs{}, f.c); err != nil {
		t.Fatal(err)
	}
	if done, why, err := check(ctx, Certs{}, f.c); err != nil || !done {
		t.Errorf("second plan: %v %s %v", done, why, err)
	}
}
