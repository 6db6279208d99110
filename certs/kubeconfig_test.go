package certs

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// renderAdmin renders an admin.conf for a test CA, with real credentials.
func renderAdmin(t *testing.T, server string) []byte {
	t.Helper()
	ca := newTestCA(t, "kubernetes", ECDSAP256)
	key := mustKey(t, ECDSAP256)
	certPEM, err := Issue(ca, Admin(), key, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := EncodeKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderKubeconfig("kubernetes", server, EncodeCertPEM(ca.Cert), AdminCN, certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRenderKubeconfig(t *testing.T) {
	out := renderAdmin(t, "https://k8s-api.lab:6443")
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "kubernetes-admin@kubernetes" {
		t.Errorf("current context %q", cfg.CurrentContext)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || ctx.Cluster != "kubernetes" || ctx.AuthInfo != "kubernetes-admin" {
		t.Fatalf("context %+v", ctx)
	}
	user := cfg.AuthInfos["kubernetes-admin"]
	if user == nil || user.ClientCertificate != "" || user.ClientKey != "" {
		t.Fatalf("user %+v: want embedded data only", user)
	}
	cert, err := ParseCertPEM(user.ClientCertificateData)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKeyPEM(user.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkKeyPair(cert, key); err != nil {
		t.Error(err)
	}
	caCert, err := ParseCertPEM(cfg.Clusters["kubernetes"].CertificateAuthorityData)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Matches(cert, Admin(), caCert, t0, 0); !ok {
		t.Error(err)
	}
	// A client built from it must accept it, the way kubectl would.
	if _, err := clientcmd.RESTConfigFromKubeConfig(out); err != nil {
		t.Errorf("RESTConfigFromKubeConfig: %v", err)
	}
	if got, err := Server(out); err != nil || got != "https://k8s-api.lab:6443" {
		t.Errorf("Server = %q, %v", got, err)
	}
}

func TestRenderKubeconfigErrors(t *testing.T) {
	d := []byte("x")
	for _, tt := range []struct {
		name, cluster, server, user string
		ca, cert, key               []byte
	}{
		{"no cluster name", "", "https://a:6443", "u", d, d, d},
		{"no user", "kubernetes", "https://a:6443", "", d, d, d},
		{"http", "kubernetes", "http://a:6443", "u", d, d, d},
		{"no scheme", "kubernetes", "10.250.0.10:6443", "u", d, d, d},
		{"no CA", "kubernetes", "https://a:6443", "u", nil, d, d},
		{"no key", "kubernetes", "https://a:6443", "u", d, d, nil},
	} {
		if _, err := RenderKubeconfig(tt.cluster, tt.server, tt.ca, tt.user, tt.cert, tt.key); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestSetServerIsIdempotent(t *testing.T) {
	in := renderAdmin(t, "https://10.250.0.11:6443")
	out, changed, err := SetServer(in, "https://k8s-api.lab:6443")
	if err != nil || !changed {
		t.Fatalf("first SetServer: changed=%v err=%v", changed, err)
	}
	if got, _ := Server(out); got != "https://k8s-api.lab:6443" {
		t.Errorf("Server after SetServer = %q", got)
	}
	// Only the server line may differ.
	if want := bytes.Replace(in, []byte("https://10.250.0.11:6443"), []byte("https://k8s-api.lab:6443"), 1); !bytes.Equal(out, want) {
		t.Errorf("SetServer changed more than the server:\n%s\nwant\n%s", out, want)
	}
	again, changed, err := SetServer(out, "https://k8s-api.lab:6443")
	if err != nil || changed {
		t.Fatalf("second SetServer: changed=%v err=%v", changed, err)
	}
	if !bytes.Equal(again, out) {
		t.Error("second SetServer rewrote the file")
	}
}

// kubeletConf is a master's kubelet.conf after TLS bootstrap: credentials
// are files the kubelet rotates, not embedded data.
const kubeletConf = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://10.250.0.11:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: system:node:shaolin
  name: system:node:shaolin@kubernetes
current-context: system:node:shaolin@kubernetes
kind: Config
users:
- name: system:node:shaolin
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
`

func TestSetServerKeepsFileReferences(t *testing.T) {
	out, changed, err := SetServer([]byte(kubeletConf), "https://127.0.0.1:6443")
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	want := strings.Replace(kubeletConf, "https://10.250.0.11:6443", "https://127.0.0.1:6443", 1)
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.AuthInfos["system:node:shaolin"]; u.ClientCertificate != "/var/lib/kubelet/pki/kubelet-client-current.pem" || u.ClientKey != u.ClientCertificate {
		t.Errorf("credentials became %+v", u)
	}
}

func TestSetServerChangesEveryCluster(t *testing.T) {
	in := `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://10.250.0.11:6443"}
- name: b
  cluster: {server: "https://10.250.0.12:6443"}
contexts:
- name: x
  context: {cluster: b, user: u}
current-context: x
users:
- name: u
  user: {token: t}
`
	out, changed, err := SetServer([]byte(in), "https://k8s-api.lab:6443")
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range cfg.Clusters {
		if c.Server != "https://k8s-api.lab:6443" {
			t.Errorf("cluster %s still points at %s", name, c.Server)
		}
	}
	if cfg.AuthInfos["u"].Token != "t" {
		t.Error("token lost")
	}
}

func TestKubeconfigErrors(t *testing.T) {
	if _, _, err := SetServer([]byte(kubeletConf), "k8s-api.lab:6443"); err == nil {
		t.Error("SetServer accepted a server without scheme")
	}
	if _, _, err := SetServer([]byte("apiVersion: v1\nkind: Config\n"), "https://a:6443"); err == nil {
		t.Error("SetServer accepted a kubeconfig without clusters")
	}
	if _, _, err := SetServer([]byte("clusters: ["), "https://a:6443"); err == nil {
		t.Error("SetServer accepted broken YAML")
	}
	noContext := strings.Replace(kubeletConf, "current-context: system:node:shaolin@kubernetes", "current-context: gone", 1)
	if _, err := Server([]byte(noContext)); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("Server with a missing context: %v", err)
	}
	noCluster := strings.Replace(kubeletConf, "    cluster: kubernetes", "    cluster: elsewhere", 1)
	if _, err := Server([]byte(noCluster)); err == nil || !strings.Contains(err.Error(), "elsewhere") {
		t.Errorf("Server with a missing cluster: %v", err)
	}
}
