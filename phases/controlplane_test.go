package phases

import (
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

// cpPaths are the files control-plane writes on a new master, in order:
// kubeconfigs first, because the static pods read them as they start.
var cpPaths = []string{
	"/etc/kubernetes/controller-manager.conf",
	"/etc/kubernetes/scheduler.conf",
	"/etc/kubernetes/admin.conf",
	manifestsDir + "/kube-apiserver.yaml",
	manifestsDir + "/kube-controller-manager.yaml",
	manifestsDir + "/kube-scheduler.yaml",
}

// certifiedFixture is the lab after the certs phase: what control-plane
// and the later phases start from.
func certifiedFixture(t *testing.T, s setup) *fixture {
	t.Helper()
	f := newFixture(t, s)
	if err := (Certs{}).Apply(t.Context(), f.c); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestControlPlaneApply writes the static pods and kubeconfigs on emei and
// wudang and waits for each apiserver's /readyz, served over TLS with the
// certificate the certs phase gave that node, and verified like the real
// thing: against the cluster CA, for the node's IP.
func TestControlPlaneApply(t *testing.T) {
	f := certifiedFixture(t, setup{})
	ctx := testCtx(t, 30*time.Second)
	done, why, err := ControlPlane{}.Check(ctx, f.c)
	if err != nil || done {
		t.Fatalf("Check before Apply = %v, %q, %v", done, why, err)
	}
	var want []string
	for _, n := range []string{"emei", "wudang"} {
		for _, p := range cpPaths {
			want = append(want, n+":"+p)
		}
	}
	if why != strings.Join(want, ", ") {
		t.Errorf("Check why = %q, want %q", why, strings.Join(want, ", "))
	}

	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusOK)
	if err := (ControlPlane{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ node, ip string }{{"emei", emeiIP}, {"wudang", wudangIP}} {
		t.Run(tt.node, func(t *testing.T) {
			var writes []string
			for _, c := range f.fakes[tt.node].Calls() {
				if c.Kind == node.CallWrite && !strings.HasPrefix(c.Path, pkiDir) {
					writes = append(writes, c.Path)
					if c.Mode != 0o600 {
						t.Errorf("%s written with mode %04o, want 0600", c.Path, c.Mode)
					}
				}
			}
			if !slices.Equal(writes, cpPaths) {
				t.Errorf("writes = %v, want %v", writes, cpPaths)
			}
			// The manifests are exactly the golden ones the manifests
			// package derives from shaolin's (and checks against kubeadm's).
			for _, m := range []string{"kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"} {
				got, _ := f.file(tt.node, manifestsDir+"/"+m)
				golden, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "manifests", tt.node, m))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(golden) {
					t.Errorf("%s differs from the golden file:\n%s", m, manifests.Diff(golden, got))
				}
			}
			local := "https://" + tt.ip + ":6443"
			for _, kc := range []struct {
				path, server string
				spec         certs.Spec
			}{
				{"/etc/kubernetes/controller-manager.conf", local, certs.ControllerManager()},
				{"/etc/kubernetes/scheduler.conf", local, certs.Scheduler()},
				{"/etc/kubernetes/admin.conf", "https://10.250.0.12:8443", certs.Admin()},
			} {
				checkKubeconfig(t, f, tt.node, kc.path, kc.server, kc.spec)
			}
			if d := f.calls(tt.node, node.CallDial); !slices.Equal(d, []string{"tcp " + tt.ip + ":6443"}) {
				t.Errorf("dials from %s = %v: /readyz is asked from the node itself", tt.node, d)
			}
		})
	}
	mustContain(t, f.console.String(), "[control-plane] emei: kube-apiserver ready", "[control-plane] wudang: wrote /etc/kubernetes/admin.conf")
	if w := f.calls("shaolin", node.CallWrite); len(w) != 1 { // apiserver.crt, from the certs phase
		t.Errorf("control-plane wrote on shaolin: %v", w)
	}

	done, why, err = ControlPlane{}.Check(ctx, f.c)
	if err != nil || !done {
		t.Fatalf("Check after Apply = %v, %q, %v", done, why, err)
	}
	before := f.writes()
	if err := (ControlPlane{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	if after := f.writes(); !equalWrites(before, after) {
		t.Errorf("second Apply wrote files")
	}
}

// checkKubeconfig: a kubeconfig as kubeadm writes it, for server, whose
// embedded client certificate has spec's identity and is signed by the CA.
func checkKubeconfig(t *testing.T, f *fixture, nodeName, path, server string, spec certs.Spec) {
	t.Helper()
	b, _ := f.file(nodeName, path)
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	ctxName := spec.CommonName + "@kubernetes"
	if cfg.CurrentContext != ctxName {
		t.Errorf("%s: current context %q, want %q", path, cfg.CurrentContext, ctxName)
	}
	cl := cfg.Clusters["kubernetes"]
	if cl == nil || cl.Server != server || string(cl.CertificateAuthorityData) != string(f.lab.caPEM) {
		t.Fatalf("%s: cluster entry %+v, want server %s and the cluster CA", path, cl, server)
	}
	user := cfg.AuthInfos[spec.CommonName]
	if user == nil {
		t.Fatalf("%s: no user %s", path, spec.CommonName)
	}
	cert, err := certs.ParseCertPEM(user.ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	verifyChain(t, cert, f.lab.ca.Cert, x509.ExtKeyUsageClientAuth)
	if cert.Subject.CommonName != spec.CommonName || !slices.Equal(cert.Subject.Organization, spec.Organization) {
		t.Errorf("%s: subject %v, want CN=%s O=%v", path, cert.Subject, spec.CommonName, spec.Organization)
	}
	if !sameKey(keyOf(t, user.ClientKeyData), cert.PublicKey) {
		t.Errorf("%s: client key does not match the certificate", path)
	}
}

// TestControlPlaneRewritesWrongKubeconfig: a kubeconfig is judged by what it
// means (server, identity, CA), so one pointing elsewhere or signed by
// another CA is replaced, and a correct one is left alone.
func TestControlPlaneRewritesWrongKubeconfig(t *testing.T) {
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	ctx := testCtx(t, 30*time.Second)
	if err := (ControlPlane{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	// Scheduler pointed at shaolin (e.g. copied by hand); controller-manager
	// from shaolin, whose certificate the lab's old CA signed.
	sched, _ := f.file("emei", "/etc/kubernetes/scheduler.conf")
	moved, _, err := certs.SetServer(sched, "https://10.250.0.11:6443")
	if err != nil {
		t.Fatal(err)
	}
	f.setFile("emei", "/etc/kubernetes/scheduler.conf", moved)
	cm, _ := f.file("shaolin", "/etc/kubernetes/controller-manager.conf")
	cm, _, _ = certs.SetServer(cm, "https://10.250.0.12:6443")
	f.setFile("emei", "/etc/kubernetes/controller-manager.conf", cm)

	todo, err := controlPlaneTodo(t.Context(), f.c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"emei:/etc/kubernetes/controller-manager.conf", "emei:/etc/kubernetes/scheduler.conf"}
	if !slices.Equal(todo, want) {
		t.Fatalf("todo = %v, want %v", todo, want)
	}
	n := len(f.calls("emei", node.CallWrite))
	if err := (ControlPlane{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	if got := f.calls("emei", node.CallWrite)[n:]; !slices.Equal(got, want2paths(want)) {
		t.Errorf("rewrote %v, want %v", got, want2paths(want))
	}
	checkKubeconfig(t, f, "emei", "/etc/kubernetes/scheduler.conf", "https://10.250.0.12:6443", certs.Scheduler())
	checkKubeconfig(t, f, "emei", "/etc/kubernetes/controller-manager.conf", "https://10.250.0.12:6443", certs.ControllerManager())
}

func want2paths(todo []string) []string {
	var p []string
	for _, s := range todo {
		_, path, _ := strings.Cut(s, ":")
		p = append(p, path)
	}
	return p
}

// TestControlPlaneDryRun: through recorders, every file is planned with a
// diff that never shows key material, nothing is written, and nothing waits
// for an apiserver that was never started.
func TestControlPlaneDryRun(t *testing.T) {
	f := newFixture(t, setup{DryRun: true})
	if err := (ControlPlane{}).Apply(t.Context(), f.c); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"emei", "wudang"} {
		var paths []string
		for _, ch := range f.recs[n].Changes() {
			paths = append(paths, ch.Path)
			if ch.Kind != node.ChangeWrite || !ch.NewFile || ch.Mode != 0o600 {
				t.Errorf("%s: %+v", n, ch)
			}
			if strings.Contains(ch.Diff, "PRIVATE KEY") || strings.Contains(ch.Diff, "client-key-data: LS0t") {
				t.Errorf("%s: the plan shows key material for %s", n, ch.Path)
			}
		}
		if !slices.Equal(paths, cpPaths) {
			t.Errorf("%s: planned %v, want %v", n, paths, cpPaths)
		}
		if w := f.calls(n, node.CallWrite); len(w) != 0 {
			t.Errorf("%s: dry run wrote %v", n, w)
		}
		if d := f.calls(n, node.CallDial); len(d) != 0 {
			t.Errorf("%s: dry run dialled %v", n, d)
		}
	}
	if len(f.recs["shaolin"].Changes()) != 0 {
		t.Errorf("shaolin: %v", f.recs["shaolin"].Changes())
	}
}

// TestReadyz: the /readyz probe haadm waits on, against servers that answer
// well, badly, with a certificate for another name, or not at all.
func TestReadyz(t *testing.T) {
	f := certifiedFixture(t, setup{})
	// Before the certs phase, shaolin's certificate lacks the LB name;
	// keep one such certificate around to serve.
	stale := newFixture(t, setup{})
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusServiceUnavailable)
	stale.net = f.net // share the network
	stale.serveAPIServer("shaolin", emeiIP+":8443", http.StatusOK)
	f.serveAPIServer("shaolin", shaolinIP+":6443", http.StatusOK)

	for _, tt := range []struct {
		name        string
		via, addr   string
		server      string
		ok          bool
		why, errHas string
	}{
		{name: "ready", via: "emei", addr: emeiIP + ":6443", server: emeiIP, ok: true},
		{name: "not ready", via: "wudang", addr: wudangIP + ":6443", server: wudangIP, why: "/readyz 503: [-]etcd failed: reason withheld\nreadyz check failed"},
		{name: "certificate without that address", via: "emei", addr: emeiIP + ":8443", server: emeiIP, errHas: "x509: certificate is valid for"},
		{name: "verified by name through another node", via: "emei", addr: shaolinIP + ":6443", server: "kubernetes.default.svc", ok: true},
		{name: "nothing listening", via: "wudang", addr: "10.250.0.99:6443", server: "10.250.0.99", errHas: "connection refused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, why, err := f.c.readyz(t.Context(), tt.via, tt.addr, tt.server)
			if ok != tt.ok || why != tt.why || (err == nil) != (tt.errHas == "") || (err != nil && !strings.Contains(err.Error(), tt.errHas)) {
				t.Errorf("readyz = %v, %q, %v; want %v, %q, error with %q", ok, why, err, tt.ok, tt.why, tt.errHas)
			}
		})
	}
}

// TestControlPlaneWaitTimesOut: an apiserver that never gets ready makes
// Apply fail with where to look, once its deadline passes.
func TestControlPlaneWaitTimesOut(t *testing.T) {
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"wudang"}, LBNode: "emei"}})
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusServiceUnavailable)
	err := ControlPlane{}.Apply(testCtx(t, 500*time.Millisecond), f.c)
	if err == nil {
		t.Fatal("Apply succeeded with an apiserver that is never ready")
	}
	mustContain(t, err.Error(), "node wudang: timed out", "kube-apiserver ready", "/readyz 503", "crictl ps -a --name kube-apiserver")
	mustContain(t, f.detail.String(), "[control-plane] wudang: waiting for kube-apiserver ready: /readyz 503")
}
