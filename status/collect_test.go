package status

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/internal/testkit"
	"github.com/haadm/haadm/kubeadmcfg"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// Fixed times, so that collected reports can be golden files.
var (
	testNow      = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	certNotAfter = time.Date(2027, 11, 22, 2, 38, 14, 0, time.UTC)
)

// labEnv is a cluster for Collect: fake nodes, a fake clientset, fake
// apiservers and a fake etcd on a fake network. Tests change it, then call
// inputs, which starts the servers.
type labEnv struct {
	net         *testkit.Net
	ips         map[string]string
	hosts       map[string]*node.Fake
	unreachable map[string]error
	nodes       []*corev1.Node
	cms         map[string]*corev1.ConfigMap
	pods        []*corev1.Pod
	leases      []*coordinationv1.Lease
	etcd        *fakeEtcd
	// masters get an apiserver with a certificate of spec.
	masters    []string
	certSpec   func(t *testing.T, name string) certs.Spec
	apiservers map[string]*testkit.APIServer
	// lbFront, when set, answers like an nginx in front of the apiservers.
	lbFront string
	// etcdCA signs etcd's serving certificate; nil means the cluster CA.
	etcdCA *certs.CA
	// notAfter ends every serving certificate; zero means certNotAfter.
	notAfter time.Time
	kube     *fake.Clientset
}

// singleMasterEnv is the lab as captured: kubeadm init on shaolin without
// controlPlaneEndpoint, emei and wudang joined as workers.
func singleMasterEnv(t *testing.T) *labEnv {
	e := &labEnv{net: testkit.NewNet(), ips: testkit.LabIPs(), hosts: map[string]*node.Fake{}, unreachable: map[string]error{},
		apiservers: map[string]*testkit.APIServer{}}
	for name := range e.ips {
		e.hosts[name] = fixtureHost(t, e.net, name)
	}
	e.nodes, e.cms = fixtureObjects(t)
	e.pods = []*corev1.Pod{apiserverPod(t, "shaolin", e.ips["shaolin"])}
	e.leases = []*coordinationv1.Lease{lease("kube-controller-manager", "shaolin"), lease("kube-scheduler", "shaolin")}
	e.etcd = &fakeEtcd{members: []*pb.Member{etcdMember(0xafbb4ead059bfd6d, "shaolin", e.ips["shaolin"])}}
	e.masters = []string{"shaolin"}
	e.certSpec = func(t *testing.T, name string) certs.Spec {
		// The very SANs kubeadm gave the lab's apiserver.
		cert, err := certs.ParseCertPEM(testkit.Testdata(t, testkit.Lab+"/shaolin/etc/kubernetes/pki/apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		return certs.SpecOf(cert)
	}
	return e
}

// haEnv is the lab as haadm promote leaves it: three masters, nginx on
// emei:8443 as controlPlaneEndpoint, every kubeconfig and ConfigMap moved.
func haEnv(t *testing.T) *labEnv {
	e := singleMasterEnv(t)
	const endpoint = "10.250.0.12:8443"
	lbURL := "https://" + endpoint
	cfg, err := kubeadmcfg.Parse([]byte(e.cms["kubeadm-config"].Data[kubeadmcfg.ConfigMapKey]))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetEndpoint(endpoint, []string{"10.250.0.12", "emei"})
	out, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e.cms["kubeadm-config"].Data[kubeadmcfg.ConfigMapKey] = string(out)
	e.setConfigMapServer(t, "kube-proxy", "kubeconfig.conf", lbURL)
	e.setConfigMapServer(t, "cluster-info", "kubeconfig", lbURL)

	shaolin := e.hosts["shaolin"]
	for name, ip := range e.ips {
		own := "https://" + ip + ":6443"
		for _, r := range controlplane.Kubeconfigs(true) {
			path := kubeconfigPath(r.File)
			data, _, _ := shaolin.File(path)
			if r.File == controlplane.KubeletConf && name != "shaolin" {
				data, _, _ = e.hosts[name].File(path)
			}
			server := own
			if r.File == controlplane.AdminConf {
				server = lbURL
			}
			e.hosts[name].SetFile(path, setServer(t, data, server), 0o600)
		}
		if name != "shaolin" {
			e.pods = append(e.pods, apiserverPod(t, name, ip))
		}
	}
	e.hosts["emei"].SetFile(lb.EngineNginx.ConfPath(), []byte(haadmNginxConf), 0o644)
	for _, n := range e.nodes {
		n.Labels[controlplane.Label] = ""
		n.Spec.Taints = []corev1.Taint{controlplane.Taint()}
	}
	e.leases[1] = lease("kube-scheduler", "wudang")
	e.etcd.members = append(e.etcd.members,
		etcdMember(0x575dcc85bd4ea56, "emei", e.ips["emei"]),
		etcdMember(0xbefae0a5f54610a6, "wudang", e.ips["wudang"]))
	e.masters = []string{"shaolin", "emei", "wudang"}
	e.certSpec = func(t *testing.T, name string) certs.Spec {
		spec, err := certs.APIServer(certs.NodeFacts{Name: name, IP: net.ParseIP(e.ips[name])},
			certs.ClusterFacts{LBNames: []string{"emei"}, LBIPs: []net.IP{net.ParseIP("10.250.0.12")}})
		if err != nil {
			t.Fatal(err)
		}
		return spec
	}
	e.lbFront = endpoint
	return e
}

// haadmNginxConf is what haadm writes on emei (lb.RenderNginx, dedicated).
const haadmNginxConf = `# Managed by haadm: layer-4 load balancer for the Kubernetes API.
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
events {
    worker_connections 1024;
}
stream {
    upstream kube_apiserver {
        server 10.250.0.11:6443 max_fails=2 fail_timeout=10s; # shaolin
        server 10.250.0.12:6443 max_fails=2 fail_timeout=10s; # emei
        server 10.250.0.13:6443 max_fails=2 fail_timeout=10s; # wudang
    }
    server {
        listen 0.0.0.0:8443;
        proxy_pass kube_apiserver;
    }
}
`

func (e *labEnv) setConfigMapServer(t *testing.T, name, key, server string) {
	e.cms[name].Data[key] = string(setServer(t, []byte(e.cms[name].Data[key]), server))
}

func setServer(t *testing.T, kubeconfig []byte, server string) []byte {
	t.Helper()
	out, _, err := certs.SetServer(kubeconfig, server)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lease(component, holder string) *coordinationv1.Lease {
	id := holder + "_b17a6069-f0d2-47d8-9c58-6927ed4dee4c"
	renew := metav1.NewMicroTime(testNow.Add(-2 * time.Second))
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: component, Namespace: "kube-system"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &id, RenewTime: &renew},
	}
}

// inputs starts the servers and returns what Collect gets.
func (e *labEnv) inputs(t *testing.T) Inputs {
	t.Helper()
	ca := testkit.KubeadmCA(t)
	notAfter := e.notAfter
	if notAfter.IsZero() {
		notAfter = certNotAfter
	}
	for _, m := range e.masters {
		api := &testkit.APIServer{Version: testkit.LabVersion}
		e.apiservers[m] = api
		e.net.ServeTLS(t, e.ips[m]+":6443", testkit.ServingCert(t, ca, e.certSpec(t, m), notAfter), api)
	}
	if e.lbFront != "" {
		e.net.ServeTLS(t, e.lbFront, testkit.ServingCert(t, ca, e.certSpec(t, "emei"), notAfter), &testkit.APIServer{Version: testkit.LabVersion})
	}
	// One certificate for every member, good for each member's address.
	etcdSpec := certs.Spec{CommonName: "etcd", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1).To4()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, ip := range e.ips {
		etcdSpec.IPs = append(etcdSpec.IPs, net.ParseIP(ip).To4())
	}
	etcdCA := e.etcdCA
	if etcdCA == nil {
		etcdCA = ca
	}
	e.etcd.start(t, e.net, testkit.ServingCert(t, etcdCA, etcdSpec, notAfter))

	var objs []runtime.Object
	objs = append(objs, objects(e.nodes...)...)
	objs = append(objs, objects(e.pods...)...)
	objs = append(objs, objects(e.leases...)...)
	for _, cm := range e.cms {
		objs = append(objs, cm)
	}
	e.kube = fake.NewClientset(objs...)
	hosts := map[string]node.Host{}
	for name, h := range e.hosts {
		hosts[name] = h
	}
	return Inputs{
		Kube: e.kube, Hosts: hosts, Unreachable: e.unreachable, Etcd: e.etcd.client(e.net),
		ProbeTimeout: 2 * time.Second, Now: func() time.Time { return testNow },
	}
}

// render is the table of a collected report without its wall time.
func render(t *testing.T, r *Report) []byte {
	t.Helper()
	r.Timing.WallMs = 0
	var b bytes.Buffer
	if err := Render(&b, r, FormatTable); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCollectSingleMasterLab(t *testing.T) {
	e := singleMasterEnv(t)
	r := Collect(t.Context(), e.inputs(t))
	want := []string{
		"etcd: 1 voting member(s), HA needs at least 3",
		"1 apiserver(s) ready, HA needs at least 3",
		"no controlPlaneEndpoint in kubeadm-config: clients can only use the first master",
		"1 control-plane node(s) (shaolin), HA needs at least 3",
	}
	if r.Verdict != VerdictSingleMaster || !slices.Equal(r.Reasons, want) || ExitCode(r) != ExitSingleMaster {
		t.Errorf("verdict %s (exit %d):\n  %s\nwant single-master:\n  %s", r.Verdict, ExitCode(r),
			strings.Join(r.Reasons, "\n  "), strings.Join(want, "\n  "))
	}
	if r.Endpoint != "" || r.Server != "https://10.250.0.11:6443" || r.FirstMaster != "shaolin" {
		t.Errorf("endpoint %q server %q first master %q", r.Endpoint, r.Server, r.FirstMaster)
	}
	if len(r.Kubeconfigs) != 6 {
		t.Errorf("kubeconfigs: want shaolin's four and the workers' kubelet.conf, got %+v", r.Kubeconfigs)
	}
	if len(r.APIServers) != 1 || len(r.APIServers[0].CertSANs) == 0 || r.APIServers[0].CertExpires != "2027-11-22T02:38:14Z" {
		t.Errorf("apiservers: %+v", r.APIServers)
	}
	if s := r.ConfigMaps[1].Signed; s == nil || !*s {
		t.Errorf("cluster-info of the lab is signed: %+v", r.ConfigMaps[1])
	}
	checkGolden(t, "collect-single-master.table", render(t, r))
}

func TestCollectHA(t *testing.T) {
	e := haEnv(t)
	r := Collect(t.Context(), e.inputs(t))
	if r.Verdict != VerdictHA || ExitCode(r) != ExitHA {
		t.Errorf("verdict %s, exit %d:\n  %s", r.Verdict, ExitCode(r), strings.Join(r.Reasons, "\n  "))
	}
	if len(r.LoadBalancers) != 1 || len(r.LoadBalancers[0].Backends) != 3 {
		t.Errorf("load balancers: %+v", r.LoadBalancers)
	}
	checkGolden(t, "collect-ha.table", render(t, r))

	// Every node's files were read once each (one ReadFiles batch: the
	// fake records a read per path), and nothing was run or written.
	for name, h := range e.hosts {
		reads := 0
		for _, c := range h.Calls() {
			switch c.Kind {
			case node.CallRead:
				reads++
			case node.CallDial:
			default:
				t.Errorf("%s: %s call %+v", name, c.Kind, c)
			}
		}
		if reads != len(statusFiles()) {
			t.Errorf("%s: %d reads, want each of the %d files once", name, reads, len(statusFiles()))
		}
	}
}

// TestCollectDeadNode powers wudang off: every probe of it hangs. The rest
// must still be reported, in about one probe timeout.
func TestCollectDeadNode(t *testing.T) {
	e := haEnv(t)
	in := e.inputs(t)
	in.ProbeTimeout = 500 * time.Millisecond
	e.net.Kill(e.ips["wudang"])
	delete(in.Hosts, "wudang")
	in.Unreachable["wudang"] = errors.New("node wudang: no connection within 5s: context deadline exceeded")
	for _, n := range e.nodes {
		if n.Name == "wudang" {
			n.Status.Conditions[len(n.Status.Conditions)-1].Status = corev1.ConditionUnknown
			if _, err := e.kube.CoreV1().Nodes().UpdateStatus(t.Context(), n, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := time.Now()
	r := Collect(t.Context(), in)
	took := time.Since(start)
	t.Logf("took %v; reasons:\n  %s", took, strings.Join(r.Reasons, "\n  "))
	if took > 3*in.ProbeTimeout {
		t.Errorf("Collect took %v with one dead node, want about one probe timeout (%v)", took, in.ProbeTimeout)
	}
	for _, want := range []string{
		"node wudang: not inspected (unreachable: no connection within 5s: context deadline exceeded)",
		"2 apiserver(s) ready, HA needs at least 3",
		"node wudang: control-plane node is not Ready",
	} {
		if !slices.Contains(r.Reasons, want) {
			t.Errorf("missing reason %q in\n  %s", want, strings.Join(r.Reasons, "\n  "))
		}
	}
	for _, prefix := range []string{
		// etcdm says how long the dead member was waited for.
		"etcd member wudang: unhealthy (no answer after ",
		"apiserver on wudang (https://10.250.0.13:6443): not ready (",
		"load balancer on emei: backend 10.250.0.13:6443 down (",
	} {
		if !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.HasPrefix(s, prefix) }) {
			t.Errorf("missing reason %q... in\n  %s", prefix, strings.Join(r.Reasons, "\n  "))
		}
	}
	if r.Verdict != VerdictDegraded || ExitCode(r) != ExitDegraded {
		t.Errorf("verdict %s exit %d", r.Verdict, ExitCode(r))
	}
	// wudang's apiserver was probed through another node.
	for _, a := range r.APIServers {
		if a.Node == "wudang" && (a.Via == "" || a.Via == "wudang") {
			t.Errorf("wudang probed via %q", a.Via)
		}
	}
	for _, k := range r.Kubeconfigs {
		if k.Node == "wudang" {
			t.Errorf("files of an unreachable node reported: %+v", k)
		}
	}
}

// TestCollectHalfPromoted is a promotion stopped before kubeadm-config got
// the endpoint: clients already use the load balancer on emei, which the
// report names, and the first master is still the one kubeadm init made.
func TestCollectHalfPromoted(t *testing.T) {
	e := haEnv(t)
	// kubeadm-config as kubeadm init wrote it, without the endpoint.
	e.cms["kubeadm-config"] = testkit.LabConfigMap(t, "kubeadm-config")
	r := Collect(t.Context(), e.inputs(t))
	if r.Verdict != VerdictDegraded || r.FirstMaster != "shaolin" || r.Server != "https://10.250.0.11:6443" {
		t.Fatalf("verdict %s, first master %q, server %q", r.Verdict, r.FirstMaster, r.Server)
	}
	for _, k := range r.Kubeconfigs {
		if k.File == "admin.conf" && k.Target != "lb/emei" {
			t.Errorf("%s on %s: target %q, want lb/emei", k.File, k.Node, k.Target)
		}
	}
	for _, want := range []string{
		"admin.conf on emei points at https://10.250.0.12:8443, want https://10.250.0.11:6443",
		"ConfigMap kube-system/kube-proxy (kubeconfig.conf) points at https://10.250.0.12:8443, want https://10.250.0.11:6443",
		"no controlPlaneEndpoint in kubeadm-config: clients can only use the first master",
	} {
		if !slices.Contains(r.Reasons, want) {
			t.Errorf("missing reason %q in\n  %s", want, strings.Join(r.Reasons, "\n  "))
		}
	}
}

// TestCollectNoAPI: the API refuses everything. etcd and SSH still tell
// which masters there are and whether their apiservers answer.
func TestCollectNoAPI(t *testing.T) {
	e := haEnv(t)
	in := e.inputs(t)
	e.kube.PrependReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	r := Collect(t.Context(), in)
	if r.API.Reachable || ExitCode(r) != ExitNoAPI || r.Verdict != VerdictDegraded {
		t.Errorf("API %+v, exit %d, verdict %s", r.API, ExitCode(r), r.Verdict)
	}
	if r.Reasons[0] != "kubernetes API: list nodes: connection refused" {
		t.Errorf("first reason %q", r.Reasons[0])
	}
	var ready []string
	for _, a := range r.APIServers {
		if a.Ready {
			ready = append(ready, a.Node)
		}
	}
	if !slices.Equal(ready, []string{"emei", "shaolin", "wudang"}) {
		t.Errorf("apiservers found through etcd: %+v", r.APIServers)
	}
}

// TestCollectUnlabelledMaster: a node that runs etcd and an apiserver but
// was never labelled is still judged as a master.
func TestCollectUnlabelledMaster(t *testing.T) {
	e := haEnv(t)
	for _, n := range e.nodes {
		if n.Name == "wudang" {
			delete(n.Labels, controlplane.Label)
			n.Spec.Taints = nil
		}
	}
	r := Collect(t.Context(), e.inputs(t))
	want := []string{
		"node wudang: runs control-plane components but lacks the label node-role.kubernetes.io/control-plane",
		"node wudang: control-plane node without the taint node-role.kubernetes.io/control-plane:NoSchedule",
	}
	if !slices.Equal(r.Reasons, want) {
		t.Errorf("reasons:\n  %s\nwant\n  %s", strings.Join(r.Reasons, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestCollectExpiredCerts: certificates are judged against the clock of
// the collection.
func TestCollectExpiredCerts(t *testing.T) {
	e := haEnv(t)
	in := e.inputs(t)
	in.Now = func() time.Time { return certNotAfter.Add(time.Hour) }
	r := Collect(t.Context(), in)
	want := []string{
		"apiserver certificate on emei: expired 2027-11-22T02:38:14Z",
		"apiserver certificate on shaolin: expired 2027-11-22T02:38:14Z",
		"apiserver certificate on wudang: expired 2027-11-22T02:38:14Z",
	}
	if r.Verdict != VerdictDegraded || !slices.Equal(r.Reasons, want) {
		t.Errorf("verdict %s:\n  %s", r.Verdict, strings.Join(r.Reasons, "\n  "))
	}
}

// TestCollectHAWithoutKubeProxy: a cluster that runs without kube-proxy
// (Cilium's replacement, kube-router, kubeadm's skipPhases addon/kube-proxy)
// has no kube-proxy ConfigMap; that is not a reason to call it degraded.
func TestCollectHAWithoutKubeProxy(t *testing.T) {
	e := haEnv(t)
	delete(e.cms, "kube-proxy")
	r := Collect(t.Context(), e.inputs(t))
	if r.Verdict != VerdictHA {
		t.Errorf("verdict %s, want ha:\n  %s", r.Verdict, strings.Join(r.Reasons, "\n  "))
	}
	var row *ConfigMap
	for i := range r.ConfigMaps {
		if r.ConfigMaps[i].Name == "kube-system/kube-proxy" {
			row = &r.ConfigMaps[i]
		}
	}
	if row == nil || !row.Absent || !row.OK || row.Error != "" {
		t.Errorf("kube-proxy row: %+v, want absent and ok", row)
	}
	if !strings.Contains(string(render(t, r)), "not present: no kube-proxy") {
		t.Errorf("table does not say kube-proxy is absent:\n%s", render(t, r))
	}
}

// A run that holds the haadm lock is shown, with how long it has run; the
// verdict does not change.
func TestCollectLocked(t *testing.T) {
	e := haEnv(t)
	id := `{"command":"promote","user":"root","host":"shaolin","pid":4242,"started":"2026-11-22T02:55:00Z"}`
	secs := int32(60)
	for _, tc := range []struct {
		name    string
		renewed time.Time
		stale   bool
	}{
		{"held", testNow.Add(-4 * time.Second), false},
		{"stale", testNow.Add(-2 * time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			renew := metav1.NewMicroTime(tc.renewed)
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "haadm-lock", Namespace: "kube-system"},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, RenewTime: &renew}}
			e.leases = append(e.leases[:2:2], l)
			r := Collect(t.Context(), e.inputs(t))
			want := &Lock{Holder: "`haadm promote` by root@shaolin (pid 4242)", Command: "promote", User: "root", Host: "shaolin", PID: 4242,
				Started: "2026-11-22T02:55:00Z", AgeSeconds: 300, RenewTime: rfc3339(tc.renewed), Stale: tc.stale}
			if r.Lock == nil || *r.Lock != *want {
				t.Errorf("lock %+v, want %+v", r.Lock, want)
			}
			if r.Verdict != VerdictHA {
				t.Errorf("verdict %s: %q", r.Verdict, r.Reasons)
			}
			line := "LOCK: held by `haadm promote` by root@shaolin (pid 4242) since 2026-11-22T02:55:00Z (5m0s), renewed " + rfc3339(tc.renewed)
			if tc.stale {
				line += "; stale: that run was probably killed or lost its connection"
			}
			if out := string(render(t, r)); !strings.Contains(out, line+"\n") {
				t.Errorf("table lacks %q:\n%s", line, out)
			}
		})
	}
}
