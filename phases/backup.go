package phases

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

// Backup takes, before anything changes, an etcd snapshot (kept on the
// operator's machine and on the first master) and an archive of
// /etc/kubernetes of every node involved (and /etc/nginx of the LB nodes).
// The runner takes it whenever a plan has work; it is not a phase.
func Backup(ctx context.Context, c *Cluster) error {
	stamp := time.Now().UTC().Format("20060102T150405Z")
	nodeDir := "/var/backups/haadm/" + stamp
	hosts := keys(c.Hosts)
	// Archives are independent: all nodes at once.
	if err := forEach(len(hosts), func(i int) error {
		n := hosts[i]
		paths := "etc/kubernetes"
		if slices.Contains(c.LBNodes(), n) {
			paths += " etc/nginx"
		}
		cmd := fmt.Sprintf("mkdir -p %s && chmod 700 /var/backups/haadm %s && tar -czf %s/etc.tgz -C / --ignore-failed-read %s", nodeDir, nodeDir, nodeDir, paths)
		t0 := time.Now()
		if _, err := c.Host(n).Run(ctx, cmd); err != nil {
			return err
		}
		c.Log.Step("backup", n, time.Since(t0), "/"+paths+" archived to "+nodeDir+"/etc.tgz")
		return nil
	}); err != nil {
		return err
	}
	t0 := time.Now()
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
	if err := c.Host(c.First.Name).WriteFiles(ctx, []node.File{{Path: nodeDir + "/etcd-snapshot.db", Data: buf.Bytes(), Mode: 0o600}}); err != nil {
		return err
	}
	c.Log.Step("backup", c.First.Name, time.Since(t0), fmt.Sprintf("etcd snapshot (%d bytes, sha256 %s) verified, kept in %s and %s:%s", size, sum[:12], local, c.First.Name, nodeDir))
	return nil
}
