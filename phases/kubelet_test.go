package phases

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/haadm/haadm/node"
)

// TestKubelet repoints the captured kubelet.conf files: the new masters' at
// their own apiserver, the worker wutai's at the load balancer; shaolin's
// already points at its own and is left alone. Each changed kubelet is
// restarted once, and the wait ends when the restarted kubelet renews its
// Lease (the fake `systemctl restart kubelet` does that, like the lab's).
func TestKubelet(t *testing.T) {
	f := newFixture(t, setup{Worker: true})
	f.renewLeaseOnRestart()
	ctx := testCtx(t, 30*time.Second)

	tasks, err := kubeletTasks(ctx, f.c)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range tasks {
		got = append(got, tk.node.Name+" -> "+tk.server)
	}
	want := []string{"emei -> https://10.250.0.12:6443", "wudang -> https://10.250.0.13:6443", "wutai -> https://10.250.0.12:8443"}
	if !slices.Equal(got, want) {
		t.Fatalf("tasks = %q, want %q", got, want)
	}
	done, why, err := Kubelet{}.Check(ctx, f.c)
	if err != nil || done || why != strings.Join(want, ", ") {
		t.Fatalf("Check before = %v, %q, %v", done, why, err)
	}
	orig := map[string][]byte{}
	for n := range f.fakes {
		orig[n], _ = f.file(n, kubeletConf)
	}

	if err := (Kubelet{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct{ node, server string }{
		{"emei", "https://10.250.0.12:6443"}, {"wudang", "https://10.250.0.13:6443"}, {"wutai", "https://10.250.0.12:8443"},
	} {
		t.Run(tt.node, func(t *testing.T) {
			b, mode := f.file(tt.node, kubeletConf)
			if mode != 0o600 {
				t.Errorf("kubelet.conf mode %04o, want 0600", mode)
			}
			cfg, err := clientcmd.Load(b)
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
			// Written, then restarted, once each.
			var seq []string
			for _, c := range f.fakes[tt.node].Calls() {
				switch c.Kind {
				case node.CallWrite:
					seq = append(seq, "write "+c.Path)
				case node.CallRun:
					seq = append(seq, c.Cmd)
				}
			}
			if w := []string{"write " + kubeletConf, "systemctl restart kubelet"}; !slices.Equal(seq, w) {
				t.Errorf("calls = %q, want %q", seq, w)
			}
		})
	}
	if c := f.fakes["shaolin"].Calls(); slices.ContainsFunc(c, func(c node.Call) bool { return c.Kind == node.CallRun || c.Kind == node.CallWrite }) {
		t.Errorf("shaolin's kubelet was touched: %v", f.calls("shaolin", node.CallRun))
	}
	if b, _ := f.file("shaolin", kubeletConf); !bytes.Equal(b, orig["shaolin"]) {
		t.Error("shaolin's kubelet.conf changed")
	}
	mustContain(t, f.console.String(), "[kubelet] wutai: kubelet.conf -> https://10.250.0.12:8443, kubelet restarted",
		"[kubelet] emei: node Ready after kubelet restart")

	done, why, err = Kubelet{}.Check(ctx, f.c)
	if err != nil || !done {
		t.Fatalf("Check after = %v, %q, %v", done, why, err)
	}
	before := f.writes()
	var restarts int
	for n := range f.fakes {
		restarts += len(f.calls(n, node.CallRun))
	}
	if err := (Kubelet{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	after := 0
	for n := range f.fakes {
		after += len(f.calls(n, node.CallRun))
	}
	if !equalWrites(before, f.writes()) || after != restarts {
		t.Errorf("second Apply wrote or restarted (restarts %d -> %d)", restarts, after)
	}
}

// TestKubeletWaitsForTheRestartedKubelet: a lease renewed before the
// restart does not count; Apply times out naming the node and why.
func TestKubeletWaitsForTheRestartedKubelet(t *testing.T) {
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.fakes["emei"].Respond("systemctl restart kubelet", "", nil) // a kubelet that never comes back
	f.fakes["wudang"].Respond("systemctl restart kubelet", "", nil)
	err := Kubelet{}.Apply(testCtx(t, 500*time.Millisecond), f.c)
	if err == nil {
		t.Fatal("Apply succeeded although the kubelet never renewed its lease")
	}
	mustContain(t, err.Error(), "node emei: timed out", "node Ready after kubelet restart", "has not renewed its lease yet")
	if got := f.calls("wudang", node.CallRun); len(got) != 0 {
		t.Errorf("wudang restarted while emei was not back: %v (one node at a time)", got)
	}
}

// TestNodeReadySince covers the wait condition's answers.
func TestNodeReadySince(t *testing.T) {
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

// TestKubeletErrors: a node without kubelet.conf is not joined, and a node
// without a connection cannot be repointed; both stop the phase before any
// change.
func TestKubeletErrors(t *testing.T) {
	f := newFixture(t, setup{Worker: true})
	f.fakes["wutai"].RemoveFile(kubeletConf)
	_, _, err := Kubelet{}.Check(t.Context(), f.c)
	if err == nil {
		t.Fatal("Check passed without wutai's kubelet.conf")
	}
	mustContain(t, err.Error(), "node wutai: /etc/kubernetes/kubelet.conf is missing")
	if err := (Kubelet{}).Apply(t.Context(), f.c); err == nil {
		t.Fatal("Apply passed without wutai's kubelet.conf")
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}

	g := newFixture(t, setup{Worker: true})
	delete(g.c.Hosts, "wutai")
	if _, err := kubeletTasks(t.Context(), g.c); err == nil || !strings.Contains(err.Error(), "node wutai: not connected") {
		t.Errorf("without a connection to wutai: %v", err)
	}
}

// TestKubeletDryRun records the writes and restarts and waits for nothing.
func TestKubeletDryRun(t *testing.T) {
	f := newFixture(t, setup{Worker: true, DryRun: true})
	if err := (Kubelet{}).Apply(testCtx(t, 10*time.Second), f.c); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"emei", "wudang", "wutai"} {
		var got []string
		for _, ch := range f.recs[n].Changes() {
			got = append(got, string(ch.Kind)+" "+ch.Path+ch.Cmd)
		}
		if w := []string{"write " + kubeletConf, "run systemctl restart kubelet"}; !slices.Equal(got, w) {
			t.Errorf("%s: changes %q, want %q", n, got, w)
		}
		if len(f.calls(n, node.CallRun)) != 0 || len(f.calls(n, node.CallWrite)) != 0 {
			t.Errorf("%s: dry run touched the node", n)
		}
	}
	if len(f.recs["shaolin"].Changes()) != 0 {
		t.Errorf("shaolin: %v", f.recs["shaolin"].Changes())
	}
}

// TestKubeletTargets: where each kubelet is pointed, per LB mode: masters
// always at their own apiserver, workers at the endpoint.
func TestKubeletTargets(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want []string
	}{
		{Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei"},
			[]string{"emei -> https://10.250.0.12:6443", "wudang -> https://10.250.0.13:6443", "wutai -> https://10.250.0.12:8443"}},
		{Options{Nodes: []string{"emei", "wudang"}, LBMode: "node-local"},
			[]string{"emei -> https://10.250.0.12:6443", "wudang -> https://10.250.0.13:6443", "wutai -> https://localhost:6444"}},
		{Options{Nodes: []string{"emei"}, LBMode: "none", Endpoint: "k8s-api.lab:6443"},
			[]string{"emei -> https://10.250.0.12:6443", "wudang -> https://k8s-api.lab:6443", "wutai -> https://k8s-api.lab:6443"}},
	} {
		f := newFixture(t, setup{Worker: true, Opts: tt.opts})
		done, why, err := Kubelet{}.Check(t.Context(), f.c)
		if err != nil || done || why != strings.Join(tt.want, ", ") {
			t.Errorf("%s mode: Check = %v, %q, %v; want %q", f.c.Opts.LBMode, done, why, err, strings.Join(tt.want, ", "))
		}
	}
}
