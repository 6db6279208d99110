package testkit

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haadm/haadm/certs"
)

func TestTestdata(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if got := Testdata(t, KubeadmPKI+"/README.md"); !strings.Contains(string(got), "kubeadm v1.36.3") {
		t.Errorf("README: %.60q", got)
	}
	if _, err := ReadTestdata("no/such/file"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLab(t *testing.T) {
	t.Parallel()
	nodes := LabNodes(t)
	if len(nodes) != 3 {
		t.Fatalf("%d nodes", len(nodes))
	}
	for _, n := range nodes {
		if n.Status.Addresses[0].Address != LabIPs()[n.Name] || n.Status.NodeInfo.KubeletVersion != LabVersion {
			t.Errorf("%s: %+v", n.Name, n.Status.Addresses)
		}
	}
	cm := LabConfigMap(t, "kubeadm-config")
	if cm.Namespace != "kube-system" || !strings.Contains(cm.Data["ClusterConfiguration"], "kubernetesVersion: "+LabVersion) {
		t.Errorf("kubeadm-config: %s/%s %v", cm.Namespace, cm.Name, cm.Data)
	}
	files, err := LabFiles("shaolin")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/pki/etcd/ca.crt"} {
		if len(files[p]) == 0 {
			t.Errorf("shaolin: %s missing", p)
		}
	}
	if _, err := LabFiles("nowhere"); err == nil {
		t.Error("a node that was not captured")
	}
}

func TestNet(t *testing.T) {
	t.Parallel()
	n := NewNet()
	serve := func(name string) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				io.WriteString(c, name)
				c.Close()
			}
		}()
		return l.Addr().String()
	}
	n.Route(ShaolinIP+":6443", serve("shaolin"))
	n.Route("127.0.0.1:6444", serve("anyone's loopback"))
	n.RouteFrom("emei", "127.0.0.1:6444", serve("emei's loopback"))
	read := func(dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string) (string, error) {
		c, err := dial(t.Context(), "tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		return string(b), err
	}
	for _, tt := range []struct {
		from, addr, want string
	}{
		{"emei", ShaolinIP + ":6443", "shaolin"},
		{"", ShaolinIP + ":6443", "shaolin"},
		{"emei", "127.0.0.1:6444", "emei's loopback"},
		{"wudang", "127.0.0.1:6444", "anyone's loopback"},
	} {
		if got, err := read(n.Dialer(tt.from), tt.addr); got != tt.want || err != nil {
			t.Errorf("from %q to %s: %q %v, want %q", tt.from, tt.addr, got, err, tt.want)
		}
	}
	if _, err := read(n.Dial, EmeiIP+":6443"); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unrouted: %v", err)
	}

	n.Kill(ShaolinIP)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := n.Dialer("emei")(ctx, "tcp", ShaolinIP+":22"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("killed: %v", err)
	}
}

func TestPKI(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, ca, err := NewCA("etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := certs.LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c := loaded.Cert
	if !c.IsCA || c.Subject.CommonName != "etcd-ca" || len(c.DNSNames) != 1 || c.DNSNames[0] != "etcd-ca" || !c.Equal(ca.Cert) {
		t.Errorf("CA: %+v", c.Subject)
	}
	if k, ok := ca.Key.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("CA key %T", ca.Key)
	}
	if years := c.NotAfter.Sub(c.NotBefore).Hours() / 24 / 365; years < 9.99 || years > 10.01 {
		t.Errorf("CA valid %.2f years", years)
	}

	spec := certs.Spec{CommonName: "kube-etcd", DNSNames: []string{"localhost", "shaolin"}, IPs: []net.IP{net.ParseIP(ShaolinIP).To4()},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	now := time.Now()
	crt, key, err := IssueLeaf(ca, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "shaolin"}); err != nil {
		t.Error(err)
	}
	if got := pair.Leaf.NotAfter.Sub(now); got < certs.DefaultValidity-time.Second || got > certs.DefaultValidity {
		t.Errorf("leaf valid for %v after now", got)
	}

	notAfter := time.Date(2027, 11, 22, 2, 38, 14, 0, time.UTC)
	kubeadm := KubeadmCA(t)
	serving := ServingCert(t, kubeadm, spec, notAfter)
	if !serving.Leaf.NotAfter.Equal(notAfter) || serving.Leaf.CheckSignatureFrom(kubeadm.Cert) != nil {
		t.Errorf("serving certificate: until %v, issuer %v", serving.Leaf.NotAfter, serving.Leaf.Issuer)
	}
}

func TestAPIServer(t *testing.T) {
	t.Parallel()
	_, _, ca, err := NewCA("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	n := NewNet()
	api := &APIServer{Version: LabVersion}
	n.ServeTLS(t, ShaolinIP+":6443", ServingCert(t, ca, certs.Spec{CommonName: "kube-apiserver", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, time.Now().Add(time.Hour)), api)
	client := &http.Client{Transport: &http.Transport{
		DialContext:     n.Dialer("emei"),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	get := func(path string) (int, string) {
		resp, err := client.Get("https://" + ShaolinIP + ":6443" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		readyz  int
		path    string
		code    int
		bodyHas string
	}{
		{0, "/readyz", 200, "ok"},
		{500, "/readyz", 500, "[-]etcd failed"},
		{401, "/readyz", 401, `"kind":"Status"`},
		{200, "/version", 200, `"gitVersion":"v1.36.3"`},
		{200, "/livez", 404, ""},
	} {
		api.SetReadyz(tt.readyz)
		if code, body := get(tt.path); code != tt.code || !strings.Contains(body, tt.bodyHas) {
			t.Errorf("readyz %d, GET %s: %d %q", tt.readyz, tt.path, code, body)
		}
	}
	api.SetReady(false)
	if code, _ := get("/readyz"); code != 500 {
		t.Errorf("SetReady(false): %d", code)
	}
}
