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
	if err := apply(t.Context(), Certs{}, f.c); err != nil {
		t.Fatal(err)
	}
	return f
}

// plannedFiles lists the files a plan writes, as "node:path", from the
// details (each starts with "path: why").
func plannedFiles(w *Work) []string {
	var out []string
	for _, s := range w.Steps {
		for _, d := range s.Details {
			first, _, _ := strings.Cut(d, "\n")
			path, _, _ := strings.Cut(first, ": ")
			out = append(out, s.Node+":"+path)
		}
	}
	return out
}

// TestControlPlaneApply writes the static pods and kubeconfigs on emei and
// wudang and waits for each apiserver's /readyz, served over TLS with the
// certificate the certs phase gave that node, and verified like the real
// thing: against the cluster CA, for the node's IP. Each node's etcd member
// has started (a fake etcd says so: no unit test can start one).
func TestControlPlaneApply(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{})
	f.useFakeEtcd(labVoters()...)
	ctx := testCtx(t, 30*time.Second)
	w := plan(t, ctx, ControlPlane{}, f.c)
	if !w.PerNode {
		t.Error("new masters' first apiservers, which nothing uses yet, start one at a time")
	}
	if got, want := stepsOf(w), []string{
		"emei: 6 files (controller-manager.conf, scheduler.conf, admin.conf, and 3 more)", "emei: kube-apiserver ready (wait)",
		"wudang: 6 files (controller-manager.conf, scheduler.conf, admin.conf, and 3 more)", "wudang: kube-apiserver ready (wait)",
	}; !slices.Equal(got, want) {
		t.Errorf("steps:\n got %q\nwant %q", got, want)
	}
	var want []string
	for _, n := range []string{"emei", "wudang"} {
		for _, p := range cpPaths {
			want = append(want, n+":"+p)
		}
	}
	if got := plannedFiles(w); !slices.Equal(got, want) {
		t.Errorf("planned files:\n got %q\nwant %q", got, want)
	}

	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusOK)
	if err := w.apply(ctx, "control-plane", f.c.Log); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ node, ip string }{{"emei", emeiIP}, {"wudang", wudangIP}} {
		t.Run(tt.node, func(t *testing.T) {
			var writes []string
			for _, c := range f.fakes[tt.node].Calls() {
				if c.Kind == node.CallWrite && !strings.HasPrefix(c.Path, pkiDir) {
					writes = append(writes, c.Path)
					if c.Mode != 0o600 || c.UID != 0 || c.GID != 0 {
						t.Errorf("%s written with mode %04o owner %d:%d, want 0600 root", c.Path, c.Mode, c.UID, c.GID)
					}
				}
			}
			if !slices.Equal(writes, cpPaths) {
				t.Errorf("writes = %v, want %v", writes, cpPaths)
			}
			// certs wrote once, control-plane once: all six files in one batch.
			if got := f.meters[tt.node].counts()["WriteFiles"]; got != 2 {
				t.Errorf("%d WriteFiles, want one for the certificates and one for the six files", got)
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
	mustContain(t, f.console.String(), "[control-plane] emei: kube-apiserver ready (",
		"[control-plane] wudang: 6 files (controller-manager.conf, scheduler.conf, admin.conf, and 3 more) (")
	if w := f.calls("shaolin", node.CallWrite); len(w) != 1 { // apiserver.crt, from the certs phase
		t.Errorf("control-plane wrote on shaolin: %v", w)
	}

	done, why, err := check(ctx, ControlPlane{}, f.c)
	if err != nil || !done {
		t.Fatalf("plan after apply = %v, %q, %v", done, why, err)
	}
	before := f.writes()
	if err := apply(ctx, ControlPlane{}, f.c); err != nil {
		t.Fatal(err)
	}
	if after := f.writes(); !equalWrites(before, after) {
		t.Errorf("second apply wrote files")
	}

	// A manifest that drifted is rewritten, which restarts a running
	// apiserver: one node at a time.
	f.fakes["wudang"].SetFile(manifestsDir+"/kube-apiserver.yaml", []byte("drifted"), 0o600)
	if w := plan(t, ctx, ControlPlane{}, f.c); w.PerNode || len(w.Steps) != 2 {
		t.Errorf("rewriting wudang's running apiserver: PerNode %v, steps %q", w.PerNode, stepsOf(w))
	}
}

// TestControlPlaneNeedsLocalMember: an apiserver talks to its own etcd
// member, so without a started one nothing is written (here the real etcd
// has only shaolin).
func TestControlPlaneNeedsLocalMember(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.startEtcd()
	before := f.writes()
	err := apply(testCtx(t, 30*time.Second), ControlPlane{}, f.c)
	if err == nil {
		t.Fatal("control-plane applied without a started etcd member on emei")
	}
	mustContain(t, err.Error(), "node emei: 6 files", "node emei has no started etcd member for its apiserver", "run `haadm phase etcd` first", "nothing was written")
	if !equalWrites(before, f.writes()) {
		t.Errorf("wrote %v", f.writes())
	}
	mustContain(t, f.console.String(), "[control-plane] emei: 6 files (controller-manager.conf, scheduler.conf, admin.conf, and 3 more): FAILED")
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
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.useFakeEtcd(labVoters()...)
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	ctx := testCtx(t, 30*time.Second)
	if err := apply(ctx, ControlPlane{}, f.c); err != nil {
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

	todo := plannedFiles(plan(t, ctx, ControlPlane{}, f.c))
	want := []string{"emei:/etc/kubernetes/controller-manager.conf", "emei:/etc/kubernetes/scheduler.conf"}
	if !slices.Equal(todo, want) {
		t.Fatalf("todo = %v, want %v", todo, want)
	}
	n := len(f.calls("emei", node.CallWrite))
	if err := apply(ctx, ControlPlane{}, f.c); err != nil {
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

// TestControlPlanePlan: on the fresh lab every file is planned with a diff
// that never shows key material; planning writes nothing, dials no
// apiserver, and reads each new master in one round trip.
func TestControlPlanePlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	w := plan(t, t.Context(), ControlPlane{}, f.c)
	var want []string
	for _, n := range []string{"emei", "wudang"} {
		for _, p := range cpPaths {
			want = append(want, n+":"+p)
		}
	}
	if got := plannedFiles(w); !slices.Equal(got, want) {
		t.Errorf("planned %v, want %v", got, want)
	}
	for _, n := range []string{"emei", "wudang"} {
		d := detailsOf(w, n)
		noKeyMaterial(t, n+"'s plan", d)
		// New files, each a diff from nothing; kubeconfig keys redacted.
		mustContain(t, d, "/etc/kubernetes/admin.conf: to write\n--- /dev/null (new file)\n+++ b/etc/kubernetes/admin.conf",
			"+    client-key-data: (redacted, sha256:", "+    - --advertise-address="+map[string]string{"emei": emeiIP, "wudang": wudangIP}[n])
	}
	f.unchanged(t)
	for n := range f.fakes {
		if d := f.calls(n, node.CallDial); len(d) != 0 {
			t.Errorf("%s: planning dialled %v", n, d)
		}
	}
	for n, want := range map[string]int{"shaolin": 1, "emei": 1, "wudang": 1} {
		if got := f.meters[n].counts(); got["ReadFiles"] != want || f.trips(n) != want {
			t.Errorf("%s: %v, want %d ReadFiles and nothing else", n, got, want)
		}
	}
}

// TestReadyz: the /readyz probe haadm waits on, against servers that answer
// well, badly, with a certificate for another name, or not at all.
func TestReadyz(t *testing.T) {
	t.Parallel()
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
		{name: "not ready", via: "wudang", addr: wudangIP + ":6443", server: wudangIP, errHas: "readyz: HTTP 503: etcd failed: reason withheld"},
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
// the phase fail with where to look, once its deadline passes.
func TestControlPlaneWaitTimesOut(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"wudang"}, LBNode: "emei"}})
	f.useFakeEtcd(labVoters()...)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusServiceUnavailable)
	// Planning issues certificates, slow on a busy machine: only the wait
	// is bounded.
	err := plan(t, t.Context(), ControlPlane{}, f.c).apply(testCtx(t, 500*time.Millisecond), "control-plane", f.c.Log)
	if err == nil {
		t.Fatal("apply succeeded with an apiserver that is never ready")
	}
	mustContain(t, err.Error(), "node wudang: kube-apiserver ready: timed out", "waiting for kube-apiserver ready", "readyz: HTTP 503: etcd failed", "crictl ps -a --name kube-apiserver")
	mustContain(t, f.detail.String(), "[control-plane] wudang: waiting for kube-apiserver ready: readyz: HTTP 503")
	mustContain(t, f.console.String(), "[control-plane] wudang: kube-apiserver ready: FAILED")
}
