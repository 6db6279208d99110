package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
)

// promoteFlags are the flags of promote and of every `phase` subcommand.
type promoteFlags struct {
	nodes      []string
	lbNode     string
	lbPort     int
	lbMode     string
	endpoint   string
	certSANs   []string
	backupDir  string
	dryRun     bool
	skipPhases []string

	removeStaleLearners bool
}

func (f *promoteFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringSliceVar(&f.nodes, "nodes", nil, "joined nodes to make control-plane nodes, e.g. emei,wudang")
	fl.StringVar(&f.lbNode, "lb-node", "", "node that runs the nginx layer-4 load balancer")
	fl.IntVar(&f.lbPort, "lb-port", 0, "load balancer port, not 6443 (default 8443; 6444 with --lb-mode node-local)")
	fl.StringVar(&f.lbMode, "lb-mode", "external", "external: nginx on --lb-node; node-local: nginx on 127.0.0.1 of every node; none: your own LB answers at --endpoint")
	fl.StringVar(&f.endpoint, "endpoint", "", "controlPlaneEndpoint HOST:PORT (default: the LB node's address and --lb-port)")
	fl.StringSliceVar(&f.certSANs, "cert-sans", nil, "extra names and addresses for every apiserver certificate")
	fl.StringVar(&f.backupDir, "backup-dir", "haadm-backups", "local directory for the etcd snapshot")
	fl.BoolVar(&f.removeStaleLearners, "remove-stale-learners", false, "remove etcd learners that never started and belong to no node being promoted (leftovers of a failed join)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print every file, certificate, manifest and object that would change, with diffs; change nothing")
	_ = c.MarkFlagRequired("nodes")
}

func newPromoteCommand(g *globalFlags) *cobra.Command {
	f := &promoteFlags{}
	c := &cobra.Command{
		Use:   "promote --nodes emei,wudang --lb-node emei",
		Short: "Make joined nodes control-plane nodes: all phases in order",
		Long: "Runs every phase in order: " + strings.Join(phases.Names(), ", ") + `.
Each phase checks first and only changes what is not done yet, so running
promote again after a failure resumes it, and after success changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []phases.Phase
			for _, p := range phases.All() {
				if !slices.Contains(f.skipPhases, p.Name()) {
					list = append(list, p)
				}
			}
			return runPhases(cmd.Context(), g, f, list, cmd.OutOrStdout(), cmd.ErrOrStderr(), "promote")
		},
	}
	f.register(c)
	c.Flags().StringSliceVar(&f.skipPhases, "skip-phases", nil, "phases to skip: "+strings.Join(phases.Names(), ","))
	return c
}

func newPhaseCommand(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "phase NAME",
		Short: "Run one phase of promote (preflight always runs first)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown command %q: phases are %s", args[0], strings.Join(phases.Names(), ", "))
		},
	}
	for _, p := range phases.All() {
		f := &promoteFlags{}
		sub := &cobra.Command{
			Use:   p.Name(),
			Short: p.Description(),
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runPhases(cmd.Context(), g, f, []phases.Phase{p}, cmd.OutOrStdout(), cmd.ErrOrStderr(), "phase-"+p.Name())
			},
		}
		f.register(sub)
		c.AddCommand(sub)
	}
	return c
}

// session is what every cluster command needs: the API, the nodes, a log.
type session struct {
	cluster *phases.Cluster
	logFile *os.File
	logPath string
}

func openLog(g *globalFlags, name string) (*os.File, string, error) {
	path := g.logFile
	if path == "" {
		path = fmt.Sprintf("haadm-%s-%s.log", name, time.Now().Format("20060102-150405"))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("log file: %w", err)
	}
	return f, path, nil
}

func kubeClient(g *globalFlags) (*kubernetes.Clientset, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if g.kubeconfig != "" {
		rules.ExplicitPath = g.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	return cs, cfg.Host, err
}

func sshOptions(g *globalFlags) node.SSHOptions {
	return node.SSHOptions{ConfigFile: g.sshConfig, InsecureIgnoreHostKey: g.insecureIgnoreHostKey, Timeout: 15 * time.Second}
}

func runPhases(ctx context.Context, g *globalFlags, f *promoteFlags, list []phases.Phase, stdout, stderr io.Writer, name string) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	logF, logPath, err := openLog(g, name)
	if err != nil {
		return err
	}
	defer logF.Close()
	progress := phases.NewProgress(stderr, logF)
	fail := func(err error) error {
		fmt.Fprintf(logF, "%s ERROR %v\n", time.Now().Format(time.RFC3339Nano), err)
		return fmt.Errorf("%w\n(details: %s)", err, logPath)
	}
	kube, _, err := kubeClient(g)
	if err != nil {
		return fail(err)
	}
	opts := phases.Options{
		Nodes: f.nodes, FirstMaster: g.firstMaster, LBNode: f.lbNode, LBPort: f.lbPort, LBMode: f.lbMode,
		Endpoint: f.endpoint, CertSANs: f.certSANs, BackupDir: f.backupDir, DryRun: f.dryRun,
		RemoveStaleLearners: f.removeStaleLearners,
	}
	c, err := phases.Discover(ctx, kube, opts)
	if err != nil {
		return fail(err)
	}
	c.Log = progress
	c.Plan = &phases.Plan{}
	defer c.Close()

	want := []string{c.First.Name}
	for _, n := range c.New {
		want = append(want, n.Name)
	}
	for _, n := range c.Others {
		want = append(want, n.Name)
	}
	for _, n := range c.LBNodes() {
		if !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	t0 := time.Now()
	hosts, err := node.DialAll(ctx, want, 20*time.Second, node.SSHDialer(sshOptions(g)))
	if err != nil {
		_ = node.CloseAll(hosts)
		return fail(fmt.Errorf("%w\nnothing was changed; haadm needs SSH to every node (check --ssh-config and known_hosts)", err))
	}
	progress.Step("connect", "", time.Since(t0), "ssh to "+strings.Join(want, ", "))
	var recorders []*node.Recorder
	for n, h := range hosts {
		if f.dryRun {
			r := node.NewRecorder(h)
			recorders = append(recorders, r)
			c.Hosts[n] = r
		} else {
			c.Hosts[n] = h
		}
	}
	if err := phases.Run(ctx, c, list); err != nil {
		return fail(err)
	}
	if f.dryRun {
		printPlan(stdout, c.Plan, recorders)
	} else if name == "promote" {
		fmt.Fprintf(stdout, "control plane: %s; endpoint %s\n", strings.Join(append([]string{c.First.Name}, f.nodes...), ", "), c.EndpointURL())
		if c.Opts.LBMode == "node-local" {
			fmt.Fprintf(stdout, "Every node reaches the API through its own nginx at %s; from elsewhere use any master, e.g. https://%s:6443\n", c.EndpointURL(), c.New[0].IP)
		} else {
			fmt.Fprintf(stdout, "Point your kubeconfig at the endpoint: kubectl config set-cluster %s --server=%s\n", c.Facts.ClusterName, c.EndpointURL())
		}
	}
	return nil
}

// printPlan prints what a dry run would change; "nothing to do" is the
// answer after a converged promote.
func printPlan(w io.Writer, plan *phases.Plan, recs []*node.Recorder) {
	var changes []node.Change
	for _, r := range recs {
		changes = append(changes, r.Changes()...)
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Node < changes[j].Node })
	if len(changes) == 0 && len(plan.Items) == 0 {
		fmt.Fprintln(w, "dry run: nothing to do")
		return
	}
	fmt.Fprintf(w, "dry run: %d change(s) on nodes, %d to the cluster; nothing was changed\n", len(changes), len(plan.Items))
	for _, ch := range changes {
		fmt.Fprintln(w, ch.String())
	}
	for _, it := range plan.Items {
		where := it.Phase
		if it.Node != "" {
			where += " " + it.Node
		}
		fmt.Fprintf(w, "[%s] %s\n", where, it.What)
		if it.Diff != "" {
			fmt.Fprintln(w, it.Diff)
		}
	}
}
