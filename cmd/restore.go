package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
)

func newRestoreCommand(g *globalFlags) *cobra.Command {
	var opts phases.RestoreOptions
	var access accessConfig
	c := &cobra.Command{
		Use:   "restore BACKUP",
		Short: "Put the cluster back to the state of a backup haadm took (etcd, and each node's /etc/kubernetes)",
		Long: `Restores a backup directory that haadm promote or haadm phase wrote (under --backup-dir),
the way kubeadm documents an etcd restore: the etcd snapshot is restored on this machine as a
one-member cluster for the first master and shipped to it, every node's control-plane static
pods are stopped, and each node's /etc/kubernetes (and /etc/nginx, /etc/haproxy, /etc/keepalived where archived) is
unpacked from the node's archive, so that nodes that were workers are workers again. Nothing is
deleted: the current etcd data and configuration are kept on each node in
/var/lib/haadm/restore-<time>.
Every check runs before anything changes; a restore that stopped half way resumes when run again.

  haadm restore haadm-backups/20250301T120000Z --dry-run
  haadm restore haadm-backups/20250301T120000Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := access.apply(cmd, g); err != nil {
				return err
			}
			opts.Dir = args[0]
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			logF, logPath, err := openLog(g, "restore")
			if err != nil {
				return err
			}
			defer logF.Close()
			log := newProgress(cmd, g, logF)
			run := func(ctx context.Context) error {
				return phases.Restore(ctx, node.SSHDialer(sshOptions(g, log)), opts, log, cmd.OutOrStdout())
			}
			if opts.DryRun {
				return failed(logF, logPath, run(ctx))
			}
			return failed(logF, logPath, withLockIfUp(ctx, g, "restore", log, run))
		},
	}
	access.register(c.Flags())
	c.Flags().BoolVar(&opts.EtcdOnly, "etcd-only", false, "restore only etcd; leave every node's /etc/kubernetes as it is now")
	c.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check the backup and the nodes and print every step; change nothing")
	return c
}
