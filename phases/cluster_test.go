package phases

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestDiscover runs Discover against the lab's captured nodes and
// kubeadm-config, served by a fake clientset.
func TestDiscover(t *testing.T) {
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
				"shaolin": {Name: "shaolin", IP: shaolinIP, KubeletVersion: labVersion, ControlPlane: true, Ready: true},
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
				n["emei"].Labels[ControlPlaneLabel] = ""
				n["wudang"].Labels[ControlPlaneLabel] = ""
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
			wantErr: []string{`--lb-mode "haproxy": use external, node-local or none`},
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
				delete(n["shaolin"].Labels, ControlPlaneLabel)
			}},
			wantErr: []string{"no node carries the " + ControlPlaneLabel + " label", "--first-master"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if s.Opts.Nodes == nil {
				s.Opts = Options{Nodes: []string{"emei", "wudang"}, LBNode: "emei"}
			}
			kube := newClientset(t, l, s)
			c, err := Discover(t.Context(), kube, s.Opts)
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
				if got := c.Nodes[name]; got != want {
					t.Errorf("node %s = %+v, want %+v", name, got, want)
				}
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

// TestLBNodes: where haadm runs nginx in each mode.
func TestLBNodes(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want []string
	}{
		{Options{Nodes: []string{"emei", "wudang"}, LBNode: "wudang"}, []string{"wudang"}},
		{Options{Nodes: []string{"emei"}, LBMode: "node-local"}, []string{"emei", "shaolin", "wudang", "wutai"}},
		{Options{Nodes: []string{"emei"}, LBMode: "none", LBNode: "emei", Endpoint: "k8s-api.lab:6443"}, nil},
	} {
		f := newFixture(t, setup{Worker: true, Opts: tt.opts})
		if got := f.c.LBNodes(); !slices.Equal(got, tt.want) {
			t.Errorf("%s mode: LBNodes = %v, want %v", f.c.Opts.LBMode, got, tt.want)
		}
	}
}

func TestEndpointURL(t *testing.T) {
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
	n := corev1.Node{}
	n.Name = "kunlun"
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: "kunlun"}, {Type: corev1.NodeInternalIP, Address: "10.250.0.20"}, {Type: corev1.NodeInternalIP, Address: "fd00::20"}}
	if ni := nodeInfo(n); ni.Ready || ni.IP != "10.250.0.20" || ni.ControlPlane {
		t.Errorf("no conditions: %+v", ni)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}
	if ni := nodeInfo(n); ni.Ready {
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

// TestFind covers the phase list the commands use.
func TestFind(t *testing.T) {
	want := []string{"preflight", "backup", "certs", "etcd", "control-plane", "mark", "lb", "kubelet", "cluster-config"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		p, err := Find(n)
		if err != nil || p.Name() != n || p.Description() == "" {
			t.Errorf("Find(%s) = %v, %v", n, p, err)
		}
	}
	_, err := Find("lbs")
	if err == nil || !strings.Contains(err.Error(), `no phase "lbs"`) || !strings.Contains(err.Error(), strings.Join(want, ", ")) {
		t.Errorf("Find(lbs): %v", err)
	}
}
