package phases

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/haadm/haadm/certs"
)

// Certs gives every new master the cluster's shared CA, service-account and
// front-proxy material (byte for byte from the first master) and its own
// apiserver and etcd certificates with the right SANs, and re-issues the
// first master's apiserver certificate so it covers the load balancer too.
// kube-apiserver reloads its serving certificate from disk: no restart.
type Certs struct{}

func (Certs) Name() string { return "certs" }
func (Certs) Description() string {
	return "shared CAs to the new masters; per-node apiserver/etcd certs with node, LB and service SANs"
}

// certRenewMargin: a certificate that expires sooner is re-issued rather than copied forward.
const certRenewMargin = 30 * 24 * time.Hour

func sharedPKIFiles() []string {
	return []string{"ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key"}
}

// certTask is one certificate (or shared file) a node lacks.
type certTask struct {
	node   string
	name   string // path under pki without extension, e.g. "etcd/server"
	shared []byte // for shared files: the content to copy
	ca     *certs.CA
	spec   certs.Spec
	why    string
}

func (Certs) Check(ctx context.Context, c *Cluster) (bool, string, error) {
	tasks, err := certTasks(ctx, c)
	if err != nil {
		return false, "", err
	}
	return len(tasks) == 0, describeCertTasks(tasks), nil
}

func (Certs) Apply(ctx context.Context, c *Cluster) error {
	tasks, err := certTasks(ctx, c)
	if err != nil {
		return err
	}
	byNode := map[string][]certTask{}
	var order []string
	for _, t := range tasks {
		if _, ok := byNode[t.node]; !ok {
			order = append(order, t.node)
		}
		byNode[t.node] = append(byNode[t.node], t)
	}
	return forEach(len(order), func(i int) error {
		for _, t := range byNode[order[i]] {
			if t.shared != nil {
				if _, err := c.ensureFile(ctx, "certs", t.node, pkiDir+"/"+t.name, t.shared, keyMode(t.name)); err != nil {
					return err
				}
				continue
			}
			if err := issueOnNode(ctx, c, t); err != nil {
				return err
			}
		}
		return nil
	})
}

func keyMode(name string) fs.FileMode {
	if strings.HasSuffix(name, ".key") {
		return 0o600
	}
	return 0o644
}

func describeCertTasks(tasks []certTask) string {
	var s []string
	for _, t := range tasks {
		s = append(s, t.node+":"+t.name+" ("+t.why+")")
	}
	return strings.Join(s, ", ")
}

// pkiOf loads the first master's CAs.
type clusterPKI struct {
	ca, frontProxyCA, etcdCA *certs.CA
	caPEM                    []byte
	kubeletClient            certs.Spec
}

// loadPKI reads the first master's CAs once per run: they never change
// during a promotion, and every phase needs them.
func loadPKI(ctx context.Context, c *Cluster) (*clusterPKI, error) {
	if c.pki != nil {
		return c.pki, nil
	}
	load := func(name string) (*certs.CA, error) {
		crt, ok, err := c.readFile(ctx, c.First.Name, pkiDir+"/"+name+".crt")
		if err != nil || !ok {
			return nil, fmt.Errorf("node %s: read %s/%s.crt: %v", c.First.Name, pkiDir, name, err)
		}
		key, ok, err := c.readFile(ctx, c.First.Name, pkiDir+"/"+name+".key")
		if err != nil || !ok {
			return nil, fmt.Errorf("node %s: read %s/%s.key: %v (haadm needs the CA keys to sign the new masters' certificates)", c.First.Name, pkiDir, name, err)
		}
		ca, err := certs.LoadCA(crt, key)
		if err != nil {
			return nil, fmt.Errorf("node %s: %s: %w", c.First.Name, name, err)
		}
		return ca, nil
	}
	p := &clusterPKI{}
	var err error
	if p.ca, err = load("ca"); err != nil {
		return nil, err
	}
	if p.frontProxyCA, err = load("front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.etcdCA, err = load("etcd/ca"); err != nil {
		return nil, err
	}
	// Clusters made by older kubeadm put this identity in a group; copying
	// its subject keeps the new masters' access to kubelets (logs, exec).
	p.kubeletClient = certs.APIServerKubeletClient()
	if crt, ok, err := c.readFile(ctx, c.First.Name, pkiDir+"/apiserver-kubelet-client.crt"); err == nil && ok {
		if cert, err := certs.ParseCertPEM(crt); err == nil {
			p.kubeletClient = certs.SpecOf(cert)
		}
	}
	if p.caPEM, _, err = c.readFile(ctx, c.First.Name, pkiDir+"/ca.crt"); err != nil {
		return nil, err
	}
	c.pki = p
	return p, nil
}

// apiserverSpec is what node n's serving certificate must cover.
func apiserverSpec(c *Cluster, n NodeInfo) (certs.Spec, error) {
	names, ips := c.LBSANs()
	extra := slices.Clone(c.Facts.CertSANs)
	return certs.APIServer(certs.NodeFacts{Name: n.Name, IP: net.ParseIP(n.IP)}, certs.ClusterFacts{
		DNSDomain: c.Facts.DNSDomain, ServiceSubnet: c.Facts.ServiceSubnet,
		LBNames: names, LBIPs: ips, ExtraSANs: extra, NodeLocalLB: c.Opts.LBMode == "node-local",
	})
}

func certTasks(ctx context.Context, c *Cluster) ([]certTask, error) {
	p, err := loadPKI(ctx, c)
	if err != nil {
		return nil, err
	}
	shared := map[string][]byte{}
	for _, f := range sharedPKIFiles() {
		want, ok, err := c.readFile(ctx, c.First.Name, pkiDir+"/"+f)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("node %s: %s/%s is missing: haadm copies it to the new masters", c.First.Name, pkiDir, f)
		}
		shared[f] = want
	}
	masters := c.Masters()
	perNode := make([][]certTask, len(masters))
	// Nodes are independent; each costs dozens of SSH round trips.
	err = forEach(len(masters), func(i int) error {
		var err error
		perNode[i], err = nodeCertTasks(ctx, c, p, shared, masters[i], time.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	var tasks []certTask
	for _, t := range perNode {
		tasks = append(tasks, t...)
	}
	return tasks, nil
}

func nodeCertTasks(ctx context.Context, c *Cluster, p *clusterPKI, shared map[string][]byte, m NodeInfo, now time.Time) ([]certTask, error) {
	var tasks []certTask
	first := m.Name == c.First.Name
	if !first {
		for _, f := range sharedPKIFiles() {
			same, err := c.fileIs(ctx, m.Name, pkiDir+"/"+f, shared[f])
			if err != nil {
				return nil, err
			}
			if !same {
				tasks = append(tasks, certTask{node: m.Name, name: f, shared: shared[f], why: "copy from " + c.First.Name})
			}
		}
	}
	api, err := apiserverSpec(c, m)
	if err != nil {
		return nil, err
	}
	wanted := []certTask{{node: m.Name, name: "apiserver", ca: p.ca, spec: api}}
	if !first {
		nf := certs.NodeFacts{Name: m.Name, IP: net.ParseIP(m.IP)}
		srv, err := certs.EtcdServer(nf)
		if err != nil {
			return nil, err
		}
		peer, err := certs.EtcdPeer(nf)
		if err != nil {
			return nil, err
		}
		wanted = append(wanted,
			certTask{node: m.Name, name: "apiserver-kubelet-client", ca: p.ca, spec: p.kubeletClient},
			certTask{node: m.Name, name: "front-proxy-client", ca: p.frontProxyCA, spec: certs.FrontProxyClient()},
			certTask{node: m.Name, name: "apiserver-etcd-client", ca: p.etcdCA, spec: certs.APIServerEtcdClient()},
			certTask{node: m.Name, name: "etcd/server", ca: p.etcdCA, spec: srv},
			certTask{node: m.Name, name: "etcd/peer", ca: p.etcdCA, spec: peer},
			certTask{node: m.Name, name: "etcd/healthcheck-client", ca: p.etcdCA, spec: certs.EtcdHealthcheckClient()},
		)
	}
	for _, t := range wanted {
		crt, ok, err := c.readFile(ctx, t.node, pkiDir+"/"+t.name+".crt")
		if err != nil {
			return nil, err
		}
		if !ok {
			t.why = "missing"
			tasks = append(tasks, t)
			continue
		}
		cert, err := certs.ParseCertPEM(crt)
		if err != nil {
			t.why = "unreadable: " + err.Error()
			tasks = append(tasks, t)
			continue
		}
		// Never drop a SAN somebody added by hand.
		t.spec = unionSANs(t.spec, certs.SpecOf(cert))
		if ok, err := certs.Matches(cert, t.spec, t.ca.Cert, now, certRenewMargin); !ok {
			t.why = fmt.Sprint(err)
			tasks = append(tasks, t)
		}
	}
	return tasks, nil
}

// unionSANs adds the SANs of have that want lacks; subject and usages stay want's.
func unionSANs(want, have certs.Spec) certs.Spec {
	for _, d := range have.DNSNames {
		if !slices.Contains(want.DNSNames, d) {
			want.DNSNames = append(want.DNSNames, d)
		}
	}
	for _, ip := range have.IPs {
		if !slices.ContainsFunc(want.IPs, ip.Equal) {
			want.IPs = append(want.IPs, ip)
		}
	}
	return want
}

// issueOnNode signs a certificate for t. The node's existing key is kept when
// there is one (as `kubeadm certs renew` does), so nothing that pinned it breaks.
func issueOnNode(ctx context.Context, c *Cluster, t certTask) error {
	keyPath := pkiDir + "/" + t.name + ".key"
	var key crypto.Signer
	keyPEM, ok, err := c.readFile(ctx, t.node, keyPath)
	if err != nil {
		return err
	}
	if ok {
		if k, err := certs.ParseKeyPEM(keyPEM); err == nil {
			key = k
		}
	}
	if key == nil {
		if key, err = certs.NewKey(keyAlgorithm(t.ca.Cert)); err != nil {
			return err
		}
		if keyPEM, err = certs.EncodeKeyPEM(key); err != nil {
			return err
		}
		if _, err := c.ensureFile(ctx, "certs", t.node, keyPath, keyPEM, 0o600); err != nil {
			return err
		}
	}
	nb, validity := certs.KubeadmWindow(time.Now(), certs.DefaultValidity)
	crt, err := certs.Issue(t.ca, t.spec, key, nb, validity)
	if err != nil {
		return fmt.Errorf("node %s: issue %s: %w", t.node, t.name, err)
	}
	_, err = c.ensureFile(ctx, "certs", t.node, pkiDir+"/"+t.name+".crt", crt, 0o644)
	return err
}

// keyAlgorithm follows the cluster's choice (kubeadm's encryptionAlgorithm)
// as seen in its CA.
func keyAlgorithm(ca *x509.Certificate) string {
	if alg := certs.KeyAlgorithmOf(ca.PublicKey); alg != "" {
		return alg
	}
	return certs.DefaultKeyAlgorithm
}
