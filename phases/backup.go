package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	etcdsnap "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/haadm/haadm/backup"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// DefaultKeepBackups is how many of the newest backups pruning keeps,
// originals aside.
const DefaultKeepBackups = 5

// Backup takes, before anything changes, an archive of /etc/kubernetes of
// every node involved (and /etc/nginx of the LB nodes), all at once, then
// an etcd snapshot streamed to the operator's machine and from there to the
// first master. It writes the backup's manifest.json, prunes old backups,
// and returns the recorder the run appends its changes to. The runner takes
// it whenever a plan has work; it is not a phase.
func Backup(ctx context.Context, c *Cluster) (*backup.Recorder, error) {
	if err := os.MkdirAll(c.Opts.BackupDir, backup.DirMode); err != nil {
		return nil, err
	}
	earlier, err := backup.List(c.Opts.BackupDir)
	if err != nil {
		return nil, fmt.Errorf("listing earlier backups in %s: %w", c.Opts.BackupDir, err)
	}
	local, started, err := reserve(c.Opts.BackupDir, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(local) // half a backup must not pass for one
		}
	}()
	stamp := filepath.Base(local)
	nodeDir := backup.NodeDir(stamp)
	m := &backup.Manifest{
		Format: backup.Format, Command: c.Opts.Command, Started: started, FirstMaster: c.First.Name,
		Options:       backup.Options{Nodes: c.Opts.Nodes, LBMode: string(c.Opts.LBMode), LBNode: c.Opts.LBNode, Endpoint: c.Opts.Endpoint},
		APIServerPort: c.APIServerPort(), Archives: map[string]backup.Archive{},
	}
	for _, n := range keys(c.Nodes) {
		if c.Nodes[n].ControlPlane {
			m.ControlPlanes = append(m.ControlPlanes, n)
		}
	}
	if !slices.Contains(m.ControlPlanes, c.First.Name) {
		m.ControlPlanes = append([]string{c.First.Name}, m.ControlPlanes...)
	}
	hosts := keys(c.Hosts)
	archives := make([]backup.Archive, len(hosts))
	// Archives are independent: all nodes at once.
	if err := forEach(len(hosts), func(i int) error {
		n := hosts[i]
		paths := []string{"etc/kubernetes"}
		if slices.Contains(c.LBNodes(), n) {
			paths = append(paths, lbPaths()...)
		}
		t0 := time.Now()
		out, err := c.Host(n).Run(ctx, archiveScript(nodeDir, paths))
		if err != nil {
			return err
		}
		archives[i] = backup.Archive{Path: nodeDir + "/" + backup.ArchiveFile, Paths: strings.Fields(out)}
		c.Log.Step("backup", n, time.Since(t0), "/"+strings.Join(paths, " ")+" archived to "+archives[i].Path)
		return nil
	}); err != nil {
		return nil, err
	}
	for i, n := range hosts {
		m.Archives[n] = archives[i]
	}

	t0 := time.Now()
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return nil, err
	}
	// The header's cluster ID tells one etcd cluster's backups from another's.
	members, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: etcd member list: %w", c.First.Name, err)
	}
	if members.Header != nil {
		m.Etcd.ClusterID = fmt.Sprintf("%x", members.Header.ClusterId)
	}
	for _, mb := range members.Members {
		m.Etcd.Members = append(m.Etcd.Members, backup.Member{Name: mb.Name, ID: fmt.Sprintf("%x", mb.ID), PeerURLs: mb.PeerURLs, Learner: mb.IsLearner})
	}
	src, err := c.sourceFiles(ctx)
	if err != nil {
		return nil, err
	}
	info, err := snapshotTo(ctx, c, filepath.Join(local, backup.SnapshotFile))
	if err != nil {
		return nil, err
	}
	m.Snapshot = backup.Snapshot{Size: info.Size, SHA256: info.SHA256, Version: info.Version}
	// etcd sends no revision with a snapshot; the database itself has it.
	// It only informs the operator, so a failure to read it (the sha256
	// trailer has already vouched for the bytes) leaves it out.
	if st, err := etcdsnap.NewV3(zap.NewNop()).Status(filepath.Join(local, backup.SnapshotFile)); err == nil {
		m.Snapshot.Revision = st.Revision
	} else {
		c.Log.Detail("backup", c.First.Name, "snapshot revision unknown: "+err.Error())
	}
	// restore rebuilds the first master's member from its etcd manifest.
	if err := backup.WriteFile(filepath.Join(local, backup.EtcdManifestFile), src.pods["etcd.yaml"]); err != nil {
		return nil, err
	}
	snap, err := os.Open(filepath.Join(local, backup.SnapshotFile))
	if err != nil {
		return nil, err
	}
	defer snap.Close()
	if err := c.Host(c.First.Name).Upload(ctx, node.Stream{Path: nodeDir + "/" + backup.SnapshotFile, Mode: backup.FileMode,
		Size: info.Size, SHA256: info.SHA256, Data: snap}); err != nil {
		return nil, err
	}
	m.Original = backup.IsOriginal(m, earlier)
	if err := backup.Save(local, m); err != nil {
		return nil, err
	}
	ok = true
	what := fmt.Sprintf("etcd snapshot (%d bytes, sha256 %s) verified, kept in %s and %s:%s", info.Size, info.SHA256[:12], local, c.First.Name, nodeDir)
	if m.Original {
		what += "; kept as the original (the cluster before this promotion)"
	}
	c.Log.Step("backup", c.First.Name, time.Since(t0), what)
	prune(ctx, c, append(earlier, backup.Dir{Path: local, Stamp: stamp, Manifest: m}))
	return backup.NewRecorder(local, m), nil
}

// reserve makes the backup's directory, named by the time; a run started
// within the same second as the last one takes the next free second, so
// two backups never share a directory.
func reserve(root string, t time.Time) (string, time.Time, error) {
	for range 60 {
		dir := filepath.Join(root, t.Format(backup.StampLayout))
		err := os.Mkdir(dir, backup.DirMode)
		if errors.Is(err, fs.ErrExist) {
			t = t.Add(time.Second)
			continue
		}
		if err != nil {
			return "", t, err
		}
		// Mkdir's mode went through the umask.
		return dir, t, os.Chmod(dir, backup.DirMode)
	}
	return "", t, fmt.Errorf("%s: no free backup directory name near %s", root, t.Format(backup.StampLayout))
}

// lbPaths are the load balancers' configuration trees, archived on the LB
// nodes: whichever engine and keepalived they hold.
func lbPaths() []string { return []string{"etc/nginx", "etc/haproxy", "etc/keepalived"} }

// archiveScript archives paths (relative to /) to dir/etc.tgz, private to
// root, and prints the paths that existed: a node without nginx has no
// /etc/nginx, and restore must know what the archive holds.
func archiveScript(dir string, paths []string) string {
	q := node.ShellQuote(dir)
	list := strings.Join(paths, " ")
	return fmt.Sprintf("mkdir -p %s && chmod 700 %s %s && umask 077 && tar -czf %s/%s -C / --ignore-failed-read %s && chmod 600 %s/%s && for p in %s; do if [ -e \"/$p\" ]; then echo \"$p\"; fi; done",
		q, backup.NodeRoot, q, q, backup.ArchiveFile, list, q, backup.ArchiveFile, list)
}

// snapshotTo streams the snapshot into a temporary file next to path,
// syncs it, and renames it into place only once etcdm.Snapshot has checked
// etcd's sha256 trailer: the snapshot is never held in memory, and a cut
// stream never becomes a backup.
func snapshotTo(ctx context.Context, c *Cluster, path string) (info etcdm.SnapshotInfo, err error) {
	cli, err := c.EtcdClient(ctx)
	if err != nil {
		return info, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return info, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(backup.FileMode); err != nil {
		return info, err
	}
	if info, err = etcdm.Snapshot(ctx, cli, f); err != nil {
		return info, err
	}
	if err := f.Sync(); err != nil {
		return info, err
	}
	if err := f.Close(); err != nil {
		return info, err
	}
	return info, os.Rename(f.Name(), path)
}

// prune removes the backups beyond --keep-backups, originals aside: the
// local directories, then each node's copies, best effort (a node that
// cannot remove its copy only keeps a few more megabytes; the log says so).
func prune(ctx context.Context, c *Cluster, dirs []backup.Dir) {
	keep := c.Opts.KeepBackups
	if keep <= 0 {
		keep = DefaultKeepBackups
	}
	gone := backup.Prune(dirs, keep)
	if len(gone) == 0 {
		return
	}
	byNode := map[string][]string{}
	var stamps []string
	for _, d := range gone {
		if err := os.RemoveAll(d.Path); err != nil {
			c.Log.Step("backup", "", 0, "could not prune "+d.Path+": "+err.Error())
			continue
		}
		stamps = append(stamps, d.Stamp)
		for n := range d.Manifest.Archives {
			byNode[n] = append(byNode[n], backup.NodeDir(d.Stamp))
		}
	}
	c.Log.Step("backup", "", 0, fmt.Sprintf("pruned %d old backup(s) (keeping the newest %d and the originals): %s", len(stamps), keep, strings.Join(stamps, ", ")))
	names := keys(byNode)
	_ = forEach(len(names), func(i int) error {
		n := names[i]
		h := c.Host(n)
		if h == nil {
			c.Log.Detail("backup", n, "not connected: old backups left in "+backup.NodeRoot+": "+strings.Join(byNode[n], " "))
			return nil
		}
		if _, err := h.Run(ctx, "rm -rf -- "+strings.Join(byNode[n], " ")); err != nil {
			c.Log.Step("backup", n, 0, "could not prune old backups (remove them by hand): "+err.Error())
			return nil
		}
		c.Log.Detail("backup", n, "pruned "+strconv.Itoa(len(byNode[n]))+" old backup(s)")
		return nil
	})
}
