package cmd

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/haadm/haadm/config"
	"github.com/haadm/haadm/node"
	"github.com/haadm/haadm/phases"
)

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// printConfig runs `haadm config print` and reads its output back.
func printConfig(t *testing.T, args ...string) (string, *config.PromoteConfiguration) {
	t.Helper()
	code, out, errOut := run(t, append([]string{"config", "print"}, args...)...)
	if code != 0 {
		t.Fatalf("config print %v: exit %d: %s", args, code, errOut)
	}
	c, err := config.Decode("printed", []byte(out))
	if err != nil {
		t.Fatalf("promote -f would refuse what config print %v wrote: %v\n%s", args, err, out)
	}
	return out, c
}

// Without a file, print writes the defaults: a file to start from.
func TestConfigPrintDefaults(t *testing.T) {
	_, c := printConfig(t)
	want := config.PromoteConfiguration{
		APIVersion: config.APIVersion, Kind: config.Kind, Nodes: []string{}, CertSANs: []string{},
		LoadBalancer: config.LoadBalancer{Mode: "external", Engine: "nginx", Port: 8443},
		Backup:       config.Backup{Dir: "haadm-backups", Keep: phases.DefaultKeepBackups},
		SSH:          config.SSH{Nodes: []config.SSHNode{}},
		Timeout:      "45m",
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("defaults:\n%+v\nwant\n%+v", *c, want)
	}
	if _, c := printConfig(t, "--lb-mode", "node-local"); c.LoadBalancer.Port != 6444 {
		t.Errorf("node-local port %d, want 6444", c.LoadBalancer.Port)
	}
}

// What print writes, promote -f reads back to the same configuration.
func TestConfigRoundTrip(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--timeout", "1h30m", "--ssh-user", "admin", "--first-master", "shaolin", "--kubeconfig", "admin.conf",
			"--nodes", "emei,wudang", "--lb-mode", "vip", "--vip", "10.0.0.100", "--lb-engine", "haproxy", "--no-install",
			"--cert-sans", "api.lab.internal,10.0.0.100", "--backup-dir", "b", "--keep-backups", "2", "--remove-stale-learners"},
		{"-f", "../docs/haadm.yaml"},
	} {
		first, _ := printConfig(t, args...)
		again, _ := printConfig(t, "-f", writeFile(t, "haadm.yaml", first))
		if again != first {
			t.Errorf("%v: print -f of its own output differs:\n%s\nthen\n%s", args, first, again)
		}
	}
}

const fileHeader = "apiVersion: haadm.io/v1alpha1\nkind: PromoteConfiguration\n"

// A flag given on the command line beats the file, a list flag replaces
// the file's list, and what no flag gives comes from the file.
func TestConfigFlagsOverride(t *testing.T) {
	file := writeFile(t, "haadm.yaml", fileHeader+`nodes: [emei, wudang]
loadBalancer: {port: 9443, node: wudang}
certSANs: [a.lab.internal, b.lab.internal]
timeout: 2h
ssh: {user: admin, configFile: ssh_config}
`)
	_, c := printConfig(t, "--timeout", "1h", "-f", file, "--lb-port", "7443", "--nodes", "kunlun", "--ssh-user", "root")
	if c.LoadBalancer.Port != 7443 || c.Timeout != "1h" || c.SSH.User != "root" {
		t.Errorf("flags did not override the file: port %d, timeout %s, user %s", c.LoadBalancer.Port, c.Timeout, c.SSH.User)
	}
	if !reflect.DeepEqual(c.Nodes, []string{"kunlun"}) {
		t.Errorf("--nodes kunlun gave nodes %v, want [kunlun] only", c.Nodes)
	}
	if c.LoadBalancer.Node != "wudang" || c.SSH.ConfigFile != "ssh_config" || !reflect.DeepEqual(c.CertSANs, []string{"a.lab.internal", "b.lab.internal"}) {
		t.Errorf("file values lost: %+v", c)
	}
	// --config is -f's long name, and it works on every phase.
	if _, c := printConfig(t, "--config", file, "--cert-sans", "c.lab.internal"); !reflect.DeepEqual(c.CertSANs, []string{"c.lab.internal"}) {
		t.Errorf("--cert-sans gave %v, want [c.lab.internal] only", c.CertSANs)
	}
	if _, out, _ := run(t, "promote", "--help"); !strings.Contains(out, "docs/haadm.yaml") {
		t.Errorf("promote's help does not point at the example:\n%s", out)
	}
	for _, p := range phases.All() {
		if _, out, _ := run(t, "phase", p.Name(), "--help"); !strings.Contains(out, "-f, --config FILE") {
			t.Errorf("phase %s has no -f:\n%s", p.Name(), out)
		}
	}
}

// A bad file is refused before anything is contacted, every problem named
// by its field path, by promote, by every phase and by print.
func TestConfigFileRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	missing := filepath.Join(dir, "nope.kubeconfig")
	bad := writeFile(t, "haadm.yaml", fileHeader+`nodes: [emei, ""]
loadBalancer: {mdoe: vip, port: 70000}
`)
	wrong := writeFile(t, "kubeadm.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"promote", "-f", bad}, []string{"3 problem(s)", "loadBalancer.mdoe: unknown field", `nodes[1]: "" is not a node name`, "loadBalancer.port: 70000 is not a port (1-65535)"}},
		{[]string{"phase", "etcd", "-f", bad, "--nodes", "emei"}, []string{"loadBalancer.mdoe: unknown field"}},
		{[]string{"config", "print", "-f", bad}, []string{"loadBalancer.port: 70000"}},
		{[]string{"promote", "-f", wrong}, []string{`kind "ClusterConfiguration"`, "want apiVersion: haadm.io/v1alpha1, kind: PromoteConfiguration"}},
		{[]string{"promote", "-f", filepath.Join(dir, "none.yaml")}, []string{"none.yaml: no such file"}},
		// Options.Validate still checks the merged result.
		{[]string{"config", "print", "-f", writeFile(t, "h.yaml", fileHeader+"etcHosts: 10.0.0.1\n")}, []string{"--etc-hosts needs --endpoint NAME:PORT"}},
		{[]string{"promote", "-f", writeFile(t, "h.yaml", fileHeader+"loadBalancer: {mode: external}\n")}, []string{"no nodes to promote: give --nodes"}},
	} {
		code, _, errOut := run(t, append([]string{"--kubeconfig", missing}, tc.args...)...)
		if code == 0 {
			t.Errorf("%v: accepted", tc.args)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errOut)
			}
		}
		if strings.Contains(errOut, "kubeconfig") {
			t.Errorf("%v: contacted the cluster before refusing the file:\n%s", tc.args, errOut)
		}
	}
	// Nodes from the file are enough: the run gets as far as the API.
	good := writeFile(t, "good.yaml", fileHeader+"nodes: [emei]\n")
	if code, _, errOut := run(t, "--kubeconfig", missing, "promote", "-f", good); code == 0 || !strings.Contains(errOut, "kubeconfig") {
		t.Errorf("promote -f with nodes in the file: %d %s", code, errOut)
	}
}

// The file's per-node SSH entries reach the SSH dialer's options, beside
// the settings for every node.
func TestConfigSSHNodes(t *testing.T) {
	file := writeFile(t, "haadm.yaml", fileHeader+`nodes: [emei]
ssh:
  user: admin
  nodes:
  - name: shaolin
    hostName: 10.0.0.10
    port: 2222
    user: root
    identityFile: /keys/shaolin
    proxyJump: bastion
  - name: emei
    proxyJump: other-bastion
`)
	g := &globalFlags{}
	f := &promoteFlags{}
	c := &cobra.Command{Use: "promote", RunE: func(cmd *cobra.Command, _ []string) error { return applyConfig(cmd, g, f) }}
	f.register(c, phases.UsesOf(phases.All()))
	c.SetArgs([]string{"-f", file})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	got := sshOptions(g, phases.NewProgress(io.Discard, io.Discard))
	want := map[string]node.SSHNodeOptions{
		"shaolin": {HostName: "10.0.0.10", Port: 2222, User: "root", IdentityFile: "/keys/shaolin", ProxyJump: "bastion"},
		"emei":    {ProxyJump: "other-bastion"},
	}
	if !reflect.DeepEqual(got.Nodes, want) || got.User != "admin" {
		t.Errorf("ssh options: user %q, nodes %+v, want admin, %+v", got.User, got.Nodes, want)
	}
	// and print writes them back, sorted by name.
	_, pc := printConfig(t, "-f", file)
	if len(pc.SSH.Nodes) != 2 || pc.SSH.Nodes[0].Name != "emei" || pc.SSH.Nodes[1] != (config.SSHNode{Name: "shaolin", HostName: "10.0.0.10", Port: 2222, User: "root", IdentityFile: "/keys/shaolin", ProxyJump: "bastion"}) {
		t.Errorf("printed ssh.nodes: %+v", pc.SSH.Nodes)
	}
}

// TestAccessConfig: remove, rollback, restore and status read the access
// part of promote's file (per-node SSH entries included), flags over it.
func TestAccessConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "haadm.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: haadm.io/v1alpha1
kind: PromoteConfiguration
nodes: [emei, wudang]
kubeconfig: /etc/kubernetes/admin.conf
ssh:
  user: admin
  nodes:
  - {name: wudang, hostName: 10.0.0.13, user: root, proxyJump: gate}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"remove", "rollback", "restore", "status"} {
		t.Run(name, func(t *testing.T) {
			g := &globalFlags{}
			var a accessConfig
			c := &cobra.Command{Use: name, RunE: func(cmd *cobra.Command, _ []string) error { return a.apply(cmd, g) }}
			a.register(c.Flags())
			c.Flags().StringVar(&g.sshUser, "ssh-user", "", "")
			c.SetArgs([]string{"-f", file, "--ssh-user", "ops"})
			if err := c.Execute(); err != nil {
				t.Fatal(err)
			}
			if g.kubeconfig != "/etc/kubernetes/admin.conf" || g.sshUser != "ops" || g.sshNodes["wudang"].ProxyJump != "gate" || g.sshNodes["wudang"].HostName != "10.0.0.13" {
				t.Errorf("kubeconfig %q, ssh user %q (the flag's), wudang %+v", g.kubeconfig, g.sshUser, g.sshNodes["wudang"])
			}
			if u := g.sshNodes["wudang"].User; u != "" {
				t.Errorf("wudang's user %q from the file beats --ssh-user", u)
			}
		})
	}
	// And the real commands have the flag.
	root := NewRootCommand(io.Discard, io.Discard)
	for _, path := range [][]string{{"remove"}, {"rollback"}, {"restore"}, {"status"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Flags().Lookup("config") == nil {
			t.Errorf("%v has no -f/--config (%v)", path, err)
		}
	}
}
