// Package cmd holds haadm's cobra commands and nothing else: flags are parsed
// here and handed to the phases as plain values.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/haadm/haadm/node"
)

// globalFlags are shared by every command that talks to a cluster.
type globalFlags struct {
	kubeconfig            string
	sshConfig             string
	sshUser               string
	sshKey                string
	sshJump               string
	logFile               string
	timeout               time.Duration
	insecureIgnoreHostKey bool
	firstMaster           string
	breakLock             bool
	verbose               int
	// sshNodes are per-node SSH overrides; only a config file sets them.
	sshNodes map[string]node.SSHNodeOptions
}

// ExitError carries an exit code for results that are not failures of haadm
// itself, such as `haadm status` finding a degraded control plane.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs haadm with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil && ee.Code != 0 && ee.Err.Error() != "" {
			fmt.Fprintln(stderr, "haadm:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "haadm:", err)
	return 1
}

// NewRootCommand builds the command tree; it holds no state outside itself.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "haadm",
		Short: "Grow a single-master kubeadm cluster into a highly available control plane",
		Long: `haadm promotes worker nodes of a running kubeadm cluster whose only control
plane was initialised without controlPlaneEndpoint into control-plane nodes,
in place: certificates, etcd learners promoted one at a time, static pods,
kubelets, labels and taints, a layer-4 load balancer, and every cluster object
that pointed at the first master.

  haadm promote --nodes emei,wudang
  haadm phase certs --nodes emei,wudang
  haadm status`,
		Version:       buildInfo().Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "admin kubeconfig of the cluster (default $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&g.sshConfig, "ssh-config", "", "OpenSSH client config naming every node, like `ssh -F` (default ~/.ssh/config)")
	pf.StringVar(&g.sshUser, "ssh-user", "", "SSH user on every node, root or a user with passwordless sudo (default: the ssh config's User, else yours)")
	pf.StringVar(&g.sshKey, "ssh-key", "", "private key file to offer to the nodes after the agent's, in place of the ssh config's IdentityFile (bastions use their own ssh config, as with ssh -J)")
	pf.StringVar(&g.sshJump, "ssh-jump", "", "bastions to reach the nodes through, [user@]host[:port] comma separated, like ssh -J, each resolved through the ssh config; \"none\" for direct connections (default: the ssh config's ProxyJump)")
	pf.StringVar(&g.logFile, "log-file", "", "detailed log file (default $XDG_STATE_HOME/haadm/<command>-<time>.log, or ~/.local/state/haadm/...)")
	pf.DurationVar(&g.timeout, "timeout", 45*time.Minute, "give up after this long")
	pf.BoolVar(&g.insecureIgnoreHostKey, "insecure-ignore-host-key", false, "accept any SSH host key (do not use on production)")
	pf.StringVar(&g.firstMaster, "first-master", "", "the existing control-plane node (default: the only node labelled control-plane)")
	pf.CountVarP(&g.verbose, "verbose", "v", "show on stderr what the log file has: -v each step's start and every wait, -vv the diffs and scripts too")
	pf.BoolVar(&g.breakLock, "break-lock", false, "delete the cluster's haadm lock (kube-system/haadm-lock) whoever holds it, then take it: only when no other haadm runs against this cluster")
	root.AddCommand(newPromoteCommand(g), newPhaseCommand(g), newStatusCommand(g), newRemoveCommand(g), newRollbackCommand(g), newRestoreCommand(g), newConfigCommand(g), newVersionCommand())
	return root
}
