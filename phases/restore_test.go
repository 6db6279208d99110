package phases

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/haadm/haadm/backup"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// realBackup takes a Backup of shaolin's embedded etcd holding
// /registry/haadm/restore-test = "before", then changes the key to
// "after", and returns the backup's directory.
func realBackup(t *testing.T) string {
	t.Helper()
	f := newFixture(t, setup{})
	f.c.Opts.Command = "promote"
	f.startEtcd()
	ctx := t.Context()
	cli, err := f.c.EtcdClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/registry/haadm/restore-test", "before"); err != nil {
		t.Fatal(err)
	}
	f.respondArchives()
	rec, err := Backup(ctx, f.c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/registry/haadm/restore-test", "after"); err != nil {
		t.Fatal(err)
	}
	return rec.Dir()
}

// TestRestoreRoundTrip: a backup's snapshot, restored by haadm's own code
// and shipped the way restore ships it (a tar stream through Upload, here
// onto this machine), is a data dir an etcd with the first master's name
// and peer URL starts on, holding the value from before the backup, at a
// revision bumped past anything a watch cache saw.
func TestRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	dir := realBackup(t)
	r, err := LoadRestore(RestoreOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if r.member != (etcdMember{name: "shaolin", peerURL: "https://10.250.0.11:2380", clientURL: "https://10.250.0.11:2379", dataDir: "/var/lib/etcd", ip: "10.250.0.11"}) {
		t.Fatalf("member from the backup's etcd.yaml: %+v", r.member)
	}
	r.hosts = map[string]node.Host{"shaolin": node.NewLocalHost("shaolin")}
	restored := filepath.Join(t.TempDir(), "etcd.haadm-restore-x")
	if err := r.shipRestored(t.Context(), restored); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(restored + ".tar"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the shipped tar is left behind: %v", err)
	}
	if fi, err := os.Stat(restored); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("restored dir: %v %v", fi, err)
	}

	cfg := embed.NewConfig()
	cfg.Name = r.member.name
	cfg.Dir = restored
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
	cfg.TickMs, cfg.ElectionMs = 50, 500
	client, peer := freeAddr(t), freeAddr(t)
	cfg.ListenClientUrls = []url.URL{{Scheme: "http", Host: client}}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{{Scheme: "http", Host: peer}}
	cfg.AdvertisePeerUrls = []url.URL{{Scheme: "https", Host: net.JoinHostPort(shaolinIP, "2380")}}
	cfg.InitialCluster = "shaolin=" + r.member.peerURL
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("etcd does not start on the restored data: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("restored etcd not ready after 20s")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := testCtx(t, 10*time.Second)
	got, err := cli.Get(ctx, "/registry/haadm/restore-test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "before" {
		t.Errorf("restored value %v, want \"before\"", got.Kvs)
	}
	if got.Header.Revision < etcdm.RestoreRevisionBump {
		t.Errorf("revision %d after the restore, want it bumped past %d", got.Header.Revision, etcdm.RestoreRevisionBump)
	}
	ms, err := cli.MemberList(ctx)
	if err != nil || len(ms.Members) != 1 || ms.Members[0].Name != "shaolin" || !slices.Equal(ms.Members[0].PeerURLs, []string{r.member.peerURL}) {
		t.Errorf("members of the restored etcd: %v %v", ms, err)
	}
}

// TestLoadRestoreRefuses: a damaged snapshot or a directory that is not a
// backup is refused before anything is contacted.
func TestLoadRestoreRefuses(t *testing.T) {
	t.Parallel()
	if _, err := LoadRestore(RestoreOptions{Dir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "not a backup haadm can restore") {
		t.Errorf("empty dir: %v", err)
	}
	dir := realBackup(t)
	snap := filepath.Join(dir, backup.SnapshotFile)
	b, _ := os.ReadFile(snap)
	b[100] ^= 0xff
	os.WriteFile(snap, b, 0o600)
	_, err := LoadRestore(RestoreOptions{Dir: dir})
	if err == nil {
		t.Fatal("a damaged snapshot was accepted")
	}
	mustContain(t, err.Error(), snap, "the manifest recorded", "damaged", "nothing was changed")
}

// restoreLab is a backup and three scripted nodes to restore it on.
type restoreLab struct {
	dir   string
	fakes map[string]*node.Fake
	waits []string
}

func newRestoreLab(t *testing.T, dir string) *restoreLab {
	t.Helper()
	l := &restoreLab{dir: dir, fakes: map[string]*node.Fake{}}
	for _, n := range []string{"emei", "shaolin", "wudang"} {
		h := node.NewFake(n)
		h.Respond("if test -s ", "present\n", nil)
		h.Respond("set -e", "", nil)
		h.Respond("mkdir -p /var/lib/haadm/restore-", "", nil)
		h.Respond("ss -Hltn", "", nil)
		h.Respond("systemctl restart kubelet", "", nil)
		l.fakes[n] = h
	}
	return l
}

// run restores on the fakes, the waits for etcd and the apiserver recorded.
func (l *restoreLab) run(t *testing.T, opts RestoreOptions) (string, error) {
	t.Helper()
	opts.Dir = l.dir
	r, err := LoadRestore(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.waitEtcd = func(context.Context) error { l.waits = append(l.waits, "etcd"); return nil }
	r.waitAPI = func(context.Context) error { l.waits = append(l.waits, "apiserver"); return nil }
	hosts := map[string]node.Host{}
	for n, h := range l.fakes {
		hosts[n] = h
	}
	var out bytes.Buffer
	err = r.Run(testCtx(t, 30*time.Second), hosts, NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), &out)
	return out.String(), err
}

// changes are the commands that change a node, in order, shortened to
// their telling line.
func (l *restoreLab) changes(n string) []string {
	var out []string
	for _, c := range l.fakes[n].Calls() {
		switch {
		case c.Kind == node.CallUpload:
			out = append(out, "upload "+filepath.Base(c.Path))
		case c.Kind != node.CallRun:
		case strings.Contains(c.Cmd, "mv -f -- \"$m/$f\" \"$d\"/") && !strings.Contains(c.Cmd, "tar -xzf"):
			out = append(out, "stop")
		case strings.Contains(c.Cmd, "tar -xf"):
			out = append(out, "unpack etcd data")
		case strings.Contains(c.Cmd, `mv -- "$n/member" "$d/member"`):
			out = append(out, "swap etcd data")
		case strings.Contains(c.Cmd, "tar -xzf"):
			out = append(out, "unpack etc")
		case strings.HasPrefix(c.Cmd, "mkdir -p /var/lib/haadm/restore-"):
			out = append(out, "etcd data aside")
		case strings.Contains(c.Cmd, `mv -f -- "$f" "$m"/`):
			out = append(out, "unhold")
		default:
			out = append(out, c.Cmd)
		}
	}
	return out
}

func (l *restoreLab) journal(t *testing.T) restoreJournal {
	t.Helper()
	r := &restore{opts: RestoreOptions{Dir: l.dir}, log: NewProgress(&bytes.Buffer{}, &bytes.Buffer{})}
	if err := r.loadJournal(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, restoreJournalFile))
	if strings.Contains(string(b), `"finished": true`) {
		return restoreJournal{Finished: true}
	}
	return r.journal
}

// TestRestore drives the restore over scripted nodes: what each node is
// told, in order; refusals before any change; --dry-run; --etcd-only; and
// a re-run after a failure resuming where it stopped.
func TestRestore(t *testing.T) {
	t.Parallel()
	dir := realBackup(t)
	tmpl, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Each subtest restores its own copy: restore.json lives in the backup.
	copyBackup := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), filepath.Base(dir))
		os.Mkdir(d, 0o700)
		for _, e := range tmpl {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(d, e.Name()), b, 0o600)
		}
		return d
	}
	stamp := filepath.Base(dir)
	arch := "/var/backups/haadm/" + stamp + "/etc.tgz"

	t.Run("order", func(t *testing.T) {
		t.Parallel()
		l := newRestoreLab(t, copyBackup(t))
		out, err := l.run(t, RestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"upload etcd-restored.tar", "unpack etcd data", "stop", "swap etcd data", "unpack etc", "systemctl restart kubelet"}; !slices.Equal(l.changes("shaolin"), want) {
			t.Errorf("shaolin:\n got %q\nwant %q", l.changes("shaolin"), want)
		}
		for _, n := range []string{"emei", "wudang"} {
			if want := []string{"stop", "unpack etc", "systemctl restart kubelet"}; !slices.Equal(l.changes(n), want) {
				t.Errorf("%s:\n got %q\nwant %q", n, l.changes(n), want)
			}
		}
		if !slices.Equal(l.waits, []string{"etcd", "apiserver"}) {
			t.Errorf("waits %v", l.waits)
		}
		// Workers then: etcd data moved aside; the LB node reloads nginx.
		emei := l.runs("emei")
		mustContain(t, emei, "tar -xzf \"$a\" -C / --exclude='etc/kubernetes/manifests/*' etc/kubernetes etc/nginx", "cp -a -- \"/$p\" \"$b.tmp\"", "d=/var/lib/etcd; b=/var/lib/haadm/restore-", "systemctl reload nginx", "a="+arch)
		if sh := l.runs("shaolin"); strings.Contains(sh, "d=/var/lib/etcd; b=/var/lib/haadm/restore-") || strings.Contains(sh, "nginx") {
			t.Errorf("the first master's etcd data moved aside, or nginx reloaded:\n%s", sh)
		}
		mustContain(t, out, "restored "+l.dir, "etcd: one member, shaolin on shaolin", "/var/lib/haadm/restore-", "next: kubectl")
		if !l.journal(t).Finished {
			t.Error("restore.json does not say finished")
		}
	})

	t.Run("dry run changes nothing", func(t *testing.T) {
		t.Parallel()
		l := newRestoreLab(t, copyBackup(t))
		out, err := l.run(t, RestoreOptions{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		for n := range l.fakes {
			if c := l.changes(n); len(c) != 0 {
				t.Errorf("%s: %v", n, c)
			}
		}
		if _, err := os.Stat(filepath.Join(l.dir, restoreJournalFile)); err == nil {
			t.Error("a dry run wrote restore.json")
		}
		mustContain(t, out, "dry run: restore "+l.dir, "step(s); nothing was changed",
			"[restore] shaolin: stop the control plane: static pod manifests moved to /etc/kubernetes/haadm-restore-",
			"[restore] shaolin: etcd snapshot restored as member shaolin (https://10.250.0.11:2380) into /var/lib/haadm/restore-",
			"[restore] emei: /etc/kubernetes /etc/nginx restored from "+arch+" (a worker then;",
			"[restore] shaolin: apiserver answers /readyz at 10.250.0.11:6443")
	})

	t.Run("missing archive refused before any change", func(t *testing.T) {
		t.Parallel()
		l := newRestoreLab(t, copyBackup(t))
		l.fakes["wudang"].Respond("if test -s ", "missing\n", nil)
		_, err := l.run(t, RestoreOptions{})
		if err == nil {
			t.Fatal("restore went ahead without wudang's archive")
		}
		mustContain(t, err.Error(), "node wudang: "+arch+" is missing or empty", "nothing was changed", "--etcd-only")
		for n := range l.fakes {
			if c := l.changes(n); len(c) != 0 {
				t.Errorf("%s changed: %v", n, c)
			}
		}
	})

	t.Run("etcd only", func(t *testing.T) {
		t.Parallel()
		l := newRestoreLab(t, copyBackup(t))
		l.fakes["wudang"].Respond("if test -s ", "missing\n", nil) // not needed
		if _, err := l.run(t, RestoreOptions{EtcdOnly: true}); err != nil {
			t.Fatal(err)
		}
		if want := []string{"upload etcd-restored.tar", "unpack etcd data", "stop", "swap etcd data", "unhold", "systemctl restart kubelet"}; !slices.Equal(l.changes("shaolin"), want) {
			t.Errorf("shaolin:\n got %q\nwant %q", l.changes("shaolin"), want)
		}
		if want := []string{"stop", "etcd data aside", "systemctl restart kubelet"}; !slices.Equal(l.changes("wudang"), want) {
			t.Errorf("wudang: %q, want %q", l.changes("wudang"), want)
		}
	})

	t.Run("a re-run resumes", func(t *testing.T) {
		t.Parallel()
		l := newRestoreLab(t, copyBackup(t))
		l.fakes["wudang"].Fail("systemctl restart kubelet", 1, "Failed to restart kubelet.service: Unit kubelet.service not found.")
		_, err := l.run(t, RestoreOptions{})
		if err == nil {
			t.Fatal("restore succeeded although wudang's kubelet did not restart")
		}
		mustContain(t, err.Error(), "node wudang: restart kubelet", "run the same restore again to resume", restoreJournalFile)
		j := l.journal(t)
		if j.Finished || len(j.Done) == 0 {
			t.Fatalf("journal after a failure: %+v", j)
		}
		first := l.journalStamp(t)
		l.fakes["wudang"].Respond("systemctl restart kubelet", "", nil)
		defer func() {
			if again := l.journalStamp(t); again != first {
				t.Errorf("the re-run took a new stamp %s instead of resuming %s", again, first)
			}
		}()
		if _, err := l.run(t, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		// Nothing done twice but what had not finished.
		if want := []string{"upload etcd-restored.tar", "unpack etcd data", "stop", "swap etcd data", "unpack etc", "systemctl restart kubelet"}; !slices.Equal(l.changes("shaolin"), want) {
			t.Errorf("shaolin after the re-run:\n got %q\nwant %q", l.changes("shaolin"), want)
		}
		if want := []string{"stop", "unpack etc", "systemctl restart kubelet", "systemctl restart kubelet"}; !slices.Equal(l.changes("wudang"), want) {
			t.Errorf("wudang after the re-run:\n got %q\nwant %q", l.changes("wudang"), want)
		}
		if !l.journal(t).Finished {
			t.Error("not finished after the re-run")
		}
	})

	t.Run("unreachable first master", func(t *testing.T) {
		t.Parallel()
		l := newRestoreLab(t, copyBackup(t))
		dial := func(_ context.Context, name string) (node.Host, error) {
			if name == "shaolin" {
				return nil, errors.New("node shaolin: connecting: no route to host")
			}
			return l.fakes[name], nil
		}
		err := Restore(t.Context(), dial, RestoreOptions{Dir: l.dir}, NewProgress(&bytes.Buffer{}, &bytes.Buffer{}), &bytes.Buffer{})
		if err == nil {
			t.Fatal("restore without the first master")
		}
		mustContain(t, err.Error(), "no route to host", "nothing was changed", "first master shaolin must be reachable")
		for n, h := range l.fakes {
			if n != "shaolin" && len(h.Calls()) > 1 { // Close
				t.Errorf("%s was used: %v", n, h.Calls())
			}
		}
	})
}

// journalStamp is the stamp of the restore recorded in restore.json.
func (l *restoreLab) journalStamp(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, restoreJournalFile))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(`"stamp": "`))
	return string(b[i+10 : i+10+len(backup.StampLayout)])
}

// runs joins the commands a fake ran.
func (l *restoreLab) runs(n string) string {
	var b strings.Builder
	for _, c := range l.fakes[n].Calls() {
		if c.Kind == node.CallRun {
			b.WriteString(c.Cmd + "\n")
		}
	}
	return b.String()
}

func TestListening(t *testing.T) {
	t.Parallel()
	ss := "LISTEN 0 4096 10.250.0.11:2379 0.0.0.0:*\nLISTEN 0 4096 127.0.0.1:2381 0.0.0.0:*\nLISTEN 0 4096 *:6443 *:*\nLISTEN 0 4096 [::]:22 [::]:*\n"
	if got := listening(ss, 2379, 6443); !slices.Equal(got, []string{"10.250.0.11:2379", "*:6443"}) {
		t.Errorf("listening = %v", got)
	}
	if got := listening("", 2379); len(got) != 0 {
		t.Errorf("nothing listening = %v", got)
	}
}
