package certs

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
)

var (
	emei = NodeFacts{Name: "emei", IP: net.ParseIP("10.250.0.12")}
	lab  = ClusterFacts{
		DNSDomain:     "cluster.local",
		ServiceSubnet: "10.96.0.0/12",
		LBNames:       []string{"k8s-api.lab"},
		LBIPs:         ips("10.250.0.12"),
		ExtraSANs:     []string{"10.250.0.100", "api.example.com", "*.k8s.example.com", "k8s-api.lab"},
	}
	serverAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	clientAuth = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	bothAuth   = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

var apiServerDNS = []string{"*.k8s.example.com", "api.example.com", "emei", "k8s-api.lab",
	"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

func TestAPIServerSpec(t *testing.T) {
	with := func(f func(*ClusterFacts)) ClusterFacts {
		c := lab
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		node    NodeFacts
		cluster ClusterFacts
		dns     []string
		ips     []net.IP
	}{{
		// The LB IP is emei's own address: it must appear once.
		name: "emei behind the LB", node: emei, cluster: lab,
		dns: apiServerDNS,
		ips: ips("10.96.0.1", "10.250.0.12", "10.250.0.100"),
	}, {
		name: "node-local proxy", node: emei,
		cluster: with(func(c *ClusterFacts) { c.NodeLocalLB = true }),
		dns: []string{"*.k8s.example.com", "api.example.com", "emei", "k8s-api.lab",
			"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		ips: ips("10.96.0.1", "10.250.0.12", "10.250.0.100", "127.0.0.1"),
	}, {
		name: "node-local proxy already in certSANs keeps their order", node: emei,
		cluster: ClusterFacts{NodeLocalLB: true, ExtraSANs: []string{"127.0.0.1", "localhost", "10.250.0.9"}},
		dns:     []string{"emei", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		ips:     ips("10.96.0.1", "10.250.0.12", "127.0.0.1", "10.250.0.9"),
	}, {
		name: "defaults: no LB, empty domain and subnet", node: emei, cluster: ClusterFacts{},
		dns: []string{"emei", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips: ips("10.96.0.1", "10.250.0.12"),
	}, {
		name: "custom domain and subnet", node: NodeFacts{Name: "wudang", IP: net.ParseIP("10.250.0.13")},
		cluster: ClusterFacts{DNSDomain: "corp.internal", ServiceSubnet: "172.20.0.0/16", LBIPs: ips("10.250.0.10")},
		dns:     []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.corp.internal", "wudang"},
		ips:     ips("172.20.0.1", "10.250.0.13", "10.250.0.10"),
	}, {
		name: "dual-stack: only the first subnet's IP", node: emei,
		cluster: ClusterFacts{ServiceSubnet: "10.96.0.0/12,fd00:10:96::/112"},
		dns:     []string{"emei", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:     ips("10.96.0.1", "10.250.0.12"),
	}, {
		name: "IPv6 first", node: NodeFacts{Name: "emei", IP: net.ParseIP("fd00::12")},
		cluster: ClusterFacts{ServiceSubnet: "fd00:10:96::/112, 10.96.0.0/12", LBIPs: ips("fd00::10")},
		dns:     []string{"emei", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:     ips("fd00:10:96::1", "fd00::12", "fd00::10"),
	}, {
		name: "LB name given as an IP, sloppy IP in certSANs", node: emei,
		cluster: ClusterFacts{LBNames: []string{"10.250.0.10"}, ExtraSANs: []string{"010.250.000.005"}},
		dns:     []string{"emei", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:     ips("10.96.0.1", "10.250.0.12", "10.250.0.10", "10.250.0.5"),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := APIServer(tt.node, tt.cluster)
			if err != nil {
				t.Fatal(err)
			}
			checkSpec(t, got, Spec{CommonName: "kube-apiserver", DNSNames: tt.dns, IPs: tt.ips, ExtKeyUsage: serverAuth})
			for _, ip := range got.IPs {
				if ip.To4() != nil && len(ip) != net.IPv4len {
					t.Errorf("IPv4 %s not in 4-byte form", ip)
				}
			}
		})
	}
}

func TestAPIServerSpecErrors(t *testing.T) {
	tests := []struct {
		name    string
		node    NodeFacts
		cluster ClusterFacts
		want    string
	}{
		{"no node name", NodeFacts{IP: emei.IP}, lab, "no name"},
		{"no node IP", NodeFacts{Name: "emei"}, lab, "no IP"},
		{"unspecified node IP", NodeFacts{Name: "emei", IP: net.IPv4zero}, lab, "no IP"},
		{"bad subnet", emei, ClusterFacts{ServiceSubnet: "10.96.0.0"}, "service subnet"},
		{"subnet too small", emei, ClusterFacts{ServiceSubnet: "10.96.0.0/32"}, "too small"},
		{"bad certSAN", emei, ClusterFacts{ExtraSANs: []string{"K8s_API"}}, "certSANs"},
		{"bad LB name", emei, ClusterFacts{LBNames: []string{"-lb"}}, "load balancer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := APIServer(tt.node, tt.cluster)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEtcdSpecs(t *testing.T) {
	wudang := NodeFacts{Name: "wudang", IP: net.ParseIP("10.250.0.13")}
	tests := []struct {
		name  string
		spec  func(NodeFacts, ...string) (Spec, error)
		node  NodeFacts
		extra []string
		want  Spec
	}{{
		name: "server emei", spec: EtcdServer, node: emei,
		want: Spec{CommonName: "emei", DNSNames: []string{"emei", "localhost"},
			IPs: ips("10.250.0.12", "127.0.0.1", "::1"), ExtKeyUsage: bothAuth},
	}, {
		name: "peer emei", spec: EtcdPeer, node: emei,
		want: Spec{CommonName: "emei", DNSNames: []string{"emei", "localhost"},
			IPs: ips("10.250.0.12", "127.0.0.1", "::1"), ExtKeyUsage: bothAuth},
	}, {
		// Sorted like kubeadm sorts: localhost before wudang.
		name: "server wudang", spec: EtcdServer, node: wudang,
		want: Spec{CommonName: "wudang", DNSNames: []string{"localhost", "wudang"},
			IPs: ips("10.250.0.13", "127.0.0.1", "::1"), ExtKeyUsage: bothAuth},
	}, {
		name: "server with serverCertSANs", spec: EtcdServer, node: emei,
		extra: []string{"etcd.lab", "10.250.0.20", "127.0.0.1", "emei"},
		want: Spec{CommonName: "emei", DNSNames: []string{"emei", "etcd.lab", "localhost"},
			IPs: ips("10.250.0.12", "127.0.0.1", "::1", "10.250.0.20"), ExtKeyUsage: bothAuth},
	}, {
		name: "peer with peerCertSANs", spec: EtcdPeer, node: emei, extra: []string{"10.250.0.21"},
		want: Spec{CommonName: "emei", DNSNames: []string{"emei", "localhost"},
			IPs: ips("10.250.0.12", "127.0.0.1", "::1", "10.250.0.21"), ExtKeyUsage: bothAuth},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.spec(tt.node, tt.extra...)
			if err != nil {
				t.Fatal(err)
			}
			checkSpec(t, got, tt.want)
		})
	}
	if _, err := EtcdPeer(emei, "not a name"); err == nil || !strings.Contains(err.Error(), "peerCertSANs") {
		t.Errorf("EtcdPeer with a bad SAN: err = %v", err)
	}
	if _, err := EtcdServer(NodeFacts{Name: "emei"}); err == nil {
		t.Error("EtcdServer without an IP: no error")
	}
}

func TestClientSpecs(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want Spec
	}{
		{"apiserver-kubelet-client", APIServerKubeletClient(), Spec{CommonName: "kube-apiserver-kubelet-client", ExtKeyUsage: clientAuth}},
		{"front-proxy-client", FrontProxyClient(), Spec{CommonName: "front-proxy-client", ExtKeyUsage: clientAuth}},
		{"apiserver-etcd-client", APIServerEtcdClient(), Spec{CommonName: "kube-apiserver-etcd-client", ExtKeyUsage: clientAuth}},
		{"etcd/healthcheck-client", EtcdHealthcheckClient(), Spec{CommonName: "kube-etcd-healthcheck-client", ExtKeyUsage: clientAuth}},
		{"admin.conf", Admin(), Spec{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins"}, ExtKeyUsage: clientAuth}},
		{"controller-manager.conf", ControllerManager(), Spec{CommonName: "system:kube-controller-manager", ExtKeyUsage: clientAuth}},
		{"scheduler.conf", Scheduler(), Spec{CommonName: "system:kube-scheduler", ExtKeyUsage: clientAuth}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkSpec(t, tt.spec, tt.want)
			if len(tt.spec.DNSNames)+len(tt.spec.IPs) != 0 {
				t.Errorf("client certificate with SANs: %v %v", tt.spec.DNSNames, tt.spec.IPs)
			}
		})
	}
	// Callers may edit what they get without changing the next caller's spec.
	a := Admin()
	a.Organization[0] = "system:masters"
	a.ExtKeyUsage[0] = x509.ExtKeyUsageServerAuth
	checkSpec(t, Admin(), Spec{CommonName: "kubernetes-admin", Organization: []string{"kubeadm:cluster-admins"}, ExtKeyUsage: clientAuth})
}

func TestDNSValidation(t *testing.T) {
	for s, want := range map[string]bool{
		"k8s-api.lab": true, "a": true, "1.2.3": true, "x--y.z": true,
		"": false, "-a": false, "a-": false, "a..b": false, "A.lab": false, "a_b": false, ".a": false,
		strings.Repeat("a", 254): false, strings.Repeat("a", 70): true,
	} {
		if got := isDNS1123Subdomain(s); got != want {
			t.Errorf("isDNS1123Subdomain(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{"*.lab": true, "*.a.b": true, "*": false, "*.": false, "a.*.b": false, "**.a": false} {
		if got := isWildcardDNS1123Subdomain(s); got != want {
			t.Errorf("isWildcardDNS1123Subdomain(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]string{"010.001.002.003": "10.1.2.3", "10.0.0.1": "10.0.0.1", "::1": "::1",
		"256.0.0.1": "<nil>", "1.2.3": "<nil>", "1.2.3.4.5": "<nil>", "1.2.3.-4": "<nil>", "0001.2.3.4": "<nil>"} {
		if got := parseIPSloppy(s).String(); got != want {
			t.Errorf("parseIPSloppy(%q) = %s, want %s", s, got, want)
		}
	}
}
