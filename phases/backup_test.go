package phases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
)

const backupCmdPrefix = "mkdir -p /var/backups/haadm/"

// TestBackup takes a real snapshot of shaolin's (embedded) etcd and checks
// that it reaches both the operator's machine and shaolin, intact, and that
// every node archived /etc/kubernetes (the LB node /etc/nginx too).
func TestBackup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.startEtcd()
	ctx := t.Context()
	cli, err := f.c.EtcdClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Something to find in the snapshot.
	if _, err := cli.Put(ctx, "/registry/haadm/backup-test", "before the promotion"); err != nil {
		t.Fatal(err)
	}
	for _, h := range f.fakes {
		h.Respond(backupCmdPrefix, "", nil)
	}
	if err := Backup(ctx, f.c); err != nil {
		t.Fatal(err)
	}

	stamps, err := os.ReadDir(f.c.Opts.BackupDir)
	if err != nil || len(stamps) != 1 {
		t.Fatalf("backup dir holds %v (%v), want one timestamped folder", stamps, err)
	}
	stamp := stamps[0].Name()
	if ts, err := time.Parse("20060102T150405Z", stamp); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("folder %q is not a UTC timestamp of now (%v)", stamp, err)
	}
	if fi, _ := os.Stat(filepath.Join(f.c.Opts.BackupDir, stamp)); fi.Mode().Perm() != 0o700 {
		t.Errorf("local backup folder mode %04o, want 0700", fi.Mode().Perm())
	}
	nodeDir := "/var/backups/haadm/" + stamp

	for name := range f.fakes {
		want := "mkdir -p " + nodeDir + " && chmod 700 /var/backups/haadm " + nodeDir + " && tar -czf " + nodeDir + "/etc.tgz -C / --ignore-failed-read etc/kubernetes"
		if name == "emei" {
			want += " etc/nginx"
		}
		if got := f.calls(name, node.CallRun); len(got) != 1 || got[0] != want {
			t.Errorf("%s ran %q, want %q", name, got, want)
		}
	}

	local := filepath.Join(f.c.Opts.BackupDir, stamp, "etcd-snapshot.db")
	snap, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(local); fi.Mode().Perm() != 0o600 {
		t.Errorf("local snapshot mode %04o, want 0600", fi.Mode().Perm())
	}
	onNode, mode := f.file("shaolin", nodeDir+"/etcd-snapshot.db")
	if !bytes.Equal(onNode, snap) || mode != 0o600 {
		t.Errorf("shaolin's copy differs from the local one or has mode %04o", mode)
	}
	if w := f.calls("shaolin", node.CallWrite); len(w) != 1 {
		t.Errorf("writes on shaolin: %v", w)
	}
	sum := sha256.Sum256(snap)
	mustContain(t, f.console.String(), "[backup] shaolin: etcd snapshot ("+strconv.Itoa(len(snap))+" bytes, sha256 "+hex.EncodeToString(sum[:])[:12]+") verified, kept in "+
		filepath.Join(f.c.Opts.BackupDir, stamp)+" and shaolin:"+nodeDir)
	mustContain(t, f.console.String(), "[backup] emei: /etc/kubernetes etc/nginx archived to "+nodeDir+"/etc.tgz (")
	// One command per node; the snapshot reaches shaolin in one write.
	for n := range f.fakes {
		want := map[string]int{"Run": 1}
		if n == "shaolin" {
			want = map[string]int{"Run": 1, "WriteFiles": 1, "ReadFiles": 1} // and the etcd credentials
		}
		got := f.meters[n].counts()
		delete(got, "Dial")
		if !maps.Equal(got, want) {
			t.Errorf("%s: round trips %v, want %v", n, got, want)
		}
	}

	// The snapshot is a bolt database (plus etcd's sha256 trailer) holding
	// the key written before: restorable with etcdutl.
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
	err := Backup(t.Context(), f.c)
	if err == nil {
		t.Fatal("Backup succeeded although emei's archive failed")
	}
	mustContain(t, err.Error(), "node emei", "Permission denied")
	if entries, _ := os.ReadDir(f.c.Opts.BackupDir); len(entries) != 0 {
		t.Errorf("backup dir holds %v after a failure", entries)
	}
	if w := f.calls("shaolin", node.CallWrite); len(w) != 0 {
		t.Errorf("snapshot taken after a failed archive: writes %v", w)
	}
}

// TestBackupSnapshotFails: without a snapshot there is no backup, and
// nothing is left on the operator's machine that looks like one.
func TestBackupSnapshotFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{})
	f.useFakeEtcd(labVoters()...).snapErr = errors.New("etcdserver: request timed out")
	for _, h := range f.fakes {
		h.Respond(backupCmdPrefix, "", nil)
	}
	err := Backup(t.Context(), f.c)
	if err == nil || !strings.Contains(err.Error(), "starting etcd snapshot: etcdserver: request timed out") {
		t.Fatalf("Backup = %v", err)
	}
	if entries, _ := os.ReadDir(f.c.Opts.BackupDir); len(entries) != 0 {
		t.Errorf("backup dir holds %v", entries)
	}
	if w := f.calls("shaolin", node.CallWrite); len(w) != 0 {
		t.Errorf("shaolin: wrote %v", w)
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
		for _, h := range f.fakes {
			h.Respond(backupCmdPrefix, "", nil)
		}
		if err := Backup(t.Context(), f.c); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range []string{"emei", "shaolin", "wudang"} {
			runs := f.calls(n, node.CallRun)
			if len(runs) != 1 || !strings.HasPrefix(runs[0], backupCmdPrefix) {
				t.Errorf("%s ran %q", n, runs)
			} else if strings.HasSuffix(runs[0], " etc/kubernetes etc/nginx") {
				got = append(got, n)
			}
		}
		if !slices.Equal(got, tt.withNginx) {
			t.Errorf("%s mode: /etc/nginx archived on %v, want %v", f.c.Opts.LBMode, got, tt.withNginx)
		}
	}
}
