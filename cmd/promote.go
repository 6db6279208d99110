package cmd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
)

// promoteFlags are the flags of promote; a `phase` subcommand registers
// only the groups its phase uses.
type promoteFlags struct {
	nodes      []string
	lbNode     string
	lbPort     int
	lbMode     string
	lbEngine   string
	vip        string
	noInstall  bool
	endpoint   string
	certSANs   []string
	backupDir  string
	etcHosts   string
	dryRun     bool
	skipPhases []string
	skipBackup bool
	keep       int
	command    string
	configFile string

	removeStaleLearners bool
}

func (f *promoteFlags) register(c *cobra.Command, uses phases.Uses) {
	fl := c.Flags()
	fl.StringSliceVar(&f.nodes, "nodes", nil, "joined nodes to make control-plane nodes, e.g. emei,wudang")
	fl.StringVar(&f.backupDir, "backup-dir", "haadm-backups", "local directory for the backups (etcd snapshot and manifest, one folder per run)")
	fl.IntVar(&f.keep, "keep-backups", phases.DefaultKeepBackups, "backups to keep in --backup-dir and on the nodes, besides the originals (the cluster before its promotion), which are never pruned")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print every file, certificate, manifest and object that would change, with diffs; change nothing")
	// --nodes is required unless the file of --config names them, which
	// runPhases checks once the file is read.
	f.registerConfig(fl)
	if uses&phases.UsesEndpoint != 0 {
		fl.StringVar(&f.lbMode, "lb-mode", "", "default: the layout the cluster's endpoint already has, else external. external: the proxy on --lb-node (one machine: a single point of failure); node-local: on 127.0.0.1 of every node; vip: keepalived moves --vip between the masters, each running the proxy; none: your own LB answers at --endpoint")
		fl.StringVar(&f.lbNode, "lb-node", "", "node that runs the layer-4 load balancer with --lb-mode external (default: the first of --nodes)")
		fl.StringVar(&f.lbEngine, "lb-engine", string(lb.EngineNginx), "the proxy: nginx (stream module, passive checks) or haproxy (active /readyz checks)")
		fl.StringVar(&f.vip, "vip", "", "with --lb-mode vip: the free address on the masters' subnet that keepalived moves between them")
		fl.BoolVar(&f.noInstall, "no-install", false, "refuse, with the command to run, instead of installing a missing nginx, haproxy or keepalived on a node")
		fl.IntVar(&f.lbPort, "lb-port", 0, "load balancer port, not 6443 (default 8443; 6444 with --lb-mode node-local)")
		fl.StringVar(&f.endpoint, "endpoint", "", "controlPlaneEndpoint HOST:PORT (default: the LB node's address and --lb-port)")
		fl.StringSliceVar(&f.certSANs, "cert-sans", nil, "extra names and addresses for every apiserver certificate")
		fl.StringVar(&f.etcHosts, "etc-hosts", "", "write \"ADDRESS ENDPOINT-NAME\" into /etc/hosts on every node, for an --endpoint name without DNS")
	}
	if uses&phases.UsesEtcd != 0 {
		fl.BoolVar(&f.removeStaleLearners, "remove-stale-learners", false, "remove etcd learners that never started and belong to no node being promoted (leftovers of a failed join)")
	}
}

func (f *promoteFlags) options(g *globalFlags) (phases.Options, error) {
	// No --lb-mode is not external: a cluster that has an endpoint keeps
	// the layout it has (see phases' resolveEndpoint).
	var mode lb.Mode
	if f.lbMode != "" {
		var err error
		if mode, err = lb.ParseMode(f.lbMode); err != nil {
			return phases.Options{}, err
		}
	}
	engine := lb.EngineNginx
	if f.lbEngine != "" {
		var err error
		if engine, err = lb.ParseEngine(f.lbEngine); err != nil {
			return phases.Options{}, err
		}
	}
	return phases.Options{
		LBEngine: engine, VIP: f.vip, NoInstall: f.noInstall,
		Nodes: f.nodes, FirstMaster: g.firstMaster, LBNode: f.lbNode, LBPort: f.lbPort, LBMode: mode,
		Endpoint: f.endpoint, CertSANs: f.certSANs, BackupDir: f.backupDir, DryRun: f.dryRun,
		SkipBackup: f.skipBackup || slices.Contains(f.skipPhases, "backup"), KeepBackups: f.keep, Command: f.command, RemoveStaleLearners: f.removeStaleLearners, EtcHosts: f.etcHosts,
	}, nil
}

func newPromoteCommand(g *globalFlags) *cobra.Command {
	f := &promoteFlags{command: "promote"}
	c := &cobra.Command{
		Use:   "promote --nodes emei,wudang",
		Short: "Make joined nodes control-plane nodes: all phases in order",
		Long: "Checks everything first (preflight), takes a backup when there is work, then runs every phase in order: " + strings.Join(phases.Names(), ", ") + `.
Each phase plans from what the cluster holds and only changes what is not done
yet, so running promote again after a failure resumes it, and after success
changes nothing.

The flags can be kept in a file, -f haadm.yaml: flags given on the command
line override it. ` + "`haadm config print`" + ` writes one; ` + exampleConfig + ` in haadm's
source is an annotated example.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := phases.Select(f.skipPhases)
			if err != nil {
				return err
			}
			return runPhases(cmd, g, f, list, "promote")
		},
	}
	f.register(c, phases.UsesOf(phases.All()))
	c.Flags().StringSliceVar(&f.skipPhases, "skip-phases", nil, "phases to skip: "+strings.Join(append(phases.Names(), "backup"), ","))
	return c
}

func newPhaseCommand(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "phase NAME",
		Short: "Run one phase of promote (preflight always runs first, then a backup when there is work)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q: phases are %s", args[0], strings.Join(phases.Names(), ", "))
		},
	}
	for _, p := range phases.All() {
		f := &promoteFlags{command: "phase-" + p.Name()}
		sub := &cobra.Command{
			Use:   p.Name(),
			Short: p.Description(),
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runPhases(cmd, g, f, []phases.Phase{p}, "phase-"+p.Name())
			},
		}
		f.register(sub, p.Uses())
		// promote skips it with --skip-phases backup; a single phase has
		// no phases to skip, and must not skip the backup by default.
		sub.Flags().BoolVar(&f.skipBackup, "skip-backup", false, "run without taking a backup first (no etcd snapshot of this run)")
		c.AddCommand(sub)
	}
	return c
}

// runPhases wires flags, the log file, the API and SSH to phases.Execute,
// under the cluster's lock unless it is a dry run.
func runPhases(cmd *cobra.Command, g *globalFlags, f *promoteFlags, list []phases.Phase, name string) error {
	if err := applyConfig(cmd, g, f); err != nil {
		return err
	}
	if len(f.nodes) == 0 {
		return fmt.Errorf("no nodes to promote: give --nodes emei,wudang, or nodes: in the file of --config")
	}
	opts, err := f.options(g)
	if err == nil {
		// Bad input is refused before the lock is taken (Discover checks
		// it again).
		err = opts.Validate()
	}
	if err != nil {
		return err
	}
	return runChanging(cmd, g, name, strings.Replace(name, "phase-", "phase ", 1), opts.DryRun, func(ctx context.Context, kube kubernetes.Interface, log *phases.Progress) error {
		return phases.Execute(ctx, kube, node.SSHDialer(sshOptions(g, log)), opts, list, log, cmd.OutOrStdout())
	})
}

// runChanging is every command that changes a cluster through its API:
// the timeout, the log file (named in any error), the API client, and run
// under the cluster's lock as lockName, or, for a dry run, without it but
// saying who holds it.
func runChanging(cmd *cobra.Command, g *globalFlags, logName, lockName string, dryRun bool, run func(ctx context.Context, kube kubernetes.Interface, log *phases.Progress) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	logF, logPath, err := openLog(g, logName)
	if err != nil {
		return err
	}
	defer logF.Close()
	log := newProgress(cmd, g, logF)
	kube, err := kubeClient(g)
	if err != nil {
		return failed(logF, logPath, err)
	}
	do := func(ctx context.Context) error { return run(ctx, kube, log) }
	if dryRun {
		noteLock(ctx, kube, log)
		return failed(logF, logPath, do(ctx))
	}
	return failed(logF, logPath, withLock(ctx, g, kube, lockName, log, do))
}

func kubeClient(g *globalFlags) (*kubernetes.Clientset, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if g.kubeconfig != "" {
		rules.ExplicitPath = g.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	return kubernetes.NewForConfig(cfg)
}

// sshOptions are the SSH flags; log hears of every host key that was not
// verified against known_hosts, on the console and in the log file.
func sshOptions(g *globalFlags, log *phases.Progress) node.SSHOptions {
	return node.SSHOptions{
		ConfigFile:            g.sshConfig,
		User:                  g.sshUser,
		IdentityFile:          g.sshKey,
		ProxyJump:             g.sshJump,
		Nodes:                 g.sshNodes,
		InsecureIgnoreHostKey: g.insecureIgnoreHostKey,
		Timeout:               15 * time.Second,
		Logf: func(format string, args ...any) {
			log.Step("ssh", "", 0, fmt.Sprintf(format, args...))
		},
	}
}
