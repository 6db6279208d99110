package phases

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// stubPhase is a phase whose answers a test sets. Calls go to a shared
// journal so tests can check the order the runner calls phases in.
type stubPhase struct {
	name     string
	done     bool
	why      string
	checkErr error
	applyErr error
	journal  *[]string
}

func (p *stubPhase) Name() string        { return p.name }
func (p *stubPhase) Description() string { return "stub " + p.name }
func (p *stubPhase) Check(context.Context, *Cluster) (bool, string, error) {
	*p.journal = append(*p.journal, "check "+p.name)
	return p.done, p.why, p.checkErr
}
func (p *stubPhase) Apply(context.Context, *Cluster) error {
	*p.journal = append(*p.journal, "apply "+p.name)
	if p.applyErr == nil {
		p.done, p.why = true, ""
	}
	return p.applyErr
}

// TestRun drives the runner with stub phases around the real Backup (a stub
// named "preflight" stands in for the real one, which Run would otherwise
// put first). Backup runs, through dry-run recorders, only when a later
// phase has work.
func TestRun(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		later   []*stubPhase // after preflight and backup
		journal []string
		backup  bool // backup ran
		err     []string
		console []string
		detail  []string
	}{
		{
			name:    "converged: backup skipped, later phases checked once and reported done",
			later:   []*stubPhase{{name: "a", done: true}, {name: "b", done: true}},
			journal: []string{"check preflight", "apply preflight", "check a", "check b"},
			console: []string{"[backup] skipped: nothing to change", "[a] already done", "[b] already done", "[promote] finished"},
		},
		{
			name:    "one phase pending: backup first, then only that phase applies",
			later:   []*stubPhase{{name: "a", done: true}, {name: "b", why: "2 files differ"}},
			journal: []string{"check preflight", "apply preflight", "check a", "check b", "check a", "check b", "apply b"},
			backup:  true,
			console: []string{"[a] already done", "[b] done", "[promote] finished"},
			detail:  []string{"[backup] later phases have work: b: 2 files differ", "[b] to do: 2 files differ"},
		},
		{
			// A check that cannot tell yet (it needs an earlier phase's
			// work) counts as pending, so the backup is taken.
			name:    "a failing check counts as pending for the backup",
			later:   []*stubPhase{{name: "a", checkErr: errors.New("etcd unreachable")}},
			journal: []string{"check preflight", "apply preflight", "check a", "check a"},
			backup:  true,
			detail:  []string{"[backup] later phases have work: a: etcd unreachable"},
			err:     []string{"phase a: etcd unreachable"},
		},
		{
			name:    "a failing apply stops the run and says how to resume",
			later:   []*stubPhase{{name: "a", why: "todo", applyErr: boom}, {name: "b"}},
			journal: []string{"check preflight", "apply preflight", "check a", "check b", "check a", "apply a"},
			backup:  true,
			err:     []string{"phase a: boom", "re-run the same command to resume"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, setup{DryRun: true})
			var journal []string
			list := []Phase{&stubPhase{name: "preflight", journal: &journal}, Backup{}}
			for _, p := range tt.later {
				p.journal = &journal
				list = append(list, p)
			}
			err := Run(t.Context(), f.c, list)
			if tt.err == nil && err != nil {
				t.Fatal(err)
			}
			if tt.err != nil {
				if err == nil {
					t.Fatal("Run succeeded")
				}
				mustContain(t, err.Error(), tt.err...)
			}
			if !slices.Equal(journal, tt.journal) {
				t.Errorf("calls:\n got %q\nwant %q", journal, tt.journal)
			}
			ran := len(f.recs["shaolin"].Changes()) > 0
			if ran != tt.backup {
				t.Errorf("backup ran = %v, want %v", ran, tt.backup)
			}
			if tt.backup && (len(f.c.Plan.Items) != 1 || !strings.HasPrefix(f.c.Plan.Items[0].What, "etcd snapshot")) {
				t.Errorf("plan = %+v", f.c.Plan.Items)
			}
			mustContain(t, f.console.String(), tt.console...)
			mustContain(t, f.detail.String(), tt.detail...)
		})
	}
}

// TestPendingAfter: pending phases are listed with their reason, a check
// error with its message; pendingAfter itself never fails.
func TestPendingAfter(t *testing.T) {
	var j []string
	pending, err := pendingAfter(t.Context(), nil, []Phase{
		&stubPhase{name: "certs", done: true, journal: &j},
		&stubPhase{name: "etcd", checkErr: errors.New("dial tcp 10.250.0.11:2379: connection refused"), journal: &j},
		&stubPhase{name: "mark", why: "emei, wudang", journal: &j},
		&stubPhase{name: "lb", why: "nginx down", checkErr: errors.New("ignored: why wins"), journal: &j},
	})
	want := []string{"etcd: dial tcp 10.250.0.11:2379: connection refused", "mark: emei, wudang", "lb: nginx down"}
	if err != nil || !slices.Equal(pending, want) {
		t.Errorf("pendingAfter = %q, %v; want %q", pending, err, want)
	}
	if len(j) != 4 || slices.Contains(j, "apply certs") {
		t.Errorf("pendingAfter called %v; it must only check", j)
	}
}

// TestRunPutsPreflightFirst: whatever is asked, preflight runs first and a
// failing one stops everything before any change.
func TestRunPutsPreflightFirst(t *testing.T) {
	f := newFixture(t, setup{})
	f.fakes["emei"].Respond("ip -o addr show", "2: eth0    inet 192.0.2.1/24 scope global eth0\n", nil)
	var j []string
	err := Run(t.Context(), f.c, []Phase{&stubPhase{name: "mark", why: "todo", journal: &j}})
	if err == nil {
		t.Fatal("Run succeeded with a failing preflight")
	}
	mustContain(t, err.Error(), "phase preflight:", "node emei: ssh reaches a machine without the node's address")
	if len(j) != 0 {
		t.Errorf("phases after a failed preflight were called: %v", j)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}
}

// TestRunDryRunAll is `haadm promote --dry-run` on the lab: every real phase
// runs over recorders against the real (embedded) etcd and the fake API,
// plans the whole promotion, and changes nothing at all.
func TestRunDryRunAll(t *testing.T) {
	f := newFixture(t, setup{DryRun: true, Worker: true})
	f.startEtcd()
	f.scriptPreflight()
	f.fakes["emei"].Fail(nginxIsActive, 3, "inactive")
	ctx := testCtx(t, 30*time.Second)
	if err := Run(ctx, f.c, All()); err != nil {
		t.Fatal(err)
	}

	changes := map[string][]string{}
	for n, r := range f.recs {
		for _, ch := range r.Changes() {
			changes[n] = append(changes[n], string(ch.Kind)+" "+ch.Path+ch.Cmd)
		}
	}
	for _, tt := range []struct {
		node string
		want []string
	}{
		{"shaolin", []string{"write " + pkiDir + "/apiserver.crt"}},
		{"emei", []string{"write " + pkiDir + "/ca.key", "write " + pkiDir + "/etcd/peer.crt", "write " + manifestsDir + "/etcd.yaml",
			"write /etc/kubernetes/admin.conf", "write " + manifestsDir + "/kube-apiserver.yaml",
			"write /etc/nginx/.haadm-nginx.conf.new", "run " + nginxTest, "write " + nginxConf, "run " + nginxStart,
			"write " + kubeletConf, "run systemctl restart kubelet"}},
		{"wudang", []string{"write " + manifestsDir + "/etcd.yaml", "write " + kubeletConf, "run systemctl restart kubelet"}},
		{"wutai", []string{"write " + kubeletConf, "run systemctl restart kubelet"}},
	} {
		containsAll(t, tt.node+" planned changes", changes[tt.node], tt.want)
		if !strings.HasPrefix(strings.Join(changes[tt.node], "\n"), "run mkdir -p /var/backups/haadm/") {
			t.Errorf("%s: the backup is not the first change: %q", tt.node, changes[tt.node])
		}
	}
	if slices.Contains(changes["shaolin"], "run systemctl restart kubelet") {
		t.Error("shaolin's kubelet, already pointing at its own apiserver, would be restarted")
	}

	var plan []string
	for _, it := range f.c.Plan.Items {
		plan = append(plan, it.Phase+" "+it.Node+": "+it.What)
	}
	containsAll(t, "plan", plan, []string{
		"etcd emei: added etcd learner https://10.250.0.12:2380", "etcd wudang: promoted etcd learner to voter",
		"mark emei: labelled and tainted " + ControlPlaneLabel,
		"cluster-config : kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443",
	})
	if !strings.HasPrefix(plan[0], "backup shaolin: etcd snapshot to ") {
		t.Errorf("first plan item %q, want the backup", plan[0])
	}

	// Nothing changed anywhere.
	for n := range f.fakes {
		if w := f.calls(n, node.CallWrite); len(w) != 0 {
			t.Errorf("%s: wrote %v", n, w)
		}
		if r := f.calls(n, node.CallRun); len(r) != 0 {
			t.Errorf("%s: ran %v", n, r)
		}
	}
	if m := f.mutations(); len(m) != 0 {
		t.Errorf("API changes: %v", m)
	}
	cli, _ := f.c.EtcdClient(ctx)
	if ms, err := etcdm.List(ctx, cli); err != nil || len(ms) != 1 {
		t.Errorf("etcd members %v (%v), want shaolin alone", ms, err)
	}
	mustContain(t, f.console.String(), "[preflight] first master shaolin, promoting emei,wudang, endpoint 10.250.0.12:8443", "[promote] finished")
}
