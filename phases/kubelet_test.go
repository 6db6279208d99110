package phases

import (
	"bytes"
	"io/fs"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

// kubeletStep is what the plan says for a kubelet pointed at server.
func kubeletStep(nodeName, server string) string {
	return nodeName + ": kubelet.conf -> " + server + ", kubelet restarted, node Ready"
}

// TestKubelet repoints the captured kubelet.conf files: the new masters' at
// their own apiserver, the worker wutai's at the load balancer; shaolin's
// already points at its own and is left alone. Each changed kubelet is
// restarted once, after its new server answered from the node, and the
// wait ends when the restarted kubelet renews its Lease (the fake
// `systemctl restart kubelet` does that, like the lab's).
func TestKubelet(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Worker: true})
	f.renewLeaseOnRestart()
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusOK)
	f.serveAPIServer("shaolin", emeiIP+":8443", http.StatusOK) // the LB, forwarding to shaolin
	// wutai's kubelet.conf is kept with a mode of its own.
	wutaiConf, _ := f.file("wutai", kubeletConf)
	f.fakes["wutai"].SetFiles(node.File{Path: kubeletConf, Data: wutaiConf, Mode: 0o640, GID: 4})
	ctx := testCtx(t, 30*time.Second)

	w := plan(t, ctx, Kubelet{}, f.c)
	want := []string{kubeletStep("emei", "https://10.250.0.12:6443"), kubeletStep("wudang", "https://10.250.0.13:6443"), kubeletStep("wutai", "https://10.250.0.12:8443")}
	if got := stepsOf(w); !slices.Equal(got, want) {
		t.Fatalf("plan = %q, want %q", got, want)
	}
	if w.PerNode {
		t.Error("kubelets restart one node at a time")
	}
	orig := map[string][]byte{}
	for n := range f.fakes {
		orig[n], _ = f.file(n, kubeletConf)
	}

	if err := w.apply(ctx, "kubelet", f.c.Log); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		node, server string
		mode         fs.FileMode
		gid          int
	}{
		{"emei", "https://10.250.0.12:6443", 0o600, 0}, {"wudang", "https://10.250.0.13:6443", 0o600, 0}, {"wutai", "https://10.250.0.12:8443", 0o640, 4},
	} {
		t.Run(tt.node, func(t *testing.T) {
			st, _ := f.fakes[tt.node].Stat(kubeletConf)
			if st.Mode != tt.mode || st.UID != 0 || st.GID != tt.gid {
				t.Errorf("kubelet.conf mode %04o owner %s, want %04o 0:%d as it was", st.Mode, st.Owner(), tt.mode, tt.gid)
			}
			cfg, err := clientcmd.Load(st.Data)
			if err != nil {
				t.Fatal(err)
			}
			// Only the server changed: the CA and the file references to
			// the rotating client certificate stay.
			old, _ := clientcmd.Load(orig[tt.node])
			for name, cl := range old.Clusters {
				cl.Server = tt.server
				if !reflect.DeepEqual(cfg.Clusters[name], cl) {
					t.Errorf("cluster %s = %+v, want %+v", name, cfg.Clusters[name], cl)
				}
			}
			if u := cfg.AuthInfos["default-auth"]; u == nil || u.ClientCertificate != "/var/lib/kubelet/pki/kubelet-client-current.pem" {
				t.Errorf("user = %+v", u)
			}
			if cfg.CurrentContext != old.CurrentContext {
				t.Errorf("current context %q, was %q", cfg.CurrentContext, old.CurrentContext)
			}
			// Proved, written, then restarted, once each.
			var seq []string
			for _, c := range f.fakes[tt.node].Calls() {
				switch {
				case c.Kind == node.CallWrite && !strings.HasPrefix(c.Path, pkiDir):
					seq = append(seq, "write "+c.Path)
				case c.Kind == node.CallRun:
					seq = append(seq, c.Cmd)
				case c.Kind == node.CallDial:
					seq = append(seq, "dial")
				}
			}
			if w := []string{"dial", "write " + kubeletConf, "systemctl restart kubelet"}; !slices.Equal(seq, w) {
				t.Errorf("calls = %q, want %q", seq, w)
			}
		})
	}
	if c := f.fakes["shaolin"].Calls(); slices.ContainsFunc(c, func(c node.Call) bool {
		return c.Kind == node.CallRun || (c.Kind == node.CallWrite && c.Path == kubeletConf)
	}) {
		t.Errorf("shaolin's kubelet was touched: %v", f.calls("shaolin", node.CallRun))
	}
	if b, _ := f.file("shaolin", kubeletConf); !bytes.Equal(b, orig["shaolin"]) {
		t.Error("shaolin's kubelet.conf changed")
	}
	mustContain(t, f.console.String(), "[kubelet] wutai: kubelet.conf -> https://10.250.0.12:8443, kubelet restarted, node Ready (")

	done, why, err := check(ctx, Kubelet{}, f.c)
	if err != nil || !done {
		t.Fatalf("plan after = %v, %q, %v", done, why, err)
	}
	before := f.writes()
	var restarts int
	for n := range f.fakes {
		restarts += len(f.calls(n, node.CallRun))
	}
	if err := apply(ctx, Kubelet{}, f.c); err != nil {
		t.Fatal(err)
	}
	after := 0
	for n := range f.fakes {
		after += len(f.calls(n, node.CallRun))
	}
	if !equalWrites(before, f.writes()) || after != restarts {
		t.Errorf("second apply wrote or restarted (restarts %d -> %d)", restarts, after)
	}
}

// TestKubeletWaitsForTheRestartedKubelet: a lease renewed before the
// restart does not count; the phase times out naming the node and why.
func TestKubeletWaitsForTheRestartedKubelet(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.fakes["emei"].Respond("systemctl restart kubelet", "", nil) // a kubelet that never comes back
	f.fakes["wudang"].Respond("systemctl restart kubelet", "", nil)
	err := plan(t, t.Context(), Kubelet{}, f.c).apply(testCtx(t, 500*time.Millisecond), "kubelet", f.c.Log)
	if err == nil {
		t.Fatal("apply succeeded although the kubelet never renewed its lease")
	}
	mustContain(t, err.Error(), "node emei: kubelet.conf -> https://10.250.0.12:6443", "timed out", "node Ready after kubelet restart", "has not renewed its lease yet")
	if got := f.calls("wudang", node.CallRun); len(got) != 0 {
		t.Errorf("wudang restarted while emei was not back: %v (one node at a time)", got)
	}
}

// TestKubeletProvesTheWayFirst: a kubelet pointed at an address it cannot
// reach leaves its node NotReady, so a server that does not answer from the
// node leaves kubelet.conf as it was and the kubelet running.
func TestKubeletProvesTheWayFirst(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.renewLeaseOnRestart()
	before, _ := f.file("emei", kubeletConf)
	err := apply(testCtx(t, 10*time.Second), Kubelet{}, f.c)
	if err == nil {
		t.Fatal("kubelet repointed at an apiserver that does not answer")
	}
	mustContain(t, err.Error(), "node emei: ", "https://10.250.0.12:6443 does not answer from this node", "connection refused", "kubelet.conf left as it was")
	if after, _ := f.file("emei", kubeletConf); !bytes.Equal(after, before) {
		t.Error("kubelet.conf changed")
	}
	if got := f.calls("emei", node.CallRun); len(got) != 0 {
		t.Errorf("emei ran %q", got)
	}
}

// TestNodeReadySince covers the wait condition's answers.
func TestNodeReadySince(t *testing.T) {
	t.Parallel()
	restart := time.Now()
	for _, tt := range []struct {
		name    string
		status  corev1.ConditionStatus // "" drops the Ready condition
		renewed time.Time
		ok      bool
		why     string
	}{
		{"renewed after the restart", corev1.ConditionTrue, restart.Add(time.Second), true, ""},
		{"lease from before the restart", corev1.ConditionTrue, restart.Add(-time.Second), false, "the restarted kubelet has not renewed its lease yet"},
		{"not ready", corev1.ConditionFalse, restart.Add(time.Second), false, "Ready=False: PLEG is not healthy"},
		{"no Ready condition", "", restart.Add(time.Second), false, "no Ready condition"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			renewed := metav1.NewMicroTime(tt.renewed)
			f := newFixture(t, setup{EditNodes: func(n map[string]*corev1.Node) {
				var conds []corev1.NodeCondition
				for _, c := range n["emei"].Status.Conditions {
					if c.Type == corev1.NodeReady {
						if tt.status == "" {
							continue
						}
						c.Status, c.Message = tt.status, "PLEG is not healthy"
					}
					conds = append(conds, c)
				}
				n["emei"].Status.Conditions = conds
			}})
			l, _ := f.kube.CoordinationV1().Leases("kube-node-lease").Get(t.Context(), "emei", metav1.GetOptions{})
			l.Spec.RenewTime = &renewed
			if _, err := f.kube.CoordinationV1().Leases("kube-node-lease").Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			ok, why, err := nodeReadySince(t.Context(), f.c, "emei", restart)
			if err != nil || ok != tt.ok || why != tt.why {
				t.Errorf("= %v, %q, %v; want %v, %q", ok, why, err, tt.ok, tt.why)
			}
		})
	}
}

// TestKubeletErrors: a worker without kubelet.conf is not joined; it is
// reported and left for a re-run, while the control plane's kubelets are
// still handled; a master without one stops the phase before any change.
func TestKubeletErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true})
	f.fakes["wutai"].RemoveFile(kubeletConf)
	_, why, err := check(t.Context(), Kubelet{}, f.c)
	if err != nil {
		t.Fatalf("a worker's missing kubelet.conf stopped the plan: %v", err)
	}
	mustContain(t, why, "wutai: kubelet.conf: cannot be planned: node wutai: /etc/kubernetes/kubelet.conf is missing: is this node joined?")
	f.fakes["emei"].RemoveFile(kubeletConf)
	if _, _, err := check(t.Context(), Kubelet{}, f.c); err == nil {
		t.Fatal("plan passed without emei's (a new master's) kubelet.conf")
	} else {
		mustContain(t, err.Error(), "node emei: /etc/kubernetes/kubelet.conf is missing")
	}
	if err := apply(t.Context(), Kubelet{}, f.c); err == nil {
		t.Fatal("apply passed without emei's kubelet.conf")
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}

	g := newFixture(t, setup{Worker: true})
	delete(g.c.Hosts, "emei")
	if _, _, err := check(t.Context(), Kubelet{}, g.c); err == nil || !strings.Contains(err.Error(), "node emei: not connected") {
		t.Errorf("without a connection to emei: %v", err)
	}
}

// TestKubeletPlan: the plan shows each kubelet.conf's diff and the restart,
// and neither writes, restarts nor dials anything.
func TestKubeletPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true})
	w := plan(t, testCtx(t, 10*time.Second), Kubelet{}, f.c)
	if got, want := stepsOf(w), []string{kubeletStep("emei", "https://10.250.0.12:6443"), kubeletStep("wudang", "https://10.250.0.13:6443"),
		kubeletStep("wutai", "https://10.250.0.12:8443")}; !slices.Equal(got, want) {
		t.Errorf("plan = %q, want %q", got, want)
	}
	for _, s := range w.Steps {
		want := map[string]string{"emei": "https://10.250.0.12:6443", "wudang": "https://10.250.0.13:6443", "wutai": "https://10.250.0.12:8443"}[s.Node]
		if len(s.Details) != 2 || s.Details[1] != "systemctl restart kubelet" {
			t.Errorf("%s: details %q", s.Node, s.Details)
			continue
		}
		mustContain(t, s.Details[0], kubeletConf+": repoint\n--- a"+kubeletConf+"\n+++ b"+kubeletConf,
			"-    server: https://10.250.0.11:6443\n", "+    server: "+want+"\n")
	}
	f.unchanged(t)
	for n := range f.fakes {
		if d := f.calls(n, node.CallDial); len(d) != 0 {
			t.Errorf("%s: planning dialled %v", n, d)
		}
		if got := f.meters[n].counts(); got["ReadFiles"] != 1 || f.trips(n) != 1 {
			t.Errorf("%s: %v, want one ReadFiles", n, got)
		}
	}
}

// TestKubeletTargets: where each kubelet is pointed, per LB mode: masters
// always at their own apiserver, workers at the endpoint.
func TestKubeletTargets(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts Options
		want []string
	}{
		{Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei"},
			[]string{kubeletStep("emei", "https://10.250.0.12:6443"), kubeletStep("wudang", "https://10.250.0.13:6443"), kubeletStep("wutai", "https://10.250.0.12:8443")}},
		{Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeNodeLocal},
			[]string{kubeletStep("emei", "https://10.250.0.12:6443"), kubeletStep("wudang", "https://10.250.0.13:6443"), kubeletStep("wutai", "https://localhost:6444")}},
		{Options{Nodes: []string{"emei"}, LBMode: lb.ModeNone, Endpoint: "k8s-api.lab:6443"},
			[]string{kubeletStep("emei", "https://10.250.0.12:6443"), kubeletStep("wudang", "https://k8s-api.lab:6443"), kubeletStep("wutai", "https://k8s-api.lab:6443")}},
	} {
		f := newFixture(t, setup{Worker: true, Opts: tt.opts})
		done, why, err := check(t.Context(), Kubelet{}, f.c)
		if err != nil || done || why != strings.Join(tt.want, ", ") {
			t.Errorf("%s mode: plan = %v, %q, %v; want %q", f.c.Opts.LBMode, done, why, err, strings.Join(tt.want, ", "))
		}
	}
}

// TestKubeletWorkerLeftForARerun: a worker that cannot reach the endpoint
// (a firewall on the LB port) keeps its kubelet.conf and is left for a
// re-run; the masters' kubelets are done all the same, and first.
func TestKubeletWorkerLeftForARerun(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Worker: true})
	f.renewLeaseOnRestart()
	f.serveAPIServer("emei", emeiIP+":6443", http.StatusOK)
	f.serveAPIServer("wudang", wudangIP+":6443", http.StatusOK)
	// No LB answers at emei:8443, from wutai or anywhere.
	before, _ := f.file("wutai", kubeletConf)
	ctx := testCtx(t, 30*time.Second)
	w := plan(t, ctx, Kubelet{}, f.c)
	if s := w.Steps[len(w.Steps)-1]; s.Node != "wutai" || !s.Batch || !s.Optional {
		t.Fatalf("the worker's step: %+v, want it last, batched and optional", s)
	}
	if err := w.apply(ctx, "kubelet", f.c.Log); err != nil {
		t.Fatalf("a worker stopped the phase: %v", err)
	}
	if len(w.Left) != 1 || !strings.Contains(w.Left[0], "node wutai: ") || !strings.Contains(w.Left[0], "https://10.250.0.12:8443 does not answer from this node") {
		t.Errorf("left for a re-run: %q", w.Left)
	}
	if after, _ := f.file("wutai", kubeletConf); !bytes.Equal(after, before) {
		t.Error("wutai's kubelet.conf changed")
	}
	for _, n := range []string{"emei", "wudang"} {
		if got := server(t, f, n); got != "https://10.250.0.1"+map[string]string{"emei": "2", "wudang": "3"}[n]+":6443" {
			t.Errorf("%s's kubelet.conf: %s", n, got)
		}
	}
}

func server(t *testing.T, f *fixture, n string) string {
	t.Helper()
	b, _ := f.file(n, kubeletConf)
	s, err := certs.Server(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
