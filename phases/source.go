package phases

import (
	"context"
	"fmt"
	"sync"

	"github.com/haadm/haadm/certs"
	"github.com/haadm/haadm/controlplane"
	"github.com/haadm/haadm/etcdm"
	"github.com/haadm/haadm/node"
)

const (
	pkiDir       = controlplane.PKIDir
	manifestsDir = controlplane.ManifestsDir
)

// sharedPKIFiles are copied byte for byte from the first master: the CAs
// sign for every master, and sa.key must be the same everywhere or a token
// minted by one apiserver is refused by another.
func sharedPKIFiles() []string {
	return []string{"ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key"}
}

// staticPods are the manifests a master runs, by file name.
func staticPods() []string {
	return []string{"etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"}
}

// source is what every new master is made from: the first master's shared
// PKI and static pods. None of it changes during a run, so it is read once,
// in one round trip, whichever phase asks first.
type source struct {
	shared        map[string]node.File // by name under pki
	pods          map[string][]byte    // by file name
	ca            *certs.CA
	frontProxyCA  *certs.CA
	etcdCA        *certs.CA
	caPEM         []byte
	kubeletClient certs.Spec
}

type sourceOnce struct {
	once sync.Once
	src  *source
	err  error
}

// sourceFiles returns the first master's files, reading them on first use.
func (c *Cluster) sourceFiles(ctx context.Context) (*source, error) {
	c.srcOnce.once.Do(func() { c.srcOnce.src, c.srcOnce.err = readSource(ctx, c.Host(c.First.Name), c.First.Name) })
	return c.srcOnce.src, c.srcOnce.err
}

// sourcePaths are the first master's files every new master is made from,
// and the credentials haadm reaches etcd with.
func sourcePaths() []string {
	var paths []string
	for _, f := range sharedPKIFiles() {
		paths = append(paths, pkiDir+"/"+f)
	}
	for _, f := range staticPods() {
		paths = append(paths, manifestsDir+"/"+f)
	}
	return append(append(paths, pkiDir+"/apiserver-kubelet-client.crt"), etcdm.ClientCredentialPaths()...)
}

func readSource(ctx context.Context, h node.Host, first string) (*source, error) {
	if h == nil {
		return nil, fmt.Errorf("node %s: not connected", first)
	}
	files, err := h.ReadFiles(ctx, sourcePaths())
	if err != nil {
		return nil, err
	}
	s := &source{shared: map[string]node.File{}, pods: map[string][]byte{}}
	for _, f := range sharedPKIFiles() {
		got, ok := files[pkiDir+"/"+f]
		if !ok {
			return nil, fmt.Errorf("node %s: %s/%s is missing: haadm copies the cluster's CAs from the first master", first, pkiDir, f)
		}
		s.shared[f] = got
	}
	for _, f := range staticPods() {
		got, ok := files[manifestsDir+"/"+f]
		if !ok {
			return nil, fmt.Errorf("node %s: %s/%s is missing: haadm copies the first master's static pods", first, manifestsDir, f)
		}
		s.pods[f] = got.Data
	}
	load := func(name string) (*certs.CA, error) {
		ca, err := certs.LoadCA(s.shared[name+".crt"].Data, s.shared[name+".key"].Data)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s/%s: %w", first, pkiDir, name, err)
		}
		return ca, nil
	}
	if s.ca, err = load("ca"); err != nil {
		return nil, err
	}
	if s.frontProxyCA, err = load("front-proxy-ca"); err != nil {
		return nil, err
	}
	if s.etcdCA, err = load("etcd/ca"); err != nil {
		return nil, err
	}
	s.caPEM = s.shared["ca.crt"].Data
	// Clusters made by older kubeadm put this identity in a group; copying
	// its subject keeps the new masters' access to kubelets (logs, exec).
	s.kubeletClient = certs.APIServerKubeletClient()
	if f, ok := files[pkiDir+"/apiserver-kubelet-client.crt"]; ok {
		if cert, err := certs.ParseCertPEM(f.Data); err == nil {
			s.kubeletClient = certs.SpecOf(cert)
		}
	}
	return s, nil
}
