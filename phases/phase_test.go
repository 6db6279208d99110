package phases

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// journal records what stub phases are asked to do; plans run
// concurrently, so it locks.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.calls)
}

// stubPhase is a phase whose plan a test sets: the steps left to do
// (applying one removes it, as a real phase converges), waits that follow
// them, and errors to fail with.
type stubPhase struct {
	name  string
	node  string // of every step; "" for the cluster
	waits []string
	// todo returns the work left when set, instead of the list: a
	// dependent stub computes its plan from what earlier stubs did.
	todo    func() ([]string, error)
	planErr error
	doErr   error
	j       *journal

	mu   sync.Mutex
	left []string
}

func (p *stubPhase) Name() string        { return p.name }
func (p *stubPhase) Description() string { return "stub " + p.name }
func (p *stubPhase) Uses() Uses          { return 0 }

func (p *stubPhase) Plan(_ context.Context, _ *Cluster) (*Work, error) {
	p.j.add("plan " + p.name)
	if p.planErr != nil {
		return nil, p.planErr
	}
	p.mu.Lock()
	left := slices.Clone(p.left)
	p.mu.Unlock()
	if p.todo != nil {
		var err error
		if left, err = p.todo(); err != nil {
			return nil, err
		}
	}
	w := &Work{}
	for _, what := range left {
		w.add(Step{Node: p.node, What: what, Details: []string{"detail of " + what, "line 1\nline 2"}, Do: func(context.Context) error {
			p.j.add("do " + p.name + ": " + what)
			if p.doErr != nil {
				return p.doErr
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			p.left = slices.DeleteFunc(p.left, func(s string) bool { return s == what })
			return nil
		}})
	}
	for _, what := range p.waits {
		w.add(Step{What: what, Wait: true, Do: func(context.Context) error {
			p.j.add("wait " + p.name + ": " + what)
			return nil
		}})
	}
	return w, nil
}

// done reports whether the stub has no work left.
func (p *stubPhase) done() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.left) == 0
}

// dependentStub is a stub the runner plans again when one of deps applied work.
type dependentStub struct {
	*stubPhase
	deps []string
}

func (d dependentStub) DependsOn() []string { return d.deps }

// runFixture is the lab with a fake etcd every preflight passes on, whose
// nodes archive /etc/kubernetes when asked (emei fails to when tarFails).
func runFixture(t *testing.T, tarFails bool) *fixture {
	t.Helper()
	f := newFixture(t, setup{})
	f.useFakeEtcd(labVoters()...)
	for n, h := range f.fakes {
		if tarFails && n == "emei" {
			h.Fail(backupCmdPrefix, 2, "tar: Cannot open: No space left on device")
		} else {
			h.Respond(backupCmdPrefix, "", nil)
		}
	}
	return f
}

// backups counts what a backup left: archive commands on the nodes, and
// snapshot folders on the operator's machine.
func (f *fixture) backups() (archives, snapshots int) {
	for n := range f.fakes {
		for _, c := range f.calls(n, node.CallRun) {
			if strings.HasPrefix(c, backupCmdPrefix) {
				archives++
			}
		}
	}
	entries, _ := os.ReadDir(f.c.Opts.BackupDir)
	return archives, len(entries)
}

// TestRun drives the runner with stub phases after the real preflight and
// around the real backup (over a fake etcd). The journal's first entries
// are the plans, made concurrently; what follows is in order.
func TestRun(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name     string
		phases   func(j *journal) []Phase
		opts     func(o *Options)
		tarFails bool
		// journal follows the first plans, one per phase.
		journal []string
		backup  bool
		err     []string
		console []string
		// absent must not be on the console.
		absent []string
		out    string
	}{
		{
			name: "converged: every phase planned once, no backup, nothing applied",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", j: j}, &stubPhase{name: "b", j: j}}
			},
			console: []string{"[preflight] first master shaolin, promoting emei,wudang, endpoint 10.250.0.12:8443 (", "[plan] nothing to do: every phase is done ("},
			absent:  []string{"[backup]", "[a]", "[b]", "[promote]"},
		},
		{
			name: "waits alone are no work",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", waits: []string{"pods rolled"}, j: j}}
			},
			console: []string{"[plan] nothing to do: every phase is done"},
			absent:  []string{"[backup]"},
		},
		{
			name: "work in one phase: backup first, then only that phase applies, its waits after",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", j: j}, &stubPhase{name: "b", node: "emei", left: []string{"2 files", "restart"}, waits: []string{"ready"}, j: j},
					&stubPhase{name: "c", j: j}}
			},
			journal: []string{"do b: 2 files", "do b: restart", "wait b: ready"},
			backup:  true,
			console: []string{"[plan] work in b (", "[backup] shaolin: etcd snapshot (4128 bytes", "[a] already done\n", "[b] emei: 2 files (", "[b] emei: restart (", "[b] ready (", "[b] done (", "[c] already done\n", "[promote] finished ("},
			absent:  []string{"[a] done", "[c] done"},
		},
		{
			name: "phases apply in the order given",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "z", left: []string{"first"}, j: j}, &stubPhase{name: "a", left: []string{"second"}, j: j}}
			},
			journal: []string{"do z: first", "do a: second"},
			backup:  true,
			console: []string{"[plan] work in z, a ("},
		},
		{
			name: "--skip-phases backup: no snapshot, and the log says so",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", left: []string{"x"}, j: j}}
			},
			opts:    func(o *Options) { o.SkipBackup = true },
			journal: []string{"do a: x"},
			console: []string{"[backup] skipped as asked: no snapshot of this run", "[promote] finished"},
		},
		{
			name: "a failing plan stops the run before the backup",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", left: []string{"x"}, j: j}, &stubPhase{name: "b", planErr: errors.New("etcd unreachable"), j: j}}
			},
			err:    []string{"phase b: etcd unreachable"},
			absent: []string{"[backup]"},
		},
		{
			name: "a failing backup stops the run before any change",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", left: []string{"x"}, j: j}}
			},
			tarFails: true,
			backup:   true,
			err:      []string{"backup: ", "node emei", "No space left on device", "(nothing was changed)"},
		},
		{
			name: "a failing step stops the run, names phase and node, and says how to resume",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", node: "emei", left: []string{"x", "y"}, doErr: boom, j: j}, &stubPhase{name: "b", left: []string{"z"}, j: j}}
			},
			journal: []string{"do a: x"},
			backup:  true,
			err:     []string{"phase a: node emei: x: boom", "re-run the same command to resume"},
			console: []string{"[a] emei: x: FAILED ("},
			absent:  []string{"[b]", "[promote]"},
		},
		{
			name: "a failing step of the cluster names the phase",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", left: []string{"update kubeadm-config"}, doErr: boom, j: j}}
			},
			journal: []string{"do a: update kubeadm-config"},
			backup:  true,
			err:     []string{"phase a: update kubeadm-config: boom\n(re-run the same command to resume"},
		},
		{
			name: "dry run: the plans printed, nothing applied, no backup",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", j: j}, &stubPhase{name: "b", node: "emei", left: []string{"2 files"}, waits: []string{"ready"}, j: j},
					&stubPhase{name: "c", left: []string{"update"}, j: j}}
			},
			opts: func(o *Options) { o.DryRun = true },
			out: "dry run: 3 step(s); nothing was changed\n" +
				"[b] emei: 2 files\n    detail of 2 files\n    line 1\n    line 2\n" +
				"[b] ready\n" +
				"[c] update\n    detail of update\n    line 1\n    line 2\n",
			console: []string{"[plan] work in b, c ("},
			absent:  []string{"[backup]", "[promote]"},
		},
		{
			name: "dry run of a converged cluster",
			phases: func(j *journal) []Phase {
				return []Phase{&stubPhase{name: "a", waits: []string{"ready"}, j: j}}
			},
			opts: func(o *Options) { o.DryRun = true },
			out:  "dry run: nothing to do\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := runFixture(t, tt.tarFails)
			if tt.opts != nil {
				tt.opts(&f.c.Opts)
			}
			j := &journal{}
			list := tt.phases(j)
			var out bytes.Buffer
			err := Run(testCtx(t, 30*time.Second), f.c, list, &out)
			if tt.err == nil && err != nil {
				t.Fatal(err)
			}
			if tt.err != nil {
				if err == nil {
					t.Fatal("Run succeeded")
				}
				mustContain(t, err.Error(), tt.err...)
			}
			got := j.get()
			var plans, want []string
			for _, p := range list {
				want = append(want, "plan "+p.Name())
			}
			if len(got) >= len(list) {
				plans, got = slices.Clone(got[:len(list)]), got[len(list):]
			}
			sort.Strings(plans)
			sort.Strings(want)
			if !slices.Equal(plans, want) {
				t.Errorf("first calls %q, want one plan per phase %q", plans, want)
			}
			if !slices.Equal(got, tt.journal) {
				t.Errorf("then:\n got %q\nwant %q", got, tt.journal)
			}
			archives, snapshots := f.backups()
			switch {
			case !tt.backup && archives+snapshots != 0:
				t.Errorf("backup taken: %d archives, %d snapshots", archives, snapshots)
			case tt.backup && tt.tarFails && (archives == 0 || snapshots != 0):
				t.Errorf("failed backup: %d archives, %d snapshots; want no snapshot", archives, snapshots)
			case tt.backup && !tt.tarFails && (archives != len(f.fakes) || snapshots != 1):
				t.Errorf("backup: %d archives, %d snapshots; want one per node and one", archives, snapshots)
			}
			if tt.out != "" && out.String() != tt.out {
				t.Errorf("output:\n%s\nwant:\n%s", out.String(), tt.out)
			}
			if tt.out == "" && out.Len() != 0 {
				t.Errorf("output %q", out.String())
			}
			mustContain(t, f.console.String(), tt.console...)
			for _, a := range tt.absent {
				if strings.Contains(f.console.String(), a) {
					t.Errorf("console mentions %q:\n%s", a, f.console.String())
				}
			}
		})
	}
}

// TestRunReplans: a phase that depends on another is planned again before
// it is applied when that one changed something, and what is applied is
// the new plan; a phase that depends on none, or whose dependency had
// nothing to do, keeps its first plan.
func TestRunReplans(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		certsWork bool
		skipCerts bool
		journal   []string
	}{
		{name: "certs changed something", certsWork: true,
			journal: []string{"do certs: 17 files", "plan etcd", "do etcd: learner (certs there)", "do other: x"}},
		{name: "certs had nothing to do",
			journal: []string{"do etcd: learner (no certs yet)", "do other: x"}},
		{name: "certs not run", skipCerts: true,
			journal: []string{"do etcd: learner (no certs yet)", "do other: x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := runFixture(t, false)
			f.c.Opts.SkipBackup = true
			j := &journal{}
			certs := &stubPhase{name: "certs", j: j}
			if tt.certsWork {
				certs.left = []string{"17 files"}
			}
			etcd := dependentStub{&stubPhase{name: "etcd", j: j, todo: func() ([]string, error) {
				if certs.done() && tt.certsWork {
					return []string{"learner (certs there)"}, nil
				}
				return []string{"learner (no certs yet)"}, nil
			}}, []string{"certs"}}
			// other depends on nothing: its plan is never made again.
			other := &stubPhase{name: "other", left: []string{"x"}, j: j}
			list := []Phase{certs, etcd, other}
			if tt.skipCerts {
				list = list[1:]
			}
			if err := Run(testCtx(t, 30*time.Second), f.c, list, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			got := j.get()[len(list):]
			if !slices.Equal(got, tt.journal) {
				t.Errorf("after the plans:\n got %q\nwant %q", got, tt.journal)
			}
		})
	}

	// A plan made again can fail too: the run stops there, resumable.
	f := runFixture(t, false)
	f.c.Opts.SkipBackup = true
	j := &journal{}
	certs := &stubPhase{name: "certs", left: []string{"17 files"}, j: j}
	etcd := dependentStub{&stubPhase{name: "etcd", j: j, todo: func() ([]string, error) {
		if certs.done() {
			return nil, errors.New("etcd unreachable")
		}
		return []string{"learner"}, nil
	}}, []string{"certs"}}
	list := []Phase{certs, etcd}
	err := Run(testCtx(t, 30*time.Second), f.c, list, &bytes.Buffer{})
	if err == nil {
		t.Fatal("Run succeeded although the second plan of etcd failed")
	}
	mustContain(t, err.Error(), "phase etcd: etcd unreachable", "re-run the same command to resume")
	if got := j.get()[2:]; !slices.Equal(got, []string{"do certs: 17 files", "plan etcd"}) {
		t.Errorf("after the plans: %q", got)
	}
}

// TestRunPutsPreflightFirst: whatever is asked, preflight runs first and a
// failing one stops everything before any plan is made, let alone a change.
func TestRunPutsPreflightFirst(t *testing.T) {
	t.Parallel()
	f := runFixture(t, false)
	f.setProbe("emei", func(p *probe) { p.addrs = "2: eth0    inet 192.0.2.1/24 scope global eth0\n" })
	j := &journal{}
	err := Run(t.Context(), f.c, []Phase{&stubPhase{name: "mark", left: []string{"todo"}, j: j}}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("Run succeeded with a failing preflight")
	}
	mustContain(t, err.Error(), "preflight found 1 problem(s); nothing was changed", "node emei: ssh reaches a machine without the node's address")
	if got := j.get(); len(got) != 0 {
		t.Errorf("phases were asked after a failed preflight: %v", got)
	}
	f.unchanged(t)
	if a, s := f.backups(); a+s != 0 {
		t.Error("backup after a failed preflight")
	}
}

// TestRunDryRunAll is `haadm promote --dry-run` on the lab: every real phase
// plans against the real (embedded) etcd and the fake API, the whole
// promotion is printed with its diffs, keys redacted, and nothing changes
// at all: no write, no command that changes state, no API or etcd change,
// no backup.
func TestRunDryRunAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true, Opts: Options{DryRun: true}})
	f.startEtcd()
	scriptNginx(f, "emei", false, nil) // installed, stopped, not configured
	ctx := testCtx(t, 30*time.Second)
	var out bytes.Buffer
	if err := Run(ctx, f.c, All(), &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	var steps []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "[") {
			steps = append(steps, l)
		}
	}
	if !strings.HasPrefix(text, "dry run: 30 step(s); nothing was changed\n") || len(steps) != 30 {
		t.Errorf("%d steps printed under %q", len(steps), strings.SplitN(text, "\n", 2)[0])
	}
	want := []string{
		"[certs] shaolin: 1 files (apiserver.crt)",
		"[certs] emei: 21 files (ca.key, sa.key, sa.pub, and 18 more)",
		"[etcd] emei: etcd learner https://10.250.0.12:2380",
		"[etcd] emei: etcd.yaml",
		"[etcd] emei: etcd member serves as a voter",
		"[etcd] wudang: etcd learner promoted to voter",
		"[control-plane] wudang: 6 files (controller-manager.conf, scheduler.conf, admin.conf, and 3 more)",
		"[mark] emei: label and taint node-role.kubernetes.io/control-plane",
		"[lb] emei: /etc/nginx/nginx.conf, nginx started, listening on :8443",
		"[kubelet] wutai: kubelet.conf -> https://10.250.0.12:8443, kubelet restarted, node Ready",
		"[cluster-config] kube-system/kubeadm-config: controlPlaneEndpoint 10.250.0.12:8443",
		"[cluster-config] shaolin: /etc/kubernetes/admin.conf: server https://10.250.0.12:8443",
	}
	containsAll(t, "printed steps", steps, want)
	// In the order of the phases.
	last := -1
	for _, p := range All() {
		i := strings.Index(text, "\n["+p.Name()+"] ")
		if i < 0 {
			continue // a phase with nothing to do prints nothing
		}
		if i < last {
			t.Errorf("%s printed before an earlier phase", p.Name())
		}
		last = i
	}
	if slices.ContainsFunc(steps, func(s string) bool { return strings.HasPrefix(s, "[kubelet] shaolin:") }) {
		t.Error("shaolin's kubelet, already pointing at its own apiserver, would be restarted")
	}
	// The details, indented under their step: diffs, keys only as changed.
	mustContain(t, text, "\n    "+pkiDir+"/ca.key: copy from shaolin\n    (private key content changed, ",
		"\n    --- /dev/null (new file)\n    +++ b"+manifestsDir+"/etcd.yaml\n",
		"\n    -    server: https://10.250.0.11:6443\n    +    server: https://10.250.0.12:8443\n",
		"client-key-data: (redacted, sha256:", "+controlPlaneEndpoint: 10.250.0.12:8443")
	noKeyMaterial(t, "the dry run", text)

	f.unchanged(t)
	if entries, _ := os.ReadDir(f.c.Opts.BackupDir); len(entries) != 0 {
		t.Errorf("dry run wrote a backup: %v", entries)
	}
	cli, _ := f.c.EtcdClient(ctx)
	if ms, err := etcdm.List(ctx, cli); err != nil || len(ms) != 1 {
		t.Errorf("etcd members %v (%v), want shaolin alone", ms, err)
	}
	mustContain(t, f.console.String(), "[preflight] first master shaolin, promoting emei,wudang, endpoint 10.250.0.12:8443",
		"[plan] work in certs, etcd, control-plane, mark, lb, kubelet, cluster-config")
	if strings.Contains(f.console.String(), "[backup]") || strings.Contains(f.detail.String(), "start:") {
		t.Errorf("a dry run started a step:\n%s", f.detail.String())
	}
}

// TestRunReplansEtcdAfterCerts: the real etcd phase is planned again once
// the real certs phase wrote certificates (its members use them), and not
// when certs had nothing to do. Each plan of etcd reads every new master's
// etcd.yaml once, which counts the plans. No kubelet starts the member in
// a unit test, so the run is interrupted once etcd.yaml is written, and
// says where it stopped.
func TestRunReplansEtcdAfterCerts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		certified bool
		plans     int
	}{
		{"certs wrote certificates", false, 2},
		{"certs had nothing to do", true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei", SkipBackup: true}}
			var f *fixture
			if tt.certified {
				f = certifiedFixture(t, s)
			} else {
				f = newFixture(t, s)
			}
			f.startEtcd()
			ctx, cancel := context.WithCancel(testCtx(t, 30*time.Second))
			f.meters["emei"].written = func(files []node.File) {
				if files[0].Path == manifestsDir+"/etcd.yaml" {
					cancel()
				}
			}
			err := Run(ctx, f.c, []Phase{Certs{}, Etcd{}}, &bytes.Buffer{})
			if err == nil {
				t.Fatal("Run succeeded although emei's etcd cannot start here")
			}
			// Interrupted just after the write, as the kubelet (which had
			// no static-pod directory) is being restarted to run it.
			mustContain(t, err.Error(), "phase etcd: node emei: etcd.yaml: restarting the kubelet to start etcd", "context canceled", "re-run the same command to resume")
			reads := 0
			for _, p := range f.calls("emei", node.CallRead) {
				if p == manifestsDir+"/etcd.yaml" {
					reads++
				}
			}
			if reads != tt.plans {
				t.Errorf("etcd planned %d times, want %d", reads, tt.plans)
			}
			// The plan applied is the one made after certs: its learner
			// step found the certificates.
			cli, _ := f.c.EtcdClient(t.Context())
			if ms, err := etcdm.List(t.Context(), cli); err != nil || len(ms) != 2 {
				t.Errorf("members %v (%v), want shaolin and emei's learner", ms, err)
			}
		})
	}
}
