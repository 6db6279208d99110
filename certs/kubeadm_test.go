package certs

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// kubeadmPKI holds what a real kubeadm v1.36.3 wrote for shaolin from
// kubeadm-config.yaml in the same folder (see its README.md).
const kubeadmPKI = "../testdata/v1.36/kubeadm-pki"

// The facts kubeadm-config.yaml describes, in haadm's terms: the
// controlPlaneEndpoint host is the LB name.
var (
	shaolin        = NodeFacts{Name: "shaolin", IP: net.ParseIP("10.250.0.11")}
	shaolinCluster = ClusterFacts{
		DNSDomain:     "cluster.local",
		ServiceSubnet: "10.96.0.0/12,fd00:10:96::/112",
		LBNames:       []string{"k8s-api.lab"},
		ExtraSANs:     []string{"10.250.0.10", "10.250.0.11", "k8s-api.lab", "api.example.com", "*.k8s.example.com", "fd00::10"},
	}
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(kubeadmPKI, name))
	if err != nil {
		t.Fatalf("kubeadm reference output missing (regenerate it as %s/README.md says): %v", kubeadmPKI, err)
	}
	return data
}

func fixtureCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	cert, err := ParseCertPEM(readFixture(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cert
}

func TestSpecsEqualKubeadmOutput(t *testing.T) {
	apiserver, err := APIServer(shaolin, shaolinCluster)
	if err != nil {
		t.Fatal(err)
	}
	etcdServer, err := EtcdServer(shaolin, "etcd.lab", "10.250.0.20")
	if err != nil {
		t.Fatal(err)
	}
	etcdPeer, err := EtcdPeer(shaolin, "10.250.0.21")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		file, ca string
		spec     Spec
	}{
		{"apiserver.crt", "ca.crt", apiserver},
		{"apiserver-kubelet-client.crt", "ca.crt", APIServerKubeletClient()},
		{"front-proxy-client.crt", "front-proxy-ca.crt", FrontProxyClient()},
		{"apiserver-etcd-client.crt", "etcd/ca.crt", APIServerEtcdClient()},
		{"etcd/server.crt", "etcd/ca.crt", etcdServer},
		{"etcd/peer.crt", "etcd/ca.crt", etcdPeer},
		{"etcd/healthcheck-client.crt", "etcd/ca.crt", EtcdHealthcheckClient()},
	} {
		t.Run(tt.file, func(t *testing.T) {
			cert := fixtureCert(t, tt.file)
			checkSpec(t, SpecOf(cert), tt.spec)
			// SpecOf sorts; kubeadm's own order must be the same.
			if !slices.Equal(cert.DNSNames, tt.spec.DNSNames) || !slices.Equal(ipStrings(cert.IPAddresses), ipStrings(tt.spec.IPs)) {
				t.Errorf("SAN order: kubeadm %q %q, spec %q %q", cert.DNSNames, ipStrings(cert.IPAddresses), tt.spec.DNSNames, ipStrings(tt.spec.IPs))
			}
			checkLikeKubeadm(t, cert)
			if _, total := KubeadmWindow(time.Time{}, DefaultValidity); cert.NotAfter.Sub(cert.NotBefore) != total {
				t.Errorf("kubeadm's validity %v, KubeadmWindow's %v", cert.NotAfter.Sub(cert.NotBefore), total)
			}
			if ok, err := Matches(cert, tt.spec, fixtureCert(t, tt.ca), cert.NotBefore.Add(time.Minute), 0); !ok {
				t.Error(err)
			}
		})
	}
}

// checkLikeKubeadm pins the properties Issue copies from kubeadm.
func checkLikeKubeadm(t *testing.T, cert *x509.Certificate) {
	t.Helper()
	if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; cert.KeyUsage != want {
		t.Errorf("kubeadm's KeyUsage is %b, Issue's is %b", cert.KeyUsage, want)
	}
	if !cert.BasicConstraintsValid || cert.IsCA || len(cert.SubjectKeyId) != 0 || len(cert.AuthorityKeyId) == 0 {
		t.Errorf("kubeadm leaf: constraints valid=%v CA=%v SKID=%x AKID=%x", cert.BasicConstraintsValid, cert.IsCA, cert.SubjectKeyId, cert.AuthorityKeyId)
	}
}

func TestKubeconfigsEqualKubeadmOutput(t *testing.T) {
	for _, tt := range []struct {
		file, server string
		spec         Spec
	}{
		{"kubeconfig/admin.conf", "https://k8s-api.lab:6443", Admin()},
		{"kubeconfig/controller-manager.conf", "https://10.250.0.11:6443", ControllerManager()},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := readFixture(t, tt.file)
			if got, err := Server(data); err != nil || got != tt.server {
				t.Fatalf("Server = %q, %v; want %q", got, err, tt.server)
			}
			cfg, err := clientcmd.Load(data)
			if err != nil {
				t.Fatal(err)
			}
			user := cfg.AuthInfos[tt.spec.CommonName]
			if user == nil {
				t.Fatalf("no user %q in %s", tt.spec.CommonName, tt.file)
			}
			cert, err := ParseCertPEM(user.ClientCertificateData)
			if err != nil {
				t.Fatal(err)
			}
			checkSpec(t, SpecOf(cert), tt.spec)
			checkLikeKubeadm(t, cert)
			// The quirk KubeadmWindow's comment warns about.
			if caCert := fixtureCert(t, "ca.crt"); !cert.NotBefore.Equal(caCert.NotBefore) {
				t.Errorf("kubeconfig client certificate starts %s, the CA %s", cert.NotBefore, caCert.NotBefore)
			}

			// Rendering the same inputs must give kubeadm's file byte for byte.
			caPEM := cfg.Clusters["kubernetes"].CertificateAuthorityData
			out, err := RenderKubeconfig("kubernetes", tt.server, caPEM, tt.spec.CommonName, user.ClientCertificateData, user.ClientKeyData)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Errorf("RenderKubeconfig differs from kubeadm's %s:\n%s", tt.file, out)
			}
			if _, changed, err := SetServer(data, tt.server); err != nil || changed {
				t.Errorf("SetServer to the same server: changed=%v err=%v", changed, err)
			}
		})
	}
}

// TestIssueWithKubeadmCA signs emei's certificates with the CA exactly as
// kubeadm stored it, and checks them the way a TLS peer would.
func TestIssueWithKubeadmCA(t *testing.T) {
	ca, err := LoadCA(readFixture(t, "ca.crt"), readFixture(t, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	alg := KeyAlgorithmOf(ca.Cert.PublicKey)
	if alg != DefaultKeyAlgorithm {
		t.Errorf("kubeadm's default CA key is %q, want %q", alg, DefaultKeyAlgorithm)
	}
	spec, err := APIServer(emei, lab)
	if err != nil {
		t.Fatal(err)
	}
	now := ca.Cert.NotBefore.Add(time.Hour)
	notBefore, validity := KubeadmWindow(now, DefaultValidity)
	certPEM, err := Issue(ca, spec, mustKey(t, alg), notBefore, validity)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(fixtureCert(t, "ca.crt"))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "k8s-api.lab", CurrentTime: now, KeyUsages: serverAuth}); err != nil {
		t.Fatal(err)
	}
	if ok, err := Matches(cert, spec, ca.Cert, now, 300*24*time.Hour); !ok {
		t.Error(err)
	}
	// Mismatched CA files (etcd/ca.crt with ca.key) are caught on load.
	if _, err := LoadCA(readFixture(t, "etcd/ca.crt"), readFixture(t, "ca.key")); err == nil {
		t.Error("LoadCA accepted etcd/ca.crt with ca.key")
	}
	// The shaolin certificate kubeadm made is not valid for emei.
	if missing := Missing(fixtureCert(t, "apiserver.crt"), spec); !slices.Equal(missing, []string{"DNS:emei", "IP:10.250.0.12", "IP:10.250.0.100"}) {
		t.Errorf("Missing(shaolin's cert, emei) = %q", missing)
	}
}
