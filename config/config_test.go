package config

import (
	"reflect"
	"strings"
	"testing"
)

const header = "apiVersion: haadm.io/v1alpha1\nkind: PromoteConfiguration\n"

// The annotated example in docs/ is a valid file, and survives Marshal.
func TestExampleRoundTrip(t *testing.T) {
	t.Parallel()
	c, err := Load("../docs/haadm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SSH.Nodes) != 2 || c.SSH.Nodes[0] != (SSHNode{Name: "shaolin", HostName: "10.0.0.10", Port: 2222, User: "root", IdentityFile: "/home/admin/.ssh/shaolin", ProxyJump: "bastion.lab.internal"}) {
		t.Errorf("ssh.nodes: %+v", c.SSH.Nodes)
	}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), header) {
		t.Errorf("apiVersion and kind are not first:\n%s", b)
	}
	back, err := Decode("printed", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed it:\n%+v\n%+v", c, back)
	}
}

// Strings that YAML would read as numbers or booleans stay strings.
func TestMarshalQuotes(t *testing.T) {
	t.Parallel()
	c := &PromoteConfiguration{APIVersion: APIVersion, Kind: Kind, CertSANs: []string{"true", "10"}, SSH: SSH{User: "1234"}, Timeout: "1h"}
	b, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode("printed", b)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Errorf("%v\n%s", err, b)
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", header + "loadBalancer:\n  mdoe: vip\n",
			[]string{"haadm.yaml: 1 problem(s)", "loadBalancer.mdoe: unknown field"}},
		{"unknown nested in a list", header + "ssh:\n  nodes:\n  - name: emei\n    hostname: x\n",
			[]string{"ssh.nodes[0].hostname: unknown field"}},
		{"repeated key", header + "nodes: [a]\nnodes: [b]\n", []string{`key "nodes" already set`}},
		{"wrong apiVersion", "apiVersion: haadm.io/v1beta1\nkind: PromoteConfiguration\n",
			[]string{`apiVersion "haadm.io/v1beta1"`, "want apiVersion: haadm.io/v1alpha1, kind: PromoteConfiguration"}},
		{"kubeadm's kind", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration: {}\n",
			[]string{`kind "InitConfiguration"`, "want apiVersion: haadm.io/v1alpha1"}},
		{"no version", "nodes: [emei]\n", []string{`apiVersion ""`, "want apiVersion: haadm.io/v1alpha1"}},
		{"not a mapping", "- emei\n", []string{"want a YAML mapping"}},
		{"wrong type", header + "loadBalancer: {port: \"8443\"}\n", []string{"loadBalancer.port: want a whole number, found string"}},
		{"wrong type list", header + "nodes: emei\n", []string{"nodes: want a list, found string"}},
		{"every problem at once", header + `nodes: [emei, "", emei, Bad_Name]
firstMaster: -x
loadBalancer: {mode: vrrp, engine: envoy, port: 70000, vip: 10.0.0, endpoint: "api:99999", mdoe: x}
certSANs: ["ok.example", "not a name"]
etcHosts: somewhere
backup: {keep: -1}
timeout: 5x
ssh:
  nodes:
  - name: shaolin
    port: 0
  - name: shaolin
    port: -2
  - hostName: 10.0.0.1
`, []string{
			"haadm.yaml: 17 problem(s); nothing was changed",
			"loadBalancer.mdoe: unknown field",
			`nodes[1]: "" is not a node name`,
			"nodes[2]: emei is listed twice",
			`nodes[3]: "Bad_Name" is not a node name`,
			`firstMaster: "-x" is not a node name`,
			`loadBalancer.mode: "vrrp" is not a mode: use external, node-local, vip or none`,
			`loadBalancer.engine: "envoy" is not an engine: use nginx or haproxy`,
			"loadBalancer.port: 70000 is not a port (1-65535)",
			`loadBalancer.vip: "10.0.0" is not an IP address`,
			`loadBalancer.endpoint: "api:99999" has port "99999", want 1-65535`,
			`certSANs[1]: "not a name" is neither an IP address nor a DNS name`,
			`etcHosts: "somewhere" is not the IP address`,
			"backup.keep: -1",
			`timeout: "5x" is not how long to wait`,
			"ssh.nodes[1].name: shaolin has an entry already",
			"ssh.nodes[1].port: -2 is not a port (1-65535)",
			`ssh.nodes[2].name: "" is not a node name`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode("haadm.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// Empty fields are the flags' defaults, and a per-node entry may name any
// node, one not in nodes included.
func TestDecodeAccepts(t *testing.T) {
	t.Parallel()
	for _, y := range []string{
		header,
		header + "nodes: []\nloadBalancer: {port: 0}\ntimeout: \"\"\n",
		header + "nodes: [emei]\nssh:\n  nodes:\n  - name: shaolin\n    hostName: 10.0.0.10\n",
		header + "certSANs: [\"*.lab.internal\", \"::1\"]\ntimeout: 1h30m\n",
	} {
		if _, err := Decode("haadm.yaml", []byte(y)); err != nil {
			t.Errorf("%q: %v", y, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"45m": "45m", "1h": "1h", "1h30m": "1h30m", "90s": "1m30s", "2h0m5s": "2h0m5s", "0s": "0s"} {
		c := &PromoteConfiguration{Timeout: in}
		if got := FormatDuration(c.TimeoutDuration()); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
