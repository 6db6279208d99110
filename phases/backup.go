package phases

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/haadm/haadm/etcdm"
)

// Backup takes, before anything changes, an etcd snapshot (kept on the
// operator's machine and on the first master) and an archive of
// /etc/kubernetes of every node involved (and /etc/nginx of the LB node).
type Backup struct{}

func (Backup) Name() string { return "backup" }
func (Backup) Description() string {
	return "etcd snapshot and /etc/kubernetes of every node, before any change"
}

// Check says a backup is always worth taking when run alone; `promote`
// skips it when no later phase has anything to change.
func (Backup) Check(context.Context, *Cluster) (bool, string, error) {
	return false, "take a fresh backup", nil
}

func (Backup) Apply(ctx context.Context, c *Cluster) error {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	nodeDir := "/var/backups/haadm/" + stamp
	var names []string
	for n := range c.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		paths := "etc/kubernetes"
		if slices.Contains(c.LBNodes(), n) {
			paths += " etc/nginx"
		}
		cmd := fmt.Sprintf("mkdir -p %s && chmod 700 /var/backups/haadm %s && tar -czf %s/etc.tgz -C / --ignore-failed-read %s", nodeDir, nodeDir, nodeDir, paths)
		t0 := time.Now()
		if _, err := c.Host(n).Run(ctx, cmd); err != nil {
			return err
		}
		if !c.Opts.DryRun {
			c.Log.Step("backup", n, time.Since(t0), "archived /"+paths+" to "+nodeDir+"/etc.tgz")
		}
	}
	return c.change("backup", c.First.Name, "etcd snapshot to "+c.Opts.BackupDir+"/"+stamp+" and "+c.First.Name+":"+nodeDir, "", func() error {
		cli, err := c.EtcdClient(ctx)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		size, sum, err := etcdm.Snapshot(ctx, cli, &buf)
		if err != nil {
			return err
		}
		local := filepath.Join(c.Opts.BackupDir, stamp)
		if err := os.MkdirAll(local, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(local, "etcd-snapshot.db"), buf.Bytes(), 0o600); err != nil {
			return err
		}
		if err := c.Host(c.First.Name).WriteFile(ctx, nodeDir+"/etcd-snapshot.db", buf.Bytes(), 0o600); err != nil {
			return err
		}
		c.Log.Detail("backup", c.First.Name, fmt.Sprintf("etcd snapshot %d bytes sha256 %s", size, sum))
		return nil
	})
}
