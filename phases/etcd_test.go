package phases

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

func TestParseInitialCluster(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want []manifests.Member
	}{
		{"", nil},
		{"shaolin=https://10.250.0.11:2380", []manifests.Member{{Name: "shaolin", PeerURL: "https://10.250.0.11:2380"}}},
		{"shaolin=https://10.250.0.11:2380,emei=https://10.250.0.12:2380", []manifests.Member{
			{Name: "shaolin", PeerURL: "https://10.250.0.11:2380"}, {Name: "emei", PeerURL: "https://10.250.0.12:2380"}}},
		// A URL may contain "=" (a query); only the first one splits.
		{"a=https://h:2380/?x=1", []manifests.Member{{Name: "a", PeerURL: "https://h:2380/?x=1"}}},
		// Garbage without "=" is dropped rather than becoming a nameless member.
		{"junk,emei=https://[fd00::12]:2380", []manifests.Member{{Name: "emei", PeerURL: "https://[fd00::12]:2380"}}},
	} {
		if got := parseInitialCluster(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("parseInitialCluster(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMemberOf(t *testing.T) {
	t.Parallel()
	members := []etcdm.Member{
		{ID: 1, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}},
		{ID: 2, PeerURLs: []string{"https://10.250.0.12:2380", "https://[fd00::12]:2380"}, IsLearner: true},
	}
	for _, tt := range []struct {
		url    string
		wantID uint64
		ok     bool
	}{
		{"https://10.250.0.11:2380", 1, true},
		{"https://[fd00::12]:2380", 2, true}, // any of a member's URLs
		{"https://10.250.0.13:2380", 0, false},
		{"http://10.250.0.11:2380", 0, false}, // exact match: the scheme counts
	} {
		m, ok := etcdm.FindByPeerURL(members, tt.url)
		if ok != tt.ok || m.ID != tt.wantID {
			t.Errorf("etcdm.FindByPeerURL(%s) = %d, %v; want %d, %v", tt.url, m.ID, ok, tt.wantID, tt.ok)
		}
	}
}

// TestEtcdPlanStates: what the plan does for a new master in each state
// etcd may hold it in, and the --initial-cluster its etcd.yaml would get:
// what EnsureLearner will return (started members, then the new one; an
// unstarted learner, a join that stopped half way, is not an existing
// member), sorted by name as the manifest has it. The fake etcd holds
// states the real one cannot reach in a unit test.
func TestEtcdPlanStates(t *testing.T) {
	t.Parallel()
	shaolin := &etcdserverpb.Member{ID: 9, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}, ClientURLs: []string{"https://10.250.0.11:2379"}}
	join := []string{"emei: etcd learner https://10.250.0.12:2380", "emei: etcd.yaml", "emei: etcd member started (wait)", "emei: etcd learner promoted to voter", "emei: etcd member serves as a voter (wait)"}
	for _, tt := range []struct {
		name     string
		members  []*etcdserverpb.Member
		manifest bool // emei has an etcd.yaml
		steps    []string
		initial  string
	}{
		{name: "single master", members: []*etcdserverpb.Member{shaolin}, steps: join,
			initial: "emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380"},
		{name: "emei's unstarted learner exists", members: []*etcdserverpb.Member{shaolin,
			{ID: 3, PeerURLs: []string{"https://10.250.0.12:2380"}, IsLearner: true}}, steps: join,
			initial: "emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380"},
		{name: "emei's learner started, not promoted", members: []*etcdserverpb.Member{
			{ID: 3, Name: "emei", PeerURLs: []string{"https://10.250.0.12:2380"}, IsLearner: true}, shaolin}, manifest: true, steps: join,
			initial: "emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380"},
		// A voter whose manifest is gone: write it again, no promotion.
		{name: "emei a voter without etcd.yaml", members: []*etcdserverpb.Member{voter(3, "emei", emeiIP), shaolin}, steps: join[:3],
			initial: "emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380"},
		{name: "emei a voter with etcd.yaml", members: []*etcdserverpb.Member{voter(3, "emei", emeiIP), shaolin}, manifest: true},
		{name: "three members", members: []*etcdserverpb.Member{voter(1, "wudang", wudangIP), shaolin}, steps: join,
			initial: "emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380,wudang=https://10.250.0.13:2380"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, setup{NoEndpoint: true, Opts: Options{Nodes: []string{"emei"}}})
			f.useFakeEtcd(tt.members...)
			if tt.manifest {
				f.setFile("emei", manifestsDir+"/etcd.yaml", []byte("# emei's etcd.yaml of an earlier run\n"))
			}
			w := plan(t, t.Context(), Etcd{}, f.c)
			if got := stepsOf(w); !slices.Equal(got, tt.steps) {
				t.Errorf("steps:\n got %q\nwant %q", got, tt.steps)
			}
			if tt.initial != "" {
				mustContain(t, detailsOf(w, "emei"), "--initial-cluster="+tt.initial+"\n")
			}
			f.unchanged(t)
		})
	}
}

// TestEtcdClient: haadm reaches etcd the way the lab requires, from shaolin
// through SSH (its DialContext), with shaolin's apiserver-etcd-client
// credentials, verifying etcd's certificate for 10.250.0.11.
func TestEtcdClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.startEtcd()
	cli, err := f.c.EtcdClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	members, err := etcdm.List(t.Context(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Name != "shaolin" || !slices.Equal(members[0].PeerURLs, []string{"https://10.250.0.11:2380"}) {
		t.Errorf("members = %v", members)
	}
	if again, _ := f.c.EtcdClient(t.Context()); again != cli {
		t.Error("EtcdClient built a second client")
	}
	if d := f.calls("shaolin", node.CallDial); len(d) == 0 || d[0] != "tcp 10.250.0.11:2379" {
		t.Errorf("shaolin dials = %v, want tcp 10.250.0.11:2379", d)
	}
	for _, n := range []string{"emei", "wudang"} {
		if d := f.calls(n, node.CallDial); len(d) != 0 {
			t.Errorf("%s dialled %v", n, d)
		}
	}
	// The credentials come in one round trip.
	if got := f.meters["shaolin"].counts(); got["ReadFiles"] != 1 || f.trips("shaolin") != 1 {
		t.Errorf("shaolin: %v, want one ReadFiles", got)
	}

	// Without the client key there is no client, and the error says where
	// haadm looked.
	g := newFixture(t, setup{})
	g.fakes["shaolin"].RemoveFile(pkiDir + "/apiserver-etcd-client.key")
	_, err = g.c.EtcdClient(t.Context())
	if err == nil {
		t.Fatal("EtcdClient without apiserver-etcd-client.key succeeded")
	}
	mustContain(t, err.Error(), "node shaolin", "apiserver-etcd-client.key")
}

// TestEtcdPlan: against the real etcd, the plan has one learner, one
// static pod, one wait and one promotion per new master, one node after the
// other, with the etcd.yaml each would get; planning changes neither etcd
// nor any node. `haadm phase etcd` needs no endpoint.
func TestEtcdPlan(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{NoEndpoint: true})
	f.startEtcd()
	ctx := t.Context()
	done, why, err := check(ctx, Etcd{}, f.c)
	want := "emei: etcd learner https://10.250.0.12:2380, emei: etcd.yaml, emei: etcd learner promoted to voter, " +
		"wudang: etcd learner https://10.250.0.13:2380, wudang: etcd.yaml, wudang: etcd learner promoted to voter"
	if err != nil || done || why != want {
		t.Fatalf("plan = %v, %q, %v; want %q", done, why, err, want)
	}
	w := plan(t, ctx, Etcd{}, f.c)
	if w.PerNode {
		t.Error("etcd changes membership: one node at a time")
	}
	// emei joins a one-member cluster: its planned manifest is exactly the
	// golden one the manifests package checks against kubeadm's.
	golden, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "manifests", "emei", "etcd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := manifestsDir + "/etcd.yaml"
	if got, want := w.Steps[1].Details[0], path+"\n"+node.Diff(path, nil, golden, false); got != want {
		t.Errorf("planned etcd.yaml for emei is not testdata/golden/manifests/emei/etcd.yaml:\n%s", got)
	}
	mustContain(t, string(golden), "--initial-cluster=emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380\n", "--initial-cluster-state=existing")
	// wudang joins after emei: its prediction counts emei in.
	mustContain(t, detailsOf(w, "wudang"), "--initial-cluster=emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380,wudang=https://10.250.0.13:2380\n")
	if strings.Contains(detailsOf(w, ""), "the last promotion") {
		t.Error("the etcd phase alone leaves a promotion unconfirmed")
	}
	// In a promote, the apiservers' start waits for the last member.
	f.c.apiserversFollow = true
	w = plan(t, ctx, Etcd{}, f.c)
	last := w.Steps[len(w.Steps)-1]
	if last.Node != "wudang" || len(last.Details) != 1 || !strings.Contains(last.Details[0], "the last promotion") || strings.Contains(detailsOf(w, "emei"), "the last promotion") {
		t.Errorf("with control-plane after it, the plan's last promotion is %s %q, and emei's details say %q", last.Node, last.Details, detailsOf(w, "emei"))
	}
	// Each node's control plane may start once its member is a voter
	// (the Gate), while emei's is confirmed and wudang joins.
	var gates []string
	for _, s := range w.Steps {
		if s.Gate {
			gates = append(gates, s.Node+": "+s.What)
		}
	}
	if want := []string{"emei: etcd learner promoted to voter", "wudang: etcd learner promoted to voter"}; !slices.Equal(gates, want) {
		t.Errorf("gates %q, want %q", gates, want)
	}
	if got := stepsOf(w); slices.Index(got, "emei: etcd member serves as a voter (wait)") < 0 ||
		slices.Index(got, "emei: etcd member serves as a voter (wait)") > slices.Index(got, "wudang: etcd learner https://10.250.0.13:2380") ||
		slices.Contains(got, "wudang: etcd member serves as a voter (wait)") {
		t.Errorf("steps %q: want emei confirmed before wudang joins, wudang left to its apiserver", got)
	}
	f.unchanged(t)
	cli, _ := f.c.EtcdClient(ctx)
	if ms, err := etcdm.List(ctx, cli); err != nil || len(ms) != 1 {
		t.Errorf("after planning etcd has members %v (%v), want shaolin alone", ms, err)
	}
}

// TestEtcdNeedsCerts: a learner whose static pod could not start would be
// a stale member, so without the etcd certificates no member is added.
func TestEtcdNeedsCerts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.startEtcd()
	err := apply(testCtx(t, 30*time.Second), Etcd{}, f.c)
	if err == nil {
		t.Fatal("etcd applied on a node without etcd certificates")
	}
	mustContain(t, err.Error(), "node emei: etcd learner https://10.250.0.12:2380: ", pkiDir+"/etcd/server.crt", "missing: run `haadm phase certs` first (no etcd member was added)")
	cli, _ := f.c.EtcdClient(t.Context())
	if ms, err := etcdm.List(t.Context(), cli); err != nil || len(ms) != 1 {
		t.Errorf("members %v (%v), want shaolin alone", ms, err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Errorf("wrote %v", w)
	}
}

// TestEtcdRemovesStaleLearners: with --remove-stale-learners the plan
// first removes a learner of a failed join of some other node; without it,
// it leaves the learner to preflight to report.
func TestEtcdRemovesStaleLearners(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{NoEndpoint: true, Opts: Options{Nodes: []string{"emei"}}})
	f.startEtcd()
	ctx := testCtx(t, 30*time.Second)
	m := addLearner(t, f, "kunlun", "https://10.250.0.99:2380")
	if got := stepsOf(plan(t, ctx, Etcd{}, f.c)); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "stale") }) {
		t.Errorf("without --remove-stale-learners: %q", got)
	}
	f.c.Opts.RemoveStaleLearners = true
	w := plan(t, ctx, Etcd{}, f.c)
	if got := stepsOf(w); len(got) != 6 || got[0] != "remove stale etcd learner "+m.String() {
		t.Fatalf("steps = %q, want the removal first", got)
	}
	if err := w.Steps[0].Do(ctx); err != nil {
		t.Fatal(err)
	}
	cli, _ := f.c.EtcdClient(ctx)
	if ms, err := etcdm.List(ctx, cli); err != nil || len(ms) != 1 || ms[0].Name != "shaolin" {
		t.Errorf("members %v (%v), want shaolin alone", ms, err)
	}
}

// TestEtcdApplyResumes: the new member cannot start in a unit test (there is
// no kubelet to run etcd.yaml), so applying adds emei's learner, writes its
// manifest and then times out waiting; the re-run picks up the same learner
// and writes nothing new, as a user re-running promote relies on.
func TestEtcdApplyResumes(t *testing.T) {
	t.Parallel()
	f := certifiedFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.startEtcd()
	f.fakes["emei"].Respond("systemctl restart kubelet", "", nil)
	cli, err := f.c.EtcdClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	restarts := func() int {
		return strings.Count(strings.Join(f.fakes["emei"].Commands(), "\n"), "systemctl restart kubelet")
	}
	run := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
		defer cancel()
		return apply(ctx, Etcd{}, f.c)
	}
	err = run()
	if err == nil {
		t.Fatal("apply succeeded although emei's etcd never started")
	}
	mustContain(t, err.Error(), "node emei: etcd member started: timed out", "waiting for etcd member started", "crictl ps -a --name etcd", "kube-system_etcd-emei_")
	ms, err := etcdm.List(t.Context(), cli)
	if err != nil {
		t.Fatal(err)
	}
	learner, ok := etcdm.FindByPeerURL(ms, "https://10.250.0.12:2380")
	if len(ms) != 2 || !ok || !learner.IsLearner || learner.Started() {
		t.Fatalf("members = %v, want shaolin and an unstarted learner for emei", ms)
	}
	manifest, mode := f.file("emei", manifestsDir+"/etcd.yaml")
	if mode != 0o600 {
		t.Errorf("etcd.yaml mode %04o", mode)
	}
	mustContain(t, string(manifest), "--initial-cluster=emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380", "--name=emei")
	mustContain(t, f.console.String(), "[etcd] emei: etcd learner https://10.250.0.12:2380 (", "[etcd] emei: etcd.yaml (", "[etcd] emei: etcd member started: FAILED")
	// emei, a worker, had no static-pod directory: its kubelet is
	// restarted after the write, so that it watches the new one at once.
	if n := restarts(); n != 1 {
		t.Errorf("%d kubelet restarts after the first etcd.yaml on emei, want 1", n)
	}
	mustContain(t, f.detail.String(), "[etcd] emei: the kubelet had no "+manifestsDir+" to watch: systemctl restart kubelet")

	// The re-run's plan: the same join, the manifest already as planned.
	w := plan(t, t.Context(), Etcd{}, f.c)
	if got := stepsOf(w); !slices.Equal(got, []string{"emei: etcd learner https://10.250.0.12:2380", "emei: etcd.yaml", "emei: etcd member started (wait)", "emei: etcd learner promoted to voter", "emei: etcd member serves as a voter (wait)"}) {
		t.Errorf("re-run plan = %q", got)
	}
	if d := detailsOf(w, "emei"); strings.Contains(d, "redacted") || strings.Contains(d, "+++") {
		t.Errorf("the re-run plan shows a change to an etcd.yaml that is already right:\n%s", d)
	}
	// Preflight on the re-run must not call the half-joined learner stale,
	// nor its data directory another cluster's.
	if p := f.c.checkEtcd(t.Context(), func(string) string { return "member" }); len(p) != 0 {
		t.Errorf("preflight etcd problems with emei's resumable learner: %v", p)
	}

	writes := len(f.calls("emei", node.CallWrite))
	if err := run(); err == nil || !strings.Contains(err.Error(), "etcd member started") {
		t.Fatalf("re-run: %v", err)
	}
	if ms2, _ := etcdm.List(t.Context(), cli); len(ms2) != 2 {
		t.Errorf("re-run changed membership: %v", ms2)
	}
	if got := len(f.calls("emei", node.CallWrite)); got != writes {
		t.Errorf("re-run rewrote etcd.yaml (%d writes, was %d)", got, writes)
	}
	if n := restarts(); n != 1 {
		t.Errorf("the re-run restarted the kubelet again (%d restarts)", n)
	}
}
