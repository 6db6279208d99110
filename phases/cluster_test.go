package phases

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/lb"
)

// TestDiscover runs Discover against the lab's captured nodes and
// kubeadm-config, served by a fake clientset.
func TestDiscover(t *testing.T) {
	t.Parallel()
	l := getLab(t)
	tests := []struct {
		name      string
		s         setup
		wantErr   []string // every string must be in the error
		first     string
		newNodes  []string
		others    []string
		endpoint  string
		lbSANs    []string // names then IPs
		epHost    string
		epPort    int
		facts     func(t *testing.T, c *Cluster)
		wantNodes map[string]NodeInfo
	}{
		{
			name:     "lab defaults: first master from the control-plane label, LB on emei",
			s:        setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei"}},
			first:    "shaolin",
			newNodes: []string{"emei", "wudang"},
			endpoint: emeiIP + ":8443", epHost: emeiIP, epPort: 8443,
			lbSANs: []string{"emei", emeiIP},
			wantNodes: map[string]NodeInfo{
				"shaolin": {Name: "shaolin", IP: shaolinIP, KubeletVersion: labVersion, ControlPlane: true, Tainted: true, Ready: true},
				"emei":    {Name: "emei", IP: emeiIP, KubeletVersion: labVersion, Ready: true},
				"wudang":  {Name: "wudang", IP: wudangIP, KubeletVersion: labVersion, Ready: true},
			},
			facts: func(t *testing.T, c *Cluster) {
				f := c.Facts
				if f.KubernetesVersion != labVersion || f.ClusterName != "kubernetes" || f.ServiceSubnet != "10.96.0.0/12" ||
					f.DNSDomain != "cluster.local" || f.ControlPlaneEndpoint != "" || f.ExternalEtcd || f.APIVersion != "kubeadm.k8s.io/v1beta4" {
					t.Errorf("facts from the captured kubeadm-config: %+v", f)
				}
			},
		},
		{
			name:     "a worker not in --nodes stays a worker; --lb-port and --cert-sans",
			s:        setup{Worker: true, Opts: Options{Nodes: []string{"emei"}, LBNode: "wudang", LBPort: 9443, CertSANs: []string{"api.example.com", "192.0.2.10", "wudang", emeiIP}}},
			first:    "shaolin",
			newNodes: []string{"emei"},
			others:   []string{"wudang", "wutai"},
			endpoint: wudangIP + ":9443", epHost: wudangIP, epPort: 9443,
			// Duplicates (wudang by name, an IP given twice) appear once.
			lbSANs: []string{"wudang", "api.example.com", wudangIP, "192.0.2.10", emeiIP},
		},
		{
			// A re-run after a promotion: emei and wudang carry the label
			// now, and haadm must still copy from shaolin.
			name: "re-run after promotion: the new masters' labels do not hide the first one",
			s: setup{EditNodes: func(n map[string]*corev1.Node) {
				n["emei"].Labels[controlplane.Label] = ""
				n["wudang"].Labels[controlplane.Label] = ""
			}},
			first:    "shaolin",
			newNodes: []string{"emei", "wudang"},
			endpoint: emeiIP + ":8443", epHost: emeiIP, epPort: 8443,
			lbSANs: []string{"emei", emeiIP},
		},
		{
			name:     "--first-master named explicitly",
			s:        setup{Opts: Options{Nodes: []string{"wudang"}, FirstMaster: "shaolin", LBNode: "emei"}},
			first:    "shaolin",
			newNodes: []string{"wudang"},
			others:   []string{"emei"},
			endpoint: emeiIP + ":8443", epHost: emeiIP, epPort: 8443,
			lbSANs: []string{"emei", emeiIP},
		},
		{
			name:     "--lb-mode none with a DNS endpoint: no LB node SANs",
			s:        setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "none", LBNode: "wudang", Endpoint: "k8s-api.lab:6443"}},
			first:    "shaolin",
			newNodes: []string{"emei", "wudang"},
			endpoint: "k8s-api.lab:6443", epHost: "k8s-api.lab", epPort: 6443,
			lbSANs: []string{"k8s-api.lab"},
		},
		{
			// Every node talks to its own nginx on 127.0.0.1: the
			// endpoint is localhost, which every certificate must carry.
			name:     "--lb-mode node-local: localhost endpoint on 6444",
			s:        setup{Opts: Options{Nodes: []string{"emei", "wudang"}, LBMode: "node-local"}},
			first:    "shaolin",
			newNodes: []string{"emei", "wudang"},
			endpoint: "localhost:6444", epHost: "localhost", epPort: 6444,
			lbSANs: []string{"localhost", "127.0.0.1"},
		},
		{
			name:     "--lb-mode node-local with --lb-port",
			s:        setup{Opts: Options{Nodes: []string{"emei"}, LBMode: "node-local", LBPort: 7443, LBNode: "wudang"}},
			first:    "shaolin",
			newNodes: []string{"emei"},
			others:   []string{"wudang"},
			endpoint: "localhost:7443", epHost: "localhost", epPort: 7443,
			lbSANs: []string{"localhost", "127.0.0.1"},
		},
		{
			// `haadm phase etcd` and `haadm phase mark` take no LB flags.
			name:     "without the endpoint: no --lb-node needed, no endpoint resolved",
			s:        setup{NoEndpoint: true, Opts: Options{Nodes: []string{"emei", "wudang"}}},
			first:    "shaolin",
			newNodes: []string{"emei", "wudang"},
		},
		{
			name:    "--lb-port may not be the apiserver's",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "emei", LBPort: 6443}},
			wantErr: []string{"--lb-port 6443 is a port the control plane or the kubelet uses"},
		},
		{
			name:    "--lb-port may not be the kubelet's",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBMode: "node-local", LBPort: 10250}},
			wantErr: []string{"--lb-port 10250 is a port the control plane or the kubelet uses"},
		},
		{
			name:    "the only control plane named in --nodes",
			s:       setup{Opts: Options{Nodes: []string{"shaolin", "emei"}, LBNode: "emei"}},
			wantErr: []string{`node "shaolin" is already a control-plane node and no other is`, "--first-master"},
		},
		{
			name:    "unknown --nodes name",
			s:       setup{Opts: Options{Nodes: []string{"emei", "kunlun"}, LBNode: "emei"}},
			wantErr: []string{`node "kunlun" is not a node of this cluster`, "(nodes: emei, shaolin, wudang)", "kubeadm join"},
		},
		{
			name:    "--lb-node is required in external mode",
			s:       setup{Opts: Options{Nodes: []string{"emei", "wudang"}}},
			wantErr: []string{"--lb-node is required", "--lb-mode none --endpoint"},
		},
		{
			name:    "--lb-node must be a node",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "haproxy1"}},
			wantErr: []string{`--lb-node "haproxy1" is not a node of this cluster`},
		},
		{
			name:    "--lb-mode none requires --endpoint",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBMode: "none"}},
			wantErr: []string{"--lb-mode none needs --endpoint HOST:PORT"},
		},
		{
			name:    "unknown --lb-mode",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBMode: "haproxy", LBNode: "emei"}},
			wantErr: []string{`--lb-mode "haproxy": use external, node-local, vip or none`},
		},
		{
			name:    "endpoint without a port",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBMode: "none", Endpoint: "k8s-api.lab"}},
			wantErr: []string{`--endpoint "k8s-api.lab": want HOST:PORT`},
		},
		{
			name:    "endpoint with a bad port",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, LBMode: "none", Endpoint: "k8s-api.lab:70000"}},
			wantErr: []string{`--endpoint "k8s-api.lab:70000": bad port`},
		},
		{
			name:    "--first-master must be a node",
			s:       setup{Opts: Options{Nodes: []string{"emei"}, FirstMaster: "kunlun", LBNode: "emei"}},
			wantErr: []string{`first master "kunlun" is not a node of this cluster (nodes: emei, shaolin, wudang)`},
		},
		{
			name:    "--nodes may not name the first master",
			s:       setup{Opts: Options{Nodes: []string{"shaolin", "emei"}, FirstMaster: "shaolin", LBNode: "emei"}},
			wantErr: []string{`node "shaolin" is the existing control plane`},
		},
		{
			name: "no control-plane label and no --first-master",
			s: setup{EditNodes: func(n map[string]*corev1.Node) {
				delete(n["shaolin"].Labels, controlplane.Label)
			}},
			wantErr: []string{"no node carries the " + controlplane.Label + " label", "--first-master"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tt.s
			if s.Opts.Nodes == nil {
				s.Opts = Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei"}
			}
			kube := newClientset(t, l, s)
			c, err := Discover(t.Context(), kube, s.Opts, !s.NoEndpoint)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Discover succeeded, want an error mentioning %q", tt.wantErr)
				}
				mustContain(t, err.Error(), tt.wantErr...)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.First.Name != tt.first {
				t.Errorf("first master = %s, want %s", c.First.Name, tt.first)
			}
			if got := nodeNames(c.New); !slices.Equal(got, tt.newNodes) {
				t.Errorf("new masters = %v, want %v", got, tt.newNodes)
			}
			if got := nodeNames(c.Others); !slices.Equal(got, tt.others) {
				t.Errorf("workers that stay = %v, want %v", got, tt.others)
			}
			if got := nodeNames(c.Masters()); !slices.Equal(got, append([]string{tt.first}, tt.newNodes...)) {
				t.Errorf("Masters() = %v", got)
			}
			if c.Opts.Endpoint != tt.endpoint || c.EndpointHost != tt.epHost || c.EndpointPort != tt.epPort {
				t.Errorf("endpoint = %q (%q, %d), want %q (%q, %d)", c.Opts.Endpoint, c.EndpointHost, c.EndpointPort, tt.endpoint, tt.epHost, tt.epPort)
			}
			names, ips := c.LBSANs()
			if got := append(names, ipStrings(ips)...); !slices.Equal(got, tt.lbSANs) {
				t.Errorf("LBSANs = %q, want %q", got, tt.lbSANs)
			}
			for name, want := range tt.wantNodes {
				got := c.Nodes[name]
				if got.Created.IsZero() {
					t.Errorf("node %s: no creation time (FirstMaster orders by it)", name)
				}
				got.Created = want.Created
				if got != want {
					t.Errorf("node %s = %+v, want %+v", name, got, want)
				}
			}
			if tt.s.NoEndpoint && (c.HasEndpoint() || c.LBNodes() != nil) {
				t.Errorf("without the endpoint: HasEndpoint %v, LBNodes %v", c.HasEndpoint(), c.LBNodes())
			}
			if tt.facts != nil {
				tt.facts(t, c)
			}
			// Discover only reads.
			for _, a := range kube.Actions() {
				if v := a.GetVerb(); v != "get" && v != "list" {
					t.Errorf("Discover made a %s call on %s", v, a.GetResource().Resource)
				}
			}
		})
	}
}

// TestLBNodes: where haadm runs nginx in each mode, and which nodes a run
// needs SSH to: every master, every worker (its kubelet is repointed), and
// the LB nodes.
func TestLBNodes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s     setup
		want  []string
		hosts []string
	}{
		{setup{Opts: Options{Nodes: []string{"emei"}, LBNode: "wudang"}}, []string{"wudang"}, []string{"shaolin", "emei", "wudang", "wutai"}},
		{setup{Opts: Options{Nodes: []string{"emei"}, LBMode: lb.ModeNodeLocal}}, []string{"emei", "shaolin", "wudang", "wutai"}, []string{"shaolin", "emei", "wudang", "wutai"}},
		{setup{Opts: Options{Nodes: []string{"emei"}, LBMode: lb.ModeNone, LBNode: "emei", Endpoint: "k8s-api.lab:6443"}}, nil, []string{"shaolin", "emei", "wudang", "wutai"}},
		// `haadm phase etcd`: no LB, so no LB node whatever --lb-node says.
		{setup{NoEndpoint: true, Opts: Options{Nodes: []string{"emei"}, LBNode: "wudang"}}, nil, []string{"shaolin", "emei", "wudang", "wutai"}},
	} {
		tt.s.Worker = true
		f := newFixture(t, tt.s)
		if got := f.c.LBNodes(); !slices.Equal(got, tt.want) {
			t.Errorf("%q mode: LBNodes = %v, want %v", f.c.Opts.LBMode, got, tt.want)
		}
		if got := f.c.HostNames(); !slices.Equal(got, tt.hosts) {
			t.Errorf("%q mode: HostNames = %v, want %v", f.c.Opts.LBMode, got, tt.hosts)
		}
	}
}

// TestControlPlanes: a control plane the cluster already had, and that is
// not being promoted, is a backend of the load balancer but not a worker.
func TestControlPlanes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, setup{Worker: true, Opts: Options{Nodes: []string{"emei"}, FirstMaster: "shaolin", LBNode: "emei"},
		EditNodes: func(n map[string]*corev1.Node) { n["wudang"].Labels[controlplane.Label] = "" }})
	if got := nodeNames(f.c.ControlPlanes()); !slices.Equal(got, []string{"shaolin", "emei", "wudang"}) {
		t.Errorf("ControlPlanes = %v", got)
	}
	if got := nodeNames(f.c.Others); !slices.Equal(got, []string{"wutai"}) {
		t.Errorf("Others = %v, want wutai alone", got)
	}
	backends := lbConfig(f.c).Backends
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.Address)
	}
	if !slices.Equal(addrs, []string{shaolinIP, emeiIP, wudangIP}) {
		t.Errorf("nginx backends %v", addrs)
	}
}

func TestEndpointURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		host string
		port int
		want string
	}{
		{emeiIP, 8443, "https://10.250.0.12:8443"},
		{"k8s-api.lab", 6443, "https://k8s-api.lab:6443"},
		{"fd00::10", 8443, "https://[fd00::10]:8443"},
	} {
		c := &Cluster{EndpointHost: tt.host, EndpointPort: tt.port}
		if got := c.EndpointURL(); got != tt.want {
			t.Errorf("EndpointURL(%s, %d) = %s, want %s", tt.host, tt.port, got, tt.want)
		}
	}
}

// TestNodeInfoNotReady: a node whose Ready condition is not True, or
// missing, is not Ready; the first InternalIP wins.
func TestNodeInfoNotReady(t *testing.T) {
	t.Parallel()
	n := corev1.Node{}
	n.Name = "kunlun"
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "kunlun"}, {Type: corev1.NodeInternalIP, Address: "10.250.0.20"}, {Type: corev1.NodeInternalIP, Address: "fd00::20"}}
	if ni := controlplane.NodeOf(n); ni.Ready || ni.IP != "10.250.0.20" || ni.ControlPlane {
		t.Errorf("no conditions: %+v", ni)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
	if ni := controlplane.NodeOf(n); ni.Ready {
		t.Errorf("Ready=Unknown: %+v", ni)
	}
}

func nodeNames(ns []NodeInfo) []string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Name)
	}
	return s
}

// TestFind covers the phase list the commands use: preflight and backup
// are steps of every run, not phases.
func TestFind(t *testing.T) {
	t.Parallel()
	want := []string{"etc-hosts", "certs", "host-files", "etcd", "control-plane", "mark", "lb", "kubelet", "cluster-config"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		p, err := Find(n)
		if err != nil || p.Name() != n || p.Description() == "" {
			t.Errorf("Find(%s) = %v, %v", n, p, err)
		}
	}
	for _, n := range []string{"lbs", "preflight", "backup"} {
		_, err := Find(n)
		if err == nil || !strings.Contains(err.Error(), `no phase "`+n+`"`) || !strings.Contains(err.Error(), strings.Join(want, ", ")) {
			t.Errorf("Find(%s): %v", n, err)
		}
	}
}

// TestSelect: --skip-phases takes phase names and "backup"; anything else,
// preflight included (it cannot be skipped), is refused with the list.
func TestSelect(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		skip    []string
		want    []string
		wantErr string
	}{
		{nil, Names(), ""},
		{[]string{"lb", "mark"}, []string{"etc-hosts", "certs", "host-files", "etcd", "control-plane", "kubelet", "cluster-config"}, ""},
		{[]string{"backup"}, Names(), ""},
		{[]string{"lbs"}, nil, "--skip-phases lbs: no such phase; phases are: etc-hosts, certs, host-files, etcd, control-plane, mark, lb, kubelet, cluster-config, backup"},
		{[]string{"preflight", "certs", "kubelets"}, nil, "--skip-phases preflight,kubelets: no such phase"},
	} {
		list, err := Select(tt.skip)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Select(%q) = %v, want error %q", tt.skip, err, tt.wantErr)
			}
			continue
		}
		var got []string
		for _, p := range list {
			got = append(got, p.Name())
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Select(%q) = %v, %v; want %v", tt.skip, got, err, tt.want)
		}
	}
}

// TestUses: which phases need the endpoint (and so the LB flags); `haadm
// phase etcd` and `haadm phase mark` run without them.
func TestUses(t *testing.T) {
	t.Parallel()
	for _, p := range All() {
		want := UsesEndpoint
		switch p.Name() {
		case "etcd":
			want = UsesEtcd
		case "mark", "host-files":
			want = 0
		}
		if got := p.Uses(); got != want {
			t.Errorf("%s.Uses() = %b, want %b", p.Name(), got, want)
		}
	}
	if u := UsesOf([]Phase{Etcd{}, Mark{}}); u&UsesEndpoint != 0 || u&UsesEtcd == 0 {
		t.Errorf("UsesOf(etcd, mark) = %b", u)
	}
	if u := UsesOf(All()); u != UsesEndpoint|UsesEtcd {
		t.Errorf("UsesOf(All) = %b", u)
	}
	if d, ok := Phase(Etcd{}).(dependent); !ok || !slices.Equal(d.DependsOn(), []string{"certs"}) {
		t.Error("etcd must be planned again after certs changed something: its members use the certificates")
	}
	for _, p := range All() {
		if _, ok := p.(dependent); ok && p.Name() != "etcd" {
			t.Errorf("%s depends on earlier phases: add it to this test and to TestRunReplans", p.Name())
		}
	}
}
