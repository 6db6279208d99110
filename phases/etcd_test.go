package phases

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/manifests"
	"github.com/haadm/haadm/node"
)

func TestParseInitialCluster(t *testing.T) {
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
		m, ok := memberOf(members, tt.url)
		if ok != tt.ok || m.ID != tt.wantID {
			t.Errorf("memberOf(%s) = %d, %v; want %d, %v", tt.url, m.ID, ok, tt.wantID, tt.ok)
		}
	}
}

// TestDryRunInitialCluster: the plan shows what EnsureLearner would return:
// started members, then the new one; an unstarted learner (a join that
// stopped half way) is not an existing member.
func TestDryRunInitialCluster(t *testing.T) {
	c := &Cluster{}
	emei := NodeInfo{Name: "emei", IP: emeiIP}
	for _, tt := range []struct {
		name    string
		members []etcdm.Member
		want    string
	}{
		{"single master", []etcdm.Member{{ID: 9, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}}},
			"shaolin=https://10.250.0.11:2380,emei=https://10.250.0.12:2380"},
		{"emei's unstarted learner exists", []etcdm.Member{
			{ID: 9, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}},
			{ID: 3, PeerURLs: []string{"https://10.250.0.12:2380"}, IsLearner: true}},
			"shaolin=https://10.250.0.11:2380,emei=https://10.250.0.12:2380"},
		{"emei already started", []etcdm.Member{
			{ID: 3, Name: "emei", PeerURLs: []string{"https://10.250.0.12:2380"}},
			{ID: 9, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}}},
			"shaolin=https://10.250.0.11:2380,emei=https://10.250.0.12:2380"},
		{"three members", []etcdm.Member{
			{ID: 1, Name: "wudang", PeerURLs: []string{"https://10.250.0.13:2380"}},
			{ID: 9, Name: "shaolin", PeerURLs: []string{"https://10.250.0.11:2380"}}},
			"wudang=https://10.250.0.13:2380,shaolin=https://10.250.0.11:2380,emei=https://10.250.0.12:2380"},
	} {
		if got := dryRunInitialCluster(c, tt.members, emei); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestEtcdClient: haadm reaches etcd the way the lab requires, from shaolin
// through SSH (its DialContext), with shaolin's apiserver-etcd-client
// credentials, verifying etcd's certificate for 10.250.0.11.
func TestEtcdClient(t *testing.T) {
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

// TestEtcdDryRun: against the real etcd, a dry run plans one learner and one
// promotion per new master and the etcd.yaml each would get, and changes
// neither etcd nor any node.
func TestEtcdDryRun(t *testing.T) {
	f := newFixture(t, setup{DryRun: true})
	f.startEtcd()
	ctx := t.Context()
	done, why, err := Etcd{}.Check(ctx, f.c)
	if err != nil || done || why != "emei: no member, wudang: no member" {
		t.Fatalf("Check = %v, %q, %v", done, why, err)
	}
	if err := (Etcd{}).Apply(ctx, f.c); err != nil {
		t.Fatal(err)
	}
	var plan []string
	for _, it := range f.c.Plan.Items {
		plan = append(plan, it.Phase+" "+it.Node+": "+it.What)
	}
	want := []string{
		"etcd emei: added etcd learner https://10.250.0.12:2380", "etcd emei: promoted etcd learner to voter",
		"etcd wudang: added etcd learner https://10.250.0.13:2380", "etcd wudang: promoted etcd learner to voter",
	}
	if !slices.Equal(plan, want) {
		t.Errorf("plan:\n got %q\nwant %q", plan, want)
	}
	for _, n := range []string{"emei", "wudang"} {
		ch := f.recs[n].Changes()
		if len(ch) != 1 || ch[0].Kind != node.ChangeWrite || ch[0].Path != manifestsDir+"/etcd.yaml" || !ch[0].NewFile || ch[0].Mode != 0o600 {
			t.Errorf("%s: changes = %v, want one new etcd.yaml", n, ch)
		}
		if w := f.calls(n, node.CallWrite); len(w) != 0 {
			t.Errorf("%s: dry run wrote %v", n, w)
		}
	}
	// emei joins a one-member cluster: its planned manifest is exactly the
	// golden one the manifests package checks against kubeadm's.
	planned, err := f.recs["emei"].ReadFile(ctx, manifestsDir+"/etcd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("..", "testdata", "golden", "manifests", "emei", "etcd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(planned) != string(golden) {
		t.Errorf("planned etcd.yaml for emei differs from testdata/golden/manifests/emei/etcd.yaml:\n%s", manifests.Diff(golden, planned))
	}
	mustContain(t, string(planned), "--initial-cluster=emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380", "--initial-cluster-state=existing")
	cli, _ := f.c.EtcdClient(ctx)
	if ms, err := etcdm.List(ctx, cli); err != nil || len(ms) != 1 {
		t.Errorf("after a dry run etcd has members %v (%v), want shaolin alone", ms, err)
	}
}

// TestEtcdApplyResumes: the new member cannot start in a unit test (there is
// no kubelet to run etcd.yaml), so Apply adds emei's learner, writes its
// manifest and then times out waiting; the re-run picks up the same learner
// and writes nothing new, as a user re-running promote relies on.
func TestEtcdApplyResumes(t *testing.T) {
	f := newFixture(t, setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei"}})
	f.startEtcd()
	cli, err := f.c.EtcdClient(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	run := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
		defer cancel()
		return Etcd{}.Apply(ctx, f.c)
	}
	err = run()
	if err == nil {
		t.Fatal("Apply succeeded although emei's etcd never started")
	}
	mustContain(t, err.Error(), "node emei: timed out", "etcd member started", "crictl ps -a --name etcd", "kube-system_etcd-emei_")
	ms, err := etcdm.List(t.Context(), cli)
	if err != nil {
		t.Fatal(err)
	}
	learner, ok := memberOf(ms, "https://10.250.0.12:2380")
	if len(ms) != 2 || !ok || !learner.IsLearner || learner.Started() {
		t.Fatalf("members = %v, want shaolin and an unstarted learner for emei", ms)
	}
	manifest, mode := f.file("emei", manifestsDir+"/etcd.yaml")
	if mode != 0o600 {
		t.Errorf("etcd.yaml mode %04o", mode)
	}
	mustContain(t, string(manifest), "--initial-cluster=emei=https://10.250.0.12:2380,shaolin=https://10.250.0.11:2380", "--name=emei")
	mustContain(t, f.console.String(), "[etcd] emei: added etcd learner https://10.250.0.12:2380", "[etcd] emei: wrote /etc/kubernetes/manifests/etcd.yaml")

	done, why, err := Etcd{}.Check(t.Context(), f.c)
	if err != nil || done || why != "emei: learner not promoted" {
		t.Errorf("Check = %v, %q, %v", done, why, err)
	}
	// Preflight on the re-run must not call the half-joined learner stale.
	if p := f.c.checkEtcd(t.Context()); len(p) != 0 {
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
}
