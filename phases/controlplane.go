package phases

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/manifests"
)

// ControlPlane gives each new master the first master's static pods, tweaked
// for the node (advertise address, probes, local etcd), and the kubeconfigs
// the controller-manager, the scheduler and an admin on that node use; then
// waits until its apiserver answers /readyz. One node at a time.
type ControlPlane struct{}

func (ControlPlane) Name() string { return "control-plane" }
func (ControlPlane) Description() string {
	return "static pods and kubeconfigs for each new master; wait for its apiserver"
}

const apiserverTimeout = 4 * time.Minute

// cpFile is one file a new master needs.
type cpFile struct {
	path string
	data []byte // rendered content for manifests
	kc   *kubeconfigWant
}

// kubeconfigWant describes a kubeconfig by meaning, not bytes: a fresh key
// makes every rendering different, so "done" means right server, right
// identity, signed by the cluster CA.
type kubeconfigWant struct {
	server string
	spec   certs.Spec
}

func (ControlPlane) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	todo, err := controlPlaneTodo(ctx, c)
	if err != nil {
		return false, "", err
	}
	return len(todo) == 0, strings.Join(todo, ", "), nil
}

func controlPlaneTodo(ctx context.Context, c *Cluster) ([]string, error) {
	p, err := loadPKI(ctx, c)
	if err != nil {
		return nil, err
	}
	var todo []string
	for _, n := range c.New {
		files, err := controlPlaneFiles(ctx, c, n)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			ok, err := cpFileDone(ctx, c, n.Name, f, p.ca.Cert)
			if err != nil {
				return nil, err
			}
			if !ok {
				todo = append(todo, n.Name+":"+f.path)
			}
		}
	}
	return todo, nil
}

func controlPlaneFiles(ctx context.Context, c *Cluster, n NodeInfo) ([]cpFile, error) {
	read := func(name string) ([]byte, error) {
		b, ok, err := c.readFile(ctx, c.First.Name, manifestsDir+"/"+name)
		if err == nil && !ok {
			err = fmt.Errorf("node %s: %s/%s is missing", c.First.Name, manifestsDir, name)
		}
		return b, err
	}
	api, err := read("kube-apiserver.yaml")
	if err != nil {
		return nil, err
	}
	cm, err := read("kube-controller-manager.yaml")
	if err != nil {
		return nil, err
	}
	sched, err := read("kube-scheduler.yaml")
	if err != nil {
		return nil, err
	}
	nd := manifests.Node{Name: n.Name, IP: n.IP}
	apiOut, err := manifests.APIServer(api, nd)
	if err != nil {
		return nil, fmt.Errorf("node %s: render kube-apiserver.yaml: %w", n.Name, err)
	}
	cmOut, err := manifests.ControllerManager(cm)
	if err != nil {
		return nil, fmt.Errorf("node %s: render kube-controller-manager.yaml: %w", n.Name, err)
	}
	schedOut, err := manifests.Scheduler(sched)
	if err != nil {
		return nil, fmt.Errorf("node %s: render kube-scheduler.yaml: %w", n.Name, err)
	}
	local := localAPIServer(n)
	// Kubeconfigs first: the static pods read them as they start.
	return []cpFile{
		{path: "/etc/kubernetes/controller-manager.conf", kc: &kubeconfigWant{server: local, spec: certs.ControllerManager()}},
		{path: "/etc/kubernetes/scheduler.conf", kc: &kubeconfigWant{server: local, spec: certs.Scheduler()}},
		{path: "/etc/kubernetes/admin.conf", kc: &kubeconfigWant{server: c.EndpointURL(), spec: certs.Admin()}},
		{path: manifestsDir + "/kube-apiserver.yaml", data: apiOut},
		{path: manifestsDir + "/kube-controller-manager.yaml", data: cmOut},
		{path: manifestsDir + "/kube-scheduler.yaml", data: schedOut},
	}, nil
}

func localAPIServer(n NodeInfo) string { return "https://" + net.JoinHostPort(n.IP, "6443") }

func cpFileDone(ctx context.Context, c *Cluster, nodeName string, f cpFile, ca *x509.Certificate) (bool, error) {
	if f.kc == nil {
		return c.fileIs(ctx, nodeName, f.path, f.data)
	}
	have, ok, err := c.readFile(ctx, nodeName, f.path)
	if err != nil || !ok {
		return false, err
	}
	return kubeconfigMatches(have, *f.kc, ca), nil
}

// kubeconfigMatches: right server, a client certificate with the right
// identity signed by ca and not about to expire.
func kubeconfigMatches(kc []byte, want kubeconfigWant, ca *x509.Certificate) bool {
	server, err := certs.Server(kc)
	if err != nil || server != want.server {
		return false
	}
	crtPEM, err := certs.ClientCertOf(kc)
	if err != nil {
		return false
	}
	crt, err := certs.ParseCertPEM(crtPEM)
	if err != nil {
		return false
	}
	ok, _ := certs.Matches(crt, want.spec, ca, time.Now(), certRenewMargin)
	return ok
}

func (ControlPlane) Apply(ctx context.Context, c *Cluster) error {
	p, err := loadPKI(ctx, c)
	if err != nil {
		return err
	}
	for _, n := range c.New {
		files, err := controlPlaneFiles(ctx, c, n)
		if err != nil {
			return err
		}
		for _, f := range files {
			done, err := cpFileDone(ctx, c, n.Name, f, p.ca.Cert)
			if err != nil {
				return err
			}
			if done {
				continue
			}
			data := f.data
			mode := fs.FileMode(0o600)
			if f.kc != nil {
				if data, err = renderKubeconfig(c, p.ca, p.caPEM, *f.kc); err != nil {
					return fmt.Errorf("node %s: %s: %w", n.Name, f.path, err)
				}
			}
			if _, err := c.ensureFile(ctx, "control-plane", n.Name, f.path, data, mode); err != nil {
				return err
			}
		}
		if err := c.wait(ctx, "control-plane", n.Name, "kube-apiserver ready", apiserverTimeout, func(ctx context.Context) (bool, string, error) {
			return c.readyz(ctx, n.Name, n.IP+":6443", n.IP)
		}); err != nil {
			return fmt.Errorf("%w\n(check the kube-apiserver container on %s: crictl ps -a --name kube-apiserver)", err, n.Name)
		}
	}
	return nil
}

func renderKubeconfig(c *Cluster, ca *certs.CA, caPEM []byte, want kubeconfigWant) ([]byte, error) {
	key, err := certs.NewKey(keyAlgorithm(ca.Cert))
	if err != nil {
		return nil, err
	}
	nb, validity := certs.KubeadmWindow(time.Now(), certs.DefaultValidity)
	crt, err := certs.Issue(ca, want.spec, key, nb, validity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := certs.EncodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return certs.RenderKubeconfig(c.Facts.ClusterName, want.server, caPEM, want.spec.CommonName, crt, keyPEM)
}

// readyz asks an apiserver (or the LB) for /readyz, connecting from node via
// SSH. The certificate is verified against the cluster CA for serverName,
// so this also proves the SANs are right.
func (c *Cluster) readyz(ctx context.Context, via, addr, serverName string) (bool, string, error) {
	p, err := loadPKI(ctx, c)
	if err != nil {
		return false, "", err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	h := c.Host(via)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return h.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(serverName, portOf(addr))+"/readyz", nil)
	if err != nil {
		return false, "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("/readyz %d: %s", resp.StatusCode, strings.TrimSpace(string(body))), nil
	}
	return true, "", nil
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return strconv.Itoa(443)
	}
	return p
}
