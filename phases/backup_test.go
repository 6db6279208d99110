package phases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/haadm/haadm/backup"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

const backupCmdPrefix = "mkdir -p /var/backups/haadm/"

// respondArchives makes every fake archive as asked and report what it
// archived: /etc/kubernetes, and /etc/nginx where it was asked for.
func (f *fixture) respondArchives() {
	for n := range f.fakes {
		f.handle(n, func(cmd string) (string, bool, error) {
			if strings.HasPrefix(cmd, "rm -rf -- /var/backups/haadm/") {
				return "", true, nil
			}
			if !strings.HasPrefix(cmd, backupCmdPrefix) {
				return "", false, nil
			}
			out := "etc/kubernetes\n"
			if strings.Contains(cmd, "etc/kubernetes etc/nginx etc/haproxy etc/keepalived &&") {
				out += "etc/nginx\n"
			}
			return out, true, nil
		})
	}
}

// listBackups lists the backups List finds in the fixture's backup dir.
func (f *fixture) listBackups() []backup.Dir {
	f.t.Helper()
	dirs, err := backup.List(f.c.Opts.BackupDir)
	if err != nil {
		f.t.Fatal(err)
	}
	return dirs
}

// TestBackup takes a real snapshot of shaolin's (embedded) etcd and checks
// that it reaches both the operator's machine and shaolin, streamed and
// intact, private to root, described by a manifest, and that every node
// archived /etc/kubernetes (the LB node /etc/nginx too).
func TestBackup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.c.Opts.Command = "promote"
	f.c.Opts.BackupDir = filepath.Join(t.TempDir(), "haadm-backups") // made by Backup
	f.startEtcd()
	ctx := t.Context()
	cli, err := f.c.EtcdClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Something to find in the snapshot.
	put, err := cli.Put(ctx, "/registry/haadm/backup-test", "before the promotion")
	if err != nil {
		t.Fatal(err)
	}
	f.respondArchives()
	rec, err := Backup(ctx, f.c)
	if err != nil {
		t.Fatal(err)
	}

	stamps, err := os.ReadDir(f.c.Opts.BackupDir)
	if err != nil || len(stamps) != 1 {
		t.Fatalf("backup dir holds %v (%v), want one timestamped folder", stamps, err)
	}
	stamp := stamps[0].Name()
	if ts, err := time.Parse(backup.StampLayout, stamp); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("folder %q is not a UTC timestamp of now (%v)", stamp, err)
	}
	local := filepath.Join(f.c.Opts.BackupDir, stamp)
	if rec.Dir() != local {
		t.Errorf("recorder writes to %s, want %s", rec.Dir(), local)
	}
	// Every directory 0700, every file 0600, nothing left over.
	for _, p := range []string{f.c.Opts.BackupDir, local} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %04o, want 0700", p, fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(local)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	if want := []string{"etcd-snapshot.db", "etcd.yaml", "manifest.json"}; !slices.Equal(names, want) {
		t.Errorf("backup holds %v, want %v", names, want)
	}
	nodeDir := "/var/backups/haadm/" + stamp

	for name := range f.fakes {
		paths := "etc/kubernetes"
		if name == "emei" {
			paths += " etc/nginx etc/haproxy etc/keepalived"
		}
		want := "mkdir -p " + nodeDir + " && chmod 700 /var/backups/haadm " + nodeDir + " && umask 077 && tar -czf " + nodeDir + "/etc.tgz -C / --ignore-failed-read " + paths +
			" && chmod 600 " + nodeDir + "/etc.tgz && for p in " + paths + "; do if [ -e \"/$p\" ]; then echo \"$p\"; fi; done"
		if got := f.calls(name, node.CallRun); len(got) != 1 || got[0] != want {
			t.Errorf("%s ran %q, want %q", name, got, want)
		}
	}

	snap, err := os.ReadFile(filepath.Join(local, "etcd-snapshot.db"))
	if err != nil {
		t.Fatal(err)
	}
	up := f.fakes["shaolin"].Calls()
	up = slices.DeleteFunc(up, func(c node.Call) bool { return c.Kind != node.CallUpload })
	if len(up) != 1 || up[0].Path != nodeDir+"/etcd-snapshot.db" || up[0].Mode != 0o600 || !bytes.Equal(up[0].Data, snap) {
		t.Errorf("shaolin's copy: uploads %d, want one of the local snapshot to %s, mode 0600", len(up), nodeDir)
	}
	if w := f.calls("shaolin", node.CallWrite); len(w) != 0 {
		t.Errorf("writes on shaolin: %v (the snapshot is streamed)", w)
	}
	if etcdYAML, _ := os.ReadFile(filepath.Join(local, "etcd.yaml")); !bytes.Equal(etcdYAML, f.lab.files["shaolin"][manifestsDir+"/etcd.yaml"]) {
		t.Error("etcd.yaml in the backup is not shaolin's etcd manifest")
	}
	sum := sha256.Sum256(snap)
	sumHex := hex.EncodeToString(sum[:])
	mustContain(t, f.console.String(), "[backup] shaolin: etcd snapshot ("+strconv.Itoa(len(snap))+" bytes, sha256 "+sumHex[:12]+") verified, kept in "+
		local+" and shaolin:"+nodeDir+"; kept as the original")
	mustContain(t, f.console.String(), "[backup] emei: /etc/kubernetes etc/nginx etc/haproxy etc/keepalived archived to "+nodeDir+"/etc.tgz (")
	// One command per node; the snapshot reaches shaolin in one stream.
	for n := range f.fakes {
		want := map[string]int{"Run": 1}
		if n == "shaolin" {
			want = map[string]int{"Run": 1, "Upload": 1, "ReadFiles": 2} // the etcd credentials, the etcd manifest
		}
		got := f.meters[n].counts()
		delete(got, "Dial")
		if !maps.Equal(got, want) {
			t.Errorf("%s: round trips %v, want %v", n, got, want)
		}
	}

	// The manifest says what the backup is.
	m, err := backup.Load(local)
	if err != nil {
		t.Fatal(err)
	}
	if m.Command != "promote" || !m.Started.Truncate(time.Second).Equal(mustStamp(t, stamp)) || m.FirstMaster != "shaolin" ||
		!slices.Equal(m.Options.Nodes, []string{"emei", "wudang"}) || m.Options.LBNode != "emei" || m.Options.LBMode != "external" || m.Options.Endpoint != "10.250.0.12:8443" ||
		!slices.Equal(m.ControlPlanes, []string{"shaolin"}) || m.APIServerPort != 6443 {
		t.Errorf("manifest: %+v", m)
	}
	if len(m.Etcd.Members) != 1 || m.Etcd.Members[0].Name != "shaolin" || m.Etcd.Members[0].ID == "" || m.Etcd.Members[0].Learner ||
		!slices.Equal(m.Etcd.Members[0].PeerURLs, []string{"https://10.250.0.11:2380"}) || m.Etcd.ClusterID == "" || m.Etcd.ClusterID == "0" {
		t.Errorf("manifest etcd: %+v", m.Etcd)
	}
	if m.Snapshot.Size != int64(len(snap)) || m.Snapshot.SHA256 != sumHex || m.Snapshot.Revision < put.Header.Revision {
		t.Errorf("manifest snapshot %+v; file %d bytes sha256 %s, key written at revision %d", m.Snapshot, len(snap), sumHex, put.Header.Revision)
	}
	for n := range f.fakes {
		want := []string{"etc/kubernetes"}
		if n == "emei" {
			want = append(want, "etc/nginx")
		}
		if a := m.Archives[n]; a.Path != nodeDir+"/etc.tgz" || !slices.Equal(a.Paths, want) {
			t.Errorf("archive of %s: %+v, want %v", n, a, want)
		}
	}
	if !m.Original || len(m.Changes) != 0 || m.Result != nil {
		t.Errorf("a first backup of a one-master cluster: original %v, changes %v, result %v", m.Original, m.Changes, m.Result)
	}

	// The snapshot is a bolt database (plus etcd's sha256 trailer) holding
	// the key written before: restorable with etcdutl (see restore_test).
	if len(snap)%512 != sha256.Size {
		t.Fatalf("snapshot of %d bytes has no sha256 trailer", len(snap))
	}
	db := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(db, snap[:len(snap)-sha256.Size], 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(db, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("snapshot is not a bolt database: %v", err)
	}
	defer bdb.Close()
	found := false
	_ = bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("key"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			found = found || bytes.Contains(v, []byte("/registry/haadm/backup-test"))
			return nil
		})
	})
	if !found {
		t.Error("the snapshot lacks the key written before the backup")
	}
}

func mustStamp(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(backup.StampLayout, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestBackupOriginal: the first backup of an etcd cluster is the original
// even when haadm already grew it (a promotion begun without haadm's
// backups); the next one of the same cluster is not. A cluster of one
// member and one control plane is always as kubeadm made it.
func TestBackupOriginal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.useFakeEtcd(labVoters()...)
	f.respondArchives()
	for i, want := range []bool{true, false, false} {
		if _, err := Backup(t.Context(), f.c); err != nil {
			t.Fatal(err)
		}
		dirs := f.listBackups()
		if len(dirs) != i+1 || dirs[i].Manifest.Original != want {
			t.Fatalf("backup %d: %d backups, original %v, want %v", i+1, len(dirs), dirs[len(dirs)-1].Manifest.Original, want)
		}
	}
	if strings.Count(f.console.String(), "kept as the original") != 1 {
		t.Errorf("console:\n%s", f.console.String())
	}

	g := newFixture(t, setup{})
	g.useFakeEtcd(voter(1, "shaolin", shaolinIP))
	g.respondArchives()
	for range 2 {
		if _, err := Backup(t.Context(), g.c); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range g.listBackups() {
		if !d.Manifest.Original {
			t.Errorf("%s: a backup of the untouched cluster is not marked original", d.Stamp)
		}
	}
}

// TestBackupPrunes keeps the newest --keep-backups and every original,
// removes the rest locally and on the nodes that hold their copies, and
// never touches what haadm did not write.
func TestBackupPrunes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.c.Opts.KeepBackups = 3
	f.useFakeEtcd(labVoters()...)
	f.respondArchives()
	root := f.c.Opts.BackupDir
	old := func(i int) string { return time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC).Format(backup.StampLayout) }
	for i := range 6 {
		dir := filepath.Join(root, old(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		m := &backup.Manifest{Format: backup.Format, Command: "promote", Original: i == 1,
			Archives: map[string]backup.Archive{"shaolin": {Path: "x"}, "emei": {Path: "x"}}}
		if i == 2 {
			m.Archives = map[string]backup.Archive{"shaolin": {Path: "x"}} // a backup of a smaller run
		}
		if err := backup.Save(dir, m); err != nil {
			t.Fatal(err)
		}
	}
	foreign := []string{"notes", old(50)} // a folder of the operator's; a stamp without a manifest
	for _, d := range foreign {
		os.Mkdir(filepath.Join(root, d), 0o700)
	}
	other := filepath.Join(root, old(51)) // someone else's manifest.json
	os.Mkdir(other, 0o700)
	os.WriteFile(filepath.Join(other, "manifest.json"), []byte(`{"format":"other/v1"}`), 0o600)

	if _, err := Backup(t.Context(), f.c); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, d := range f.listBackups() {
		kept = append(kept, d.Stamp)
	}
	// Newest three: old 4, old 5 and the new one; old 1 is the original.
	if len(kept) != 4 || kept[0] != old(1) || kept[1] != old(4) || kept[2] != old(5) {
		t.Errorf("kept %v", kept)
	}
	for _, d := range append(foreign, old(51)) {
		if _, err := os.Stat(filepath.Join(root, d)); err != nil {
			t.Errorf("%s, not haadm's, was touched: %v", d, err)
		}
	}
	rm := func(n string) []string {
		var out []string
		for _, c := range f.calls(n, node.CallRun) {
			if strings.HasPrefix(c, "rm -rf") {
				out = append(out, c)
			}
		}
		return out
	}
	nd := func(i int) string { return "/var/backups/haadm/" + old(i) }
	if got, want := rm("shaolin"), []string{"rm -rf -- " + nd(0) + " " + nd(2) + " " + nd(3)}; !slices.Equal(got, want) {
		t.Errorf("shaolin: %q, want %q", got, want)
	}
	if got, want := rm("emei"), []string{"rm -rf -- " + nd(0) + " " + nd(3)}; !slices.Equal(got, want) {
		t.Errorf("emei: %q, want %q", got, want)
	}
	if got := rm("wudang"); len(got) != 0 {
		t.Errorf("wudang held none of them, yet ran %q", got)
	}
	mustContain(t, f.console.String(), "[backup] pruned 3 old backup(s) (keeping the newest 3 and the originals): "+old(0)+", "+old(2)+", "+old(3))
}

// TestBackupPruneBestEffort: a node that cannot remove its old copies
// costs a log line, not the run.
func TestBackupPruneBestEffort(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.c.Opts.KeepBackups = 1
	f.useFakeEtcd(labVoters()...)
	f.respondArchives()
	f.fakes["emei"].Fail("rm -rf", 1, "rm: cannot remove: Read-only file system")
	for range 2 {
		if _, err := Backup(t.Context(), f.c); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.listBackups()); n != 2 { // the newest and the original
		t.Errorf("%d backups left, want 2", n)
	}
	if _, err := Backup(t.Context(), f.c); err != nil {
		t.Fatal(err)
	}
	if n := len(f.listBackups()); n != 2 {
		t.Errorf("%d backups left, want 2", n)
	}
	mustContain(t, f.console.String(), "[backup] emei: could not prune old backups (remove them by hand): ", "Read-only file system")
}

// TestBackupStopsOnFailure: a node that cannot archive stops the backup
// before the snapshot, with the node's error; the other nodes' archives,
// taken at the same time, are harmless.
func TestBackupStopsOnFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.useFakeEtcd(labVoters()...)
	for n, h := range f.fakes {
		if n == "emei" {
			h.Fail(backupCmdPrefix, 2, "tar: etc/kubernetes: Cannot open: Permission denied")
		} else {
			h.Respond(backupCmdPrefix, "", nil)
		}
	}
	_, err := Backup(t.Context(), f.c)
	if err == nil {
		t.Fatal("Backup succeeded although emei's archive failed")
	}
	mustContain(t, err.Error(), "node emei", "Permission denied")
	if entries, _ := os.ReadDir(f.c.Opts.BackupDir); len(entries) != 0 {
		t.Errorf("backup dir holds %v after a failure", entries)
	}
	if w := f.calls("shaolin", node.CallUpload); len(w) != 0 {
		t.Errorf("snapshot taken after a failed archive: uploads %v", w)
	}
}

// TestBackupSnapshotFails: without a snapshot there is no backup, and
// nothing is left on the operator's machine that looks like one; the same
// for a snapshot shaolin did not receive intact.
func TestBackupSnapshotFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.useFakeEtcd(labVoters()...).snapErr = errors.New("etcdserver: request timed out")
	f.respondArchives()
	_, err := Backup(t.Context(), f.c)
	if err == nil || !strings.Contains(err.Error(), "starting etcd snapshot: etcdserver: request timed out") {
		t.Fatalf("Backup = %v", err)
	}
	if entries, _ := os.ReadDir(f.c.Opts.BackupDir); len(entries) != 0 {
		t.Errorf("backup dir holds %v", entries)
	}
	if w := f.calls("shaolin", node.CallUpload); len(w) != 0 {
		t.Errorf("shaolin: uploads %v", w)
	}

	g := newFixture(t, setup{})
	g.useFakeEtcd(labVoters()...)
	g.respondArchives()
	g.fakes["shaolin"].FailUpload("/var/backups/haadm/"+time.Now().UTC().Format(backup.StampLayout)+"/etcd-snapshot.db", "sha256 mismatch")
	g.fakes["shaolin"].FailUpload("/var/backups/haadm/"+time.Now().UTC().Add(time.Second).Format(backup.StampLayout)+"/etcd-snapshot.db", "sha256 mismatch")
	if _, err := Backup(t.Context(), g.c); err == nil || !strings.Contains(err.Error(), "node shaolin: uploading") {
		t.Fatalf("Backup with a failed upload = %v", err)
	}
	if entries, _ := os.ReadDir(g.c.Opts.BackupDir); len(entries) != 0 {
		t.Errorf("backup dir holds %v after a failed upload", entries)
	}
}

// TestBackupArchivesNginx: /etc/nginx is archived wherever haadm runs nginx.
func TestBackupArchivesNginx(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts      Options
		withNginx []string
	}{
		{Options{Nodes: []string{"emei", "wudang"}, LBNode: "wudang"}, []string{"wudang"}},
		{Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeNodeLocal}, []string{"emei", "shaolin", "wudang"}},
		{Options{Nodes: []string{"emei", "wudang"}, LBMode: lb.ModeNone, Endpoint: "k8s-api.lab:6443"}, nil},
	} {
		f := newFixture(t, setup{Opts: tt.opts})
		f.useFakeEtcd(labVoters()...)
		f.respondArchives()
		if _, err := Backup(t.Context(), f.c); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range []string{"emei", "shaolin", "wudang"} {
			runs := f.calls(n, node.CallRun)
			if len(runs) != 1 || !strings.HasPrefix(runs[0], backupCmdPrefix) {
				t.Errorf("%s ran %q", n, runs)
			} else if strings.Contains(runs[0], " etc/kubernetes etc/nginx etc/haproxy etc/keepalived && ") {
				got = append(got, n)
			}
		}
		if !slices.Equal(got, tt.withNginx) {
			t.Errorf("%s mode: /etc/nginx archived on %v, want %v", f.c.Opts.LBMode, got, tt.withNginx)
		}
		m := f.listBackups()[0].Manifest
		for _, n := range tt.withNginx {
			if !slices.Contains(m.Archives[n].Paths, "etc/nginx") {
				t.Errorf("manifest: %s's archive %v lacks etc/nginx", n, m.Archives[n])
			}
		}
	}
}

// TestRunRecordsChanges: the backup's manifest records each applied step
// of the run (waits are no changes) and how the run ended.
func TestRunRecordsChanges(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tt := range []struct {
		name    string
		doErr   error
		changes []string
		status  string
		errText string
	}{
		{"finished", nil, []string{"b emei 2 files", "b emei restart"}, backup.Finished, ""},
		{"failed", boom, nil, backup.Failed, "phase b: node emei: 2 files: boom"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := runFixture(t, false)
			f.respondArchives()
			j := &journal{}
			list := []Phase{&stubPhase{name: "a", j: j}, &stubPhase{name: "b", node: "emei", left: []string{"2 files", "restart"}, waits: []string{"ready"}, doErr: tt.doErr, j: j}}
			err := Run(testCtx(t, 30*time.Second), f.c, list, &bytes.Buffer{})
			if (err != nil) != (tt.doErr != nil) {
				t.Fatal(err)
			}
			dirs := f.listBackups()
			if len(dirs) != 1 {
				t.Fatalf("%d backups", len(dirs))
			}
			m := dirs[0].Manifest
			var got []string
			for _, c := range m.Changes {
				got = append(got, c.Phase+" "+c.Node+" "+c.What)
				if c.Time.Before(m.Started) || time.Since(c.Time) > time.Minute {
					t.Errorf("change %v at %s, backup started %s", c, c.Time, m.Started)
				}
			}
			if !slices.Equal(got, tt.changes) {
				t.Errorf("changes %q, want %q", got, tt.changes)
			}
			if m.Result == nil || m.Result.Status != tt.status || !strings.HasPrefix(m.Result.Error, tt.errText) || m.Result.Time.IsZero() {
				t.Errorf("result %+v, want %s %q", m.Result, tt.status, tt.errText)
			}
			if fi, err := os.Stat(filepath.Join(dirs[0].Path, "manifest.json")); err != nil || fi.Mode().Perm() != fs.FileMode(0o600) {
				t.Errorf("manifest.json after the run: %v %v", fi.Mode(), err)
			}
		})
	}
}
