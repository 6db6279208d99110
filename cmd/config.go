package cmd

import (
	"cmp"
	"maps"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/haadm/haadm/config"
	"github.com/haadm/haadm/lb"
	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
)

// exampleConfig is the annotated example in haadm's source tree.
const exampleConfig = "docs/haadm.yaml"

func (f *promoteFlags) registerConfig(fl *pflag.FlagSet) {
	fl.StringVarP(&f.configFile, "config", "f", "", "configuration `FILE`, a "+config.Kind+" such as "+exampleConfig+" (haadm config print writes one); flags given on the command line override it")
}

// applyConfig reads --config, when given, into the flags: each value set
// in the file replaces the flag's default, but not a flag given on the
// command line. A list flag given replaces the file's list.
func applyConfig(cmd *cobra.Command, g *globalFlags, f *promoteFlags) error {
	if f.configFile == "" {
		return nil
	}
	c, err := config.Load(f.configFile)
	if err != nil {
		return err
	}
	given := cmd.Flags().Changed
	applyGlobal(given, g, c)
	setList(given("nodes"), &f.nodes, c.Nodes)
	set(given("lb-mode"), &f.lbMode, c.LoadBalancer.Mode)
	set(given("lb-engine"), &f.lbEngine, c.LoadBalancer.Engine)
	set(given("lb-node"), &f.lbNode, c.LoadBalancer.Node)
	set(given("lb-port"), &f.lbPort, c.LoadBalancer.Port)
	set(given("vip"), &f.vip, c.LoadBalancer.VIP)
	set(given("endpoint"), &f.endpoint, c.LoadBalancer.Endpoint)
	set(given("no-install"), &f.noInstall, c.LoadBalancer.NoInstall)
	setList(given("cert-sans"), &f.certSANs, c.CertSANs)
	set(given("etc-hosts"), &f.etcHosts, c.EtcHosts)
	set(given("backup-dir"), &f.backupDir, c.Backup.Dir)
	set(given("keep-backups"), &f.keep, c.Backup.Keep)
	set(given("remove-stale-learners"), &f.removeStaleLearners, c.RemoveStaleLearners)
	return nil
}

// applyGlobal takes the file's cluster access: kubeconfig, the first
// master, the timeout and SSH, which every command uses.
func applyGlobal(given func(string) bool, g *globalFlags, c *config.PromoteConfiguration) {
	set(given("kubeconfig"), &g.kubeconfig, c.Kubeconfig)
	set(given("first-master"), &g.firstMaster, c.FirstMaster)
	set(given("timeout"), &g.timeout, c.TimeoutDuration())
	set(given("ssh-config"), &g.sshConfig, c.SSH.ConfigFile)
	set(given("ssh-user"), &g.sshUser, c.SSH.User)
	set(given("ssh-key"), &g.sshKey, c.SSH.IdentityFile)
	set(given("ssh-jump"), &g.sshJump, c.SSH.ProxyJump)
	set(given("insecure-ignore-host-key"), &g.insecureIgnoreHostKey, c.SSH.InsecureIgnoreHostKey)
	// No flag says how to reach one node: these come from the file only.
	if len(c.SSH.Nodes) > 0 {
		g.sshNodes = map[string]node.SSHNodeOptions{}
		for _, n := range c.SSH.Nodes {
			o := node.SSHNodeOptions{HostName: n.HostName, Port: n.Port, User: n.User, IdentityFile: n.IdentityFile, ProxyJump: n.ProxyJump}
			// A flag given on the command line beats the file, its
			// per-node entries too.
			for _, f := range []struct {
				flag string
				v    *string
			}{{"ssh-user", &o.User}, {"ssh-key", &o.IdentityFile}, {"ssh-jump", &o.ProxyJump}} {
				if given(f.flag) {
					*f.v = ""
				}
			}
			g.sshNodes[n.Name] = o
		}
	}
}

// accessConfig is -f on the commands that only reach the cluster (remove,
// rollback, restore, status): the same file as promote's, of which they
// use the access part.
type accessConfig struct{ file string }

func (a *accessConfig) register(fl *pflag.FlagSet) {
	fl.StringVarP(&a.file, "config", "f", "", "the "+config.Kind+" `FILE` promote used: its kubeconfig, firstMaster, timeout and ssh (per-node entries included); flags given on the command line override it")
}

func (a *accessConfig) apply(cmd *cobra.Command, g *globalFlags) error {
	if a.file == "" {
		return nil
	}
	c, err := config.Load(a.file)
	if err != nil {
		return err
	}
	applyGlobal(cmd.Flags().Changed, g, c)
	return nil
}

// set takes the file's value v unless the flag was given or v is empty,
// which in the file means "the default".
func set[T comparable](given bool, flag *T, v T) {
	var empty T
	if !given && v != empty {
		*flag = v
	}
}

func setList(given bool, flag *[]string, v []string) {
	if !given && len(v) > 0 {
		*flag = v
	}
}

// effectiveConfig is the configuration a run with these flags uses, the
// defaults written out, as a file `promote -f` reads back unchanged.
func effectiveConfig(g *globalFlags, f *promoteFlags) (*config.PromoteConfiguration, error) {
	opts, err := f.options(g)
	if err == nil {
		err = opts.Validate()
	}
	if err != nil {
		return nil, err
	}
	port := opts.LBPort
	if port == 0 {
		port = opts.LBMode.DefaultPort()
	}
	keep := opts.KeepBackups
	if keep == 0 {
		keep = phases.DefaultKeepBackups
	}
	c := &config.PromoteConfiguration{
		APIVersion:  config.APIVersion,
		Kind:        config.Kind,
		Kubeconfig:  g.kubeconfig,
		FirstMaster: g.firstMaster,
		Nodes:       list(opts.Nodes),
		LoadBalancer: config.LoadBalancer{
			Mode: string(cmp.Or(opts.LBMode, lb.ModeExternal)), Engine: string(opts.LBEngine), Node: opts.LBNode, Port: port,
			VIP: opts.VIP, Endpoint: opts.Endpoint, NoInstall: opts.NoInstall,
		},
		CertSANs:            list(opts.CertSANs),
		EtcHosts:            opts.EtcHosts,
		Backup:              config.Backup{Dir: opts.BackupDir, Keep: keep},
		RemoveStaleLearners: opts.RemoveStaleLearners,
		SSH: config.SSH{
			ConfigFile: g.sshConfig, User: g.sshUser, IdentityFile: g.sshKey, ProxyJump: g.sshJump,
			InsecureIgnoreHostKey: g.insecureIgnoreHostKey, Nodes: []config.SSHNode{},
		},
		Timeout: config.FormatDuration(g.timeout),
	}
	for _, name := range slices.Sorted(maps.Keys(g.sshNodes)) {
		n := g.sshNodes[name]
		c.SSH.Nodes = append(c.SSH.Nodes, config.SSHNode{Name: name, HostName: n.HostName, Port: n.Port, User: n.User, IdentityFile: n.IdentityFile, ProxyJump: n.ProxyJump})
	}
	return c, nil
}

// list is l, or an empty list: the file shows `nodes: []` rather than
// `nodes: null`, an invitation to fill it in.
func list(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func newConfigCommand(g *globalFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "The configuration file that promote and phase read with -f",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	f := &promoteFlags{command: "config-print"}
	p := &cobra.Command{
		Use:   "print [-f haadm.yaml]",
		Short: "Print the configuration promote would use: the file, the flags over it, and every default",
		Long: `print writes the effective configuration as a complete ` + config.Kind + ` file
(apiVersion ` + config.APIVersion + `): the file of -f, if any, with the flags given on the
command line over it and every default filled in. Without -f or flags it
prints the defaults, a starting point:

  haadm config print > haadm.yaml                 # then fill in nodes
  haadm config print --nodes emei,wudang > haadm.yaml
  haadm promote -f haadm.yaml --dry-run

An annotated example with every field is ` + exampleConfig + ` in haadm's source.
It checks everything it can without contacting the cluster; ` + "`promote -f`" + ` reads
what it prints back unchanged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, g, f); err != nil {
				return err
			}
			c, err := effectiveConfig(g, f)
			if err != nil {
				return err
			}
			b, err := config.Marshal(c)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	f.register(p, phases.UsesOf(phases.All()))
	// The file describes a run, not whether it is a dry one.
	_ = p.Flags().MarkHidden("dry-run")
	c.AddCommand(p)
	return c
}
