package cmd

import (
	"context"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
)

// takeoutFlags are the flags remove and rollback share.
type takeoutFlags struct {
	backupDir  string
	dryRun     bool
	skipBackup bool
	force      bool
	keepNode   bool
	keep       int
	access     accessConfig
}

func (f *takeoutFlags) register(c *cobra.Command) {
	fl := c.Flags()
	f.access.register(fl)
	fl.StringVar(&f.backupDir, "backup-dir", "haadm-backups", "local directory for the etcd snapshot")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print every change that would be made, with diffs; change nothing")
	fl.BoolVar(&f.skipBackup, "skip-backup", false, "change the cluster without taking an etcd snapshot first")
	fl.IntVar(&f.keep, "keep-backups", phases.DefaultKeepBackups, "backups to keep in --backup-dir and on the nodes, besides the originals, which are never pruned")
	fl.BoolVar(&f.force, "force", false, "take out masters SSH cannot reach (dead): etcd member, load balancers and API objects only")
}

func newRemoveCommand(g *globalFlags) *cobra.Command {
	f := &takeoutFlags{}
	c := &cobra.Command{
		Use:   "remove NODE...",
		Short: "Take control-plane nodes out, alive or dead",
		Long: `Takes a control-plane node out of the control plane, alive or dead: its
etcd member is removed (refused when that would cost quorum or the last
healthy voter), every load balancer stops sending to it, every kubeconfig
and ConfigMap that names it is repointed, and, when it is reachable, its
static pods are stopped and its etcd data, certificates and kubeconfigs
moved aside to /var/lib/haadm/removed. Its Node object is deleted (its
kubelet stopped) unless --keep-node leaves it as a worker.

A master SSH cannot reach is only taken out with --force: wipe it (kubeadm
reset) before it ever comes back. Running the same command again after an
interruption finishes the work; on a removed node it changes nothing.

  haadm remove shaolin --force
  haadm remove emei --keep-node`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTakeout(cmd, g, f, phases.Takeout{Nodes: args, Force: f.force, KeepNode: f.keepNode}, "remove")
		},
	}
	f.register(c)
	c.Flags().BoolVar(&f.keepNode, "keep-node", false, "keep the Node object: the node stays in the cluster as a worker")
	return c
}

func newRollbackCommand(g *globalFlags) *cobra.Command {
	f := &takeoutFlags{}
	c := &cobra.Command{
		Use:   "rollback",
		Short: "Return a promoted or half-promoted cluster to its first master alone",
		Long: `Undoes a promotion: every kubeconfig, ConfigMap and kubelet points at the
first master again (kubeadm-config loses its controlPlaneEndpoint), etcd
goes back to the first master's one member, one voter at a time, the other
masters become workers (static pods stopped, etcd data and certificates
moved aside to /var/lib/haadm/removed), and haadm's load balancers are
stopped. Refused when the first master is not healthy. Running it again
changes nothing; haadm promote works again afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTakeout(cmd, g, f, phases.Takeout{Rollback: true, Force: f.force}, "rollback")
		},
	}
	f.register(c)
	return c
}

func runTakeout(cmd *cobra.Command, g *globalFlags, f *takeoutFlags, t phases.Takeout, name string) error {
	if err := f.access.apply(cmd, g); err != nil {
		return err
	}
	opts := phases.Options{FirstMaster: g.firstMaster, BackupDir: f.backupDir, DryRun: f.dryRun, SkipBackup: f.skipBackup, KeepBackups: f.keep, Command: name}
	return runChanging(cmd, g, name, name, opts.DryRun, func(ctx context.Context, kube kubernetes.Interface, log *phases.Progress) error {
		return phases.ExecuteTakeout(ctx, kube, node.SSHDialer(sshOptions(g, log)), opts, t, log, cmd.OutOrStdout())
	})
}
